/**
 * The first step of parsing a `p2pchat` command line: which command it names, and whether it asks for
 * help or the version. Built on node's `util.parseArgs`, whose errors are reworded here into the CLI's
 * own one-line {@link UsageError}s. Checking the values of `start` and `relay` is the second step, in
 * `args.ts`.
 *
 * This module imports nothing but `node:util`, so `p2pchat --version` and `--help` answer without
 * loading the membership core or libp2p.
 *
 * @packageDocumentation
 */

import { type ParseArgsOptionsConfig, parseArgs as parseTokens } from 'node:util'
import { DEFAULT_MAX_STORAGE } from '../relay/defaults.js'
import { UsageError, type UsageTopic } from './errors.js'

export { DEFAULT_MAX_STORAGE }

/** Default `--retention` for a relay: 30 days, in milliseconds. */
export const DEFAULT_RETENTION = 30 * 24 * 60 * 60 * 1000

/** `p2pchat help [command]`, `p2pchat --help`, `p2pchat <command> --help`. */
export interface HelpCommand {
  command: 'help'
  /** The command to describe; `undefined` for the program overview. */
  topic: UsageTopic | undefined
}

/** `p2pchat --version`. */
export interface VersionCommand {
  command: 'version'
}

/** A command that runs something, with the arguments after its name, not yet checked. */
export interface CommandArgs {
  command: UsageTopic
  args: string[]
}

/** What {@link readCommandLine} found: an answer it can give at once, or a command to parse further. */
export type CommandLine = HelpCommand | VersionCommand | CommandArgs

const COMMANDS: readonly UsageTopic[] = ['start', 'relay']

const GLOBAL_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const satisfies ParseArgsOptionsConfig

/**
 * Read the command and the global options. `--help` / `-h` anywhere before `--` wins over everything
 * else, so a user can always ask for help about a command line that does not parse yet.
 *
 * @param argv - the arguments after the program name
 * @throws {@link UsageError} for a missing or unknown command, or a bad global option
 */
export function readCommandLine(argv: readonly string[]): CommandLine {
  const [first, ...rest] = argv
  if (first === undefined) {
    throw new UsageError('missing command')
  }
  if (first === 'help') {
    const [topic, extra] = rest
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`)
    if (topic === undefined || isCommandName(topic)) return { command: 'help', topic }
    throw unknownCommand(topic)
  }
  if (isCommandName(first)) {
    return asksForHelp(rest) ? { command: 'help', topic: first } : { command: first, args: rest }
  }
  if (first.startsWith('-') && first !== '-' && first !== '--') {
    // `p2pchat --help start` asks about `start`
    if (asksForHelp(argv)) return { command: 'help', topic: argv.find(isCommandName) }
    readOptions(argv, GLOBAL_OPTIONS, undefined)
    return { command: 'version' }
  }
  throw unknownCommand(first)
}

function isCommandName(value: string): value is UsageTopic {
  return (COMMANDS as readonly string[]).includes(value)
}

function unknownCommand(value: string): UsageError {
  const match = COMMANDS.find((command) => command.startsWith(value.toLowerCase().slice(0, 2)))
  return new UsageError(
    `unknown command '${value}'${match === undefined ? '' : ` (did you mean '${match}'?)`}`,
  )
}

/** Whether `--help` or `-h` is among `args` before `--`, whatever else is wrong with them. */
function asksForHelp(args: readonly string[]): boolean {
  // not strict: an unknown option must not hide the help that explains it
  const { tokens } = parseTokens({ args: [...args], options: GLOBAL_OPTIONS, strict: false, tokens: true })
  return tokens.some((token) => token.kind === 'option' && token.name === 'help')
}

/**
 * Read `args` against `options` with node's strict parser, which rejects unknown options, missing
 * values, values on boolean flags, a value that looks like the next option, and stray arguments;
 * `--no-<flag>` negates a boolean flag of a command. Adds the one rule it lacks: a single-value
 * option may not be given twice.
 *
 * @param command - the command the options belong to, named in the error and whose usage is shown
 * @returns the values, typed from `options`
 * @throws {@link UsageError} with a one-line message
 */
export function readOptions<T extends ParseArgsOptionsConfig>(
  args: readonly string[],
  options: T,
  command: UsageTopic | undefined,
) {
  const parse = () =>
    parseTokens({
      args: [...args],
      options,
      strict: true,
      allowNegative: command !== undefined,
      tokens: true,
    })
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse()
  } catch (err) {
    throw new UsageError(explain(err, args, command), command)
  }
  for (const [name, spec] of Object.entries(options)) {
    const given = parsed.tokens.filter((token) => token.kind === 'option' && token.name === name)
    if (spec.type === 'string' && spec.multiple !== true && given.length > 1) {
      throw new UsageError(`option '--${name}' given more than once`, command)
    }
  }
  return parsed.values
}

/**
 * Reword an error of node's `parseArgs` in the CLI's voice, naming the command. Node's messages quote
 * the option or argument at fault; if a later Node words them differently, its own first line is
 * shown rather than nothing.
 */
function explain(err: unknown, args: readonly string[], command: UsageTopic | undefined): string {
  const code = (err as { code?: unknown }).code
  if (!(err instanceof Error) || typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) {
    throw err // a bug in the option table, not the user's mistake
  }
  const quoted = /'([^']*)'/.exec(err.message)?.[1]
  const fallback = (err.message.split(/\.\s|\n/)[0] ?? '').replace(/^./, (c) => c.toLowerCase())
  if (quoted === undefined) return fallback
  const option = quoted.replace(/ <value>$/, '')
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    return `unknown option '${option}'${command === undefined ? '' : ` for '${command}'`}`
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument '${quoted}'`
  if (/does not take an argument/.test(err.message)) return `option '${option}' does not take a value`
  if (/argument missing/.test(err.message)) return `option '${option}' needs a value`
  // `--name --json` almost certainly forgot the name; a value starting with '-' needs `--name=-x`
  const next = args.find((arg, i) => args[i - 1] === option && arg.startsWith('-') && arg !== '-')
  if (/ambiguous/.test(err.message) && next !== undefined) {
    return `option '${option}' needs a value, got option '${next}' (use ${option}=${next} if you meant it)`
  }
  return fallback
}
