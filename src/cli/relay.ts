import { createRelayNode } from '../relay/index.js'
import type { RelayCommand } from './args.js'
import type { CliIO } from './io.js'
import { notification } from './json-rpc.js'
import { runUntilShutdown } from './shutdown.js'

/**
 * `p2pchat relay`: runs the bootstrap/relay node until SIGINT/SIGTERM (or stdin EOF with `--json`).
 * Prints its full multiaddrs for users' `--bootstrap`; with `--json`, a `ready` notification and
 * periodic `stats` notifications instead, and it also stops cleanly when stdout's reader goes away.
 */
export async function runRelay(command: RelayCommand & { dataDir: string }, io: CliIO): Promise<number> {
  const relay = await createRelayNode({
    dataDir: command.dataDir,
    listen: command.listen,
    bootstrap: command.bootstrap,
    maxStorage: command.maxStorage,
    retention: command.retention,
    maxMemory: command.maxMemory,
    maxGroups: command.maxGroups,
  })
  try {
    await relay.start()
  } catch (err) {
    await relay.stop()
    throw err
  }
  relay.addEventListener('reject', ({ detail }) => {
    io.stderr(`relay: rejected from ${detail.from} for group ${detail.group}: ${detail.reason}\n`)
  })
  if (command.json) {
    const notify = (method: string, params: Record<string, unknown>): void =>
      io.stdout(`${notification(method, params)}\n`)
    relay.addEventListener('stats', ({ detail }) => notify('stats', { ...detail }))
    notify('ready', { peerId: relay.peerId, addrs: relay.addrs() })
  } else {
    io.stdout(
      `p2pchat relay ${relay.peerId}\nstore: ${command.dataDir}\nPeers use it with --bootstrap and one of:\n`,
    )
    for (const addr of relay.addrs()) io.stdout(`  ${addr}\n`)
  }
  return runUntilShutdown(relay, io, (shutdown) => {
    // without --json nothing more goes to stdout, so a closed stdout does not stop the relay
    if (!command.json) return () => {}
    const onEnd = (): void => shutdown('stdin closed')
    io.stdin.on('end', onEnd)
    io.stdin.resume()
    // the reader of the stats is gone (EPIPE): stop as on stdin EOF
    const removeStdoutError = io.onStdoutError(() => shutdown('stdout closed'))
    return () => {
      removeStdoutError()
      // stop reading: a stdin still open (e.g. a supervisor's pipe) would keep the process alive
      io.stdin.off('end', onEnd)
      io.stdin.pause()
    }
  })
}
