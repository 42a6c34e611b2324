/**
 * How the real CLI fails: a name the core would refuse, a port already in use, an identity key other
 * users can read, and a reader that goes away (`p2pchat start --json | head -1`). Each is one line on stderr (or none) and a distinct exit
 * status, never a stack trace.
 */
import { spawn } from 'node:child_process'
import { chmodSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadOrCreateIdentity } from '../../src/node/index.js'
import {
  CLI_BIN,
  type CliGroup,
  createCliGroup,
  loopbackStartArgs,
  NODE_BIN,
  REPO_ROOT,
  runCli,
} from '../fixtures/cli.js'

/** Rejects with `message` if `promise` has not settled after `ms`. */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${message}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const STACK = /\n\s+at /

describe('p2pchat start and relay: failures a user can fix', () => {
  let cli: CliGroup
  let root: string
  let busy: Server
  let port: number

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
    // a port some other program holds
    busy = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    port = (busy.address() as { port: number }).port
  })
  afterAll(async () => {
    await new Promise((resolve) => busy?.close(resolve))
    await cli?.teardown()
  })

  it('a --name over 64 bytes of UTF-8 is a usage error that states the limit in bytes', async () => {
    // 22 characters, 66 bytes: the core (and every peer, for a join request) refuses it
    const run = await runCli(['start', '--name', '日'.repeat(22), '--data-dir', join(root, 'cjk')])
    expect(run.code).toBe(2)
    expect(run.stdout).toBe('')
    expect(run.stderr.split('\n')[0]).toBe(
      "p2pchat: option '--name' is too long: 22 characters take 66 bytes in UTF-8, at most 64 bytes are allowed",
    )
    expect(run.stderr).not.toMatch(STACK)
  })

  it('a listen port in use is one line and exit status 1, for start and for relay', async () => {
    const addr = `/ip4/127.0.0.1/tcp/${port}`
    const start = await runCli([
      'start',
      '--json',
      '--no-mdns',
      '--listen',
      addr,
      '--name',
      'x',
      '--data-dir',
      join(root, 'x'),
    ])
    expect(start).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `p2pchat: cannot listen on ${addr}: address already in use\n`,
    })
    const relay = await runCli(['relay', '--json', '--listen', addr, '--data-dir', join(root, 'relay')])
    expect(relay).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `p2pchat: cannot listen on ${addr}: address already in use\n`,
    })
  })

  it('a second process on the same data directory is one line and exit status 1', async () => {
    const dataDir = join(root, 'shared')
    const args = [
      'start',
      '--json',
      '--no-mdns',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--name',
      'sam',
      '--data-dir',
      dataDir,
    ]
    const first = cli.spawn({ args })
    await first.waitForNotification('ready', () => true, {
      message: 'the first sam to start',
      timeout: 15_000,
    })
    const second = await runCli(args)
    expect(second.code, second.stderr).toBe(1)
    expect(second.stdout).toBe('')
    expect(second.stderr).toMatch(/^p2pchat: .*\bin use by another p2pchat process\b.*\n$/)
    expect(second.stderr.split('\n')).toHaveLength(2) // one line and its newline
    // the first one is unharmed
    expect(await first.request('status')).toMatchObject({ name: 'sam' })
    first.closeStdin()
    expect(await first.waitForExit()).toEqual({ code: 0, signal: null })
  })

  it('an identity key other users can read is one line with the fix and exit status 1, for start and for relay', async () => {
    const peer = join(root, 'exposed-peer')
    const relayDir = join(root, 'exposed-relay')
    for (const dir of [peer, relayDir]) {
      await loadOrCreateIdentity(dir)
      chmodSync(join(dir, 'identity.key'), 0o644)
    }
    const refused = (dir: string): string => {
      const key = join(dir, 'identity.key')
      return `p2pchat: ${key} is readable by other users; run: chmod 600 ${key}\n`
    }
    expect(await runCli(loopbackStartArgs('pat', peer))).toMatchObject({
      code: 1,
      stdout: '',
      stderr: refused(peer),
    })
    expect(
      await runCli(['relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', relayDir]),
    ).toMatchObject({ code: 1, stdout: '', stderr: refused(relayDir) })
  })

  it('when the reader of --json output goes away (| head -1), the peer stops cleanly with status 0', async () => {
    const child = spawn(
      NODE_BIN,
      [
        CLI_BIN,
        'start',
        '--json',
        '--no-mdns',
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--name',
        'ann',
        '--data-dir',
        join(root, 'ann'),
        '--create',
        'team',
      ],
      { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] },
    )
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    child.stdin.on('error', () => {})
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    )
    try {
      // like `head -1`: read one line, then close the pipe
      const lines = createInterface({ input: child.stdout })
      const first = await within(
        new Promise<string>((resolve) => lines.once('line', resolve)),
        15_000,
        `ann's first line; stderr: ${stderr}`,
      )
      expect(JSON.parse(first)).toMatchObject({ method: 'ready' })
      lines.close()
      const closed = new Promise((resolve) => child.stdout.once('close', resolve))
      child.stdout.destroy()
      await closed
      // the answer to this request meets a pipe nobody reads: EPIPE
      child.stdin.write('{"jsonrpc":"2.0","id":1,"method":"status"}\n')
      const exit = await within(exited, 10_000, `ann to exit after stdout closed; stderr: ${stderr}`)
      expect(exit, stderr).toEqual({ code: 0, signal: null })
      expect(stderr).not.toMatch(STACK)
      expect(stderr).not.toMatch(/EPIPE|Unhandled|unexpected error/)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
