/**
 * The `p2pchat` command. `bin/p2pchat.js` only calls {@link main}; everything here is importable and
 * testable without side effects on import.
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs'
import type { Command, RelayCommand, StartCommand } from './args.js'
import { readCommandLine } from './command-line.js'
import { defaultDataDir, defaultRelayDataDir } from './default-data-dir.js'
import { UsageError } from './errors.js'
import { type CliIO, processIO } from './io.js'
import { usage } from './usage.js'

/** Exit statuses. */
export const EXIT_OK = 0
/**
 * An expected failure the user can fix (a bad invite, an unknown group, a port in use, a data directory
 * in use by another process): one line on stderr.
 */
export const EXIT_FAILURE = 1
/** A bad command line: one line plus usage on stderr. */
export const EXIT_USAGE = 2
/** A bug: the stack is printed. */
export const EXIT_SOFTWARE = 70

/** The package version, read from package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and resolves to the exit status.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2))
 * ```
 */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let command: Command
  try {
    command = await parseCommand(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`p2pchat: ${err.message}\n\n${usage(err.command)}\n`)
      return EXIT_USAGE
    }
    throw err
  }
  try {
    switch (command.command) {
      case 'help':
        io.stdout(`${usage(command.topic)}\n`)
        return EXIT_OK
      case 'version':
        io.stdout(`p2pchat ${version()}\n`)
        return EXIT_OK
      case 'start':
        return await runStart(command, io)
      case 'relay':
        return await runRelay(command, io)
    }
  } catch (err) {
    // the error table imports every error class, the core's too: load it only once a command failed
    const { userErrorMessage } = await import('./user-errors.js')
    const message = userErrorMessage(err)
    if (message !== undefined) {
      io.stderr(`p2pchat: ${message}\n`)
      return EXIT_FAILURE
    }
    io.stderr(`p2pchat: unexpected error, please report it:\n${(err as Error).stack ?? String(err)}\n`)
    return EXIT_SOFTWARE
  }
}

/**
 * `parseArgs` in two steps, so that help, the version and a bad command answer without loading the
 * value checks of `start` and `relay`, which need the membership core and the multiaddr parser.
 */
async function parseCommand(argv: readonly string[]): Promise<Command> {
  const line = readCommandLine(argv)
  if (line.command === 'help' || line.command === 'version') return line
  const { parseCommandArgs } = await import('./args.js')
  return parseCommandArgs(line)
}

// The modes, the session and the relay import libp2p, which takes a few hundred milliseconds to
// load: each is imported only when a command runs it.

async function runStart(command: StartCommand, io: CliIO): Promise<number> {
  const textMode = command.json
    ? (await import('./json-mode.js')).createJsonMode
    : (await import('./interactive.js')).createInteractiveMode
  const mode =
    command.web === undefined
      ? textMode(io)
      : (await import('./web-mode.js')).createWebMode(
          { address: command.web, json: command.json },
          io,
          textMode,
        )
  const { openSession } = await import('./session.js')
  // the mode listens before the node starts, so it misses nothing (e.g. the --create notice)
  const session = await openSession(
    { ...command, dataDir: command.dataDir ?? defaultDataDir(command.name) },
    (opened) => mode.attach(opened),
  )
  const { forgetRelayNotice } = await import('./format-notices.js')
  const notice = forgetRelayNotice(
    session.node.connections.unmatchedForgets(),
    session.node.connections.relays(),
  )
  // on stderr, before the mode takes the terminal: stdout may carry JSON-RPC
  if (notice !== undefined) io.stderr(`p2pchat: ${notice}\n`)
  return mode.run(session)
}

async function runRelay(command: RelayCommand, io: CliIO): Promise<number> {
  const relay = await import('./relay.js')
  return relay.runRelay({ ...command, dataDir: command.dataDir ?? defaultRelayDataDir() }, io)
}
