/**
 * Command-line parsing for `p2pchat`: a pure function from `argv` to a typed {@link Command}, the help
 * text, and the default data directory. Nothing here touches the network, the disk or the console.
 *
 * @packageDocumentation
 */

import { homedir } from 'node:os'
import { posix, win32 } from 'node:path'
import { parseArgs as parseTokens } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { isValidName, MAX_NAME_BYTES } from '../membership/index.js'
import { DEFAULT_MAX_GROUPS, DEFAULT_MAX_MEMORY } from '../relay/admission.js'
import { UsageError, type UsageTopic } from './errors.js'

/** Addresses `p2pchat start` listens on when no `--listen` is given: every interface, a free port. */
export const DEFAULT_START_LISTEN: readonly string[] = Object.freeze(['/ip4/0.0.0.0/tcp/0'])
/** Addresses `p2pchat relay` listens on when no `--listen` is given: a fixed port peers can be told. */
export const DEFAULT_RELAY_LISTEN: readonly string[] = Object.freeze(['/ip4/0.0.0.0/tcp/4001'])
/** Default `--max-storage` for a relay: 1 GiB, in bytes. */
export const DEFAULT_MAX_STORAGE = 1024 ** 3
/** Default `--retention` for a relay: 30 days, in milliseconds. */
export const DEFAULT_RETENTION = 30 * 24 * 60 * 60 * 1000
export { DEFAULT_MAX_GROUPS, DEFAULT_MAX_MEMORY }

/** How `p2pchat start` picks its group. */
export type GroupSelection =
  /** `--create <groupName>`: found a new group with this display name. */
  | { kind: 'create'; groupName: string }
  /** `--join <invite>`: join the group the invite is for. */
  | { kind: 'join'; invite: string }
  /**
   * Neither: open a group this identity already belongs to, `group` (an id or a name) if given,
   * otherwise whichever the caller considers the default.
   */
  | { kind: 'open'; group?: string }

/** `p2pchat start`: run a chat peer. */
export interface StartCommand {
  command: 'start'
  /** The display name this peer announces; trimmed, 1 to `MAX_NAME_BYTES` (64) bytes of UTF-8. */
  name: string
  group: GroupSelection
  /** `--data-dir`, as typed; `undefined` means "use {@link defaultDataDir}". */
  dataDir: string | undefined
  /** Multiaddrs to listen on, validated; defaults to {@link DEFAULT_START_LISTEN}. */
  listen: string[]
  /** Multiaddrs of peers (typically relays) to dial at start-up, validated. */
  bootstrap: string[]
  /** Whether to discover peers on the LAN with mDNS; `false` with `--no-mdns`. */
  mdns: boolean
  /** Speak JSON-RPC 2.0 on stdin/stdout instead of the interactive terminal UI. */
  json: boolean
}

/** `p2pchat relay`: run a relay that connects peers and stores ciphertext for offline members. */
export interface RelayCommand {
  command: 'relay'
  /** `--data-dir`, as typed; `undefined` means "use {@link defaultRelayDataDir}". */
  dataDir: string | undefined
  /** Multiaddrs to listen on, validated; defaults to {@link DEFAULT_RELAY_LISTEN}. */
  listen: string[]
  /** Multiaddrs of other relays or peers to dial at start-up, validated. */
  bootstrap: string[]
  /** Emit machine-readable JSON lines instead of human-readable logs. */
  json: boolean
  /** Most bytes of stored ciphertext to keep; defaults to {@link DEFAULT_MAX_STORAGE}. */
  maxStorage: number
  /** How long to keep stored ciphertext, in milliseconds; defaults to {@link DEFAULT_RETENTION}. */
  retention: number
  /** Memory for group data, in bytes; defaults to {@link DEFAULT_MAX_MEMORY}. */
  maxMemory: number
  /** Most groups to hold; defaults to {@link DEFAULT_MAX_GROUPS}. */
  maxGroups: number
}

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

/** What the user asked for, discriminated by `command`. */
export type Command = StartCommand | RelayCommand | HelpCommand | VersionCommand

type OptionSpec = { type: 'string'; multiple?: boolean; short?: string } | { type: 'boolean'; short?: string }

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const satisfies Record<string, OptionSpec>

const START_OPTIONS = {
  ...HELP_OPTION,
  name: { type: 'string' },
  create: { type: 'string' },
  join: { type: 'string' },
  group: { type: 'string' },
  'data-dir': { type: 'string' },
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  'no-mdns': { type: 'boolean' },
  json: { type: 'boolean' },
} as const satisfies Record<string, OptionSpec>

const RELAY_OPTIONS = {
  ...HELP_OPTION,
  'data-dir': { type: 'string' },
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  'max-storage': { type: 'string' },
  'max-memory': { type: 'string' },
  'max-groups': { type: 'string' },
  retention: { type: 'string' },
} as const satisfies Record<string, OptionSpec>

const GLOBAL_OPTIONS = {
  ...HELP_OPTION,
  version: { type: 'boolean', short: 'v' },
} as const satisfies Record<string, OptionSpec>

const COMMANDS: readonly UsageTopic[] = ['start', 'relay']

/** Parsed flag values: strings, string lists, or `true` for booleans that were present. */
type FlagValues = Map<string, string | string[] | true>

/**
 * Parse the program's arguments (without the `node` and script path, i.e. `process.argv.slice(2)`).
 *
 * `--help` / `-h` anywhere before `--` wins over everything else, so a user can always ask for help
 * about a command line that does not parse yet.
 *
 * @param argv - the arguments after the program name
 * @returns the command to run, with every value validated and every default filled in
 * @throws {@link UsageError} with a one-line message when the arguments are invalid; its `command`
 * names the command whose usage should be printed
 *
 * @example
 * ```ts
 * parseArgs(['start', '--name', 'alice', '--create', 'team'])
 * // → { command: 'start', name: 'alice', group: { kind: 'create', groupName: 'team' },
 * //     listen: ['/ip4/0.0.0.0/tcp/0'], bootstrap: [], mdns: true, json: false, dataDir: undefined }
 * ```
 */
export function parseArgs(argv: readonly string[]): Command {
  const first = argv[0]

  if (first === undefined) {
    throw new UsageError('missing command')
  }

  if (first === 'help') {
    return parseHelp(argv.slice(1))
  }

  if (first === 'start' || first === 'relay') {
    const rest = argv.slice(1)
    const flags = readFlags(rest, first === 'start' ? START_OPTIONS : RELAY_OPTIONS, first)
    if (flags.has('help')) {
      return { command: 'help', topic: first }
    }
    return first === 'start' ? buildStart(flags) : buildRelay(flags)
  }

  if (first.startsWith('-') && first !== '-' && first !== '--') {
    const flags = readFlags(argv, GLOBAL_OPTIONS, undefined)
    if (flags.has('help')) {
      // `p2pchat --help start` asks about `start`.
      return { command: 'help', topic: argv.find(isCommandName) }
    }
    return { command: 'version' }
  }

  throw new UsageError(`unknown command '${first}'${suggestCommand(first)}`)
}

function parseHelp(rest: readonly string[]): HelpCommand {
  const [topic, extra] = rest
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument '${extra}'`)
  }
  if (topic === undefined) {
    return { command: 'help', topic: undefined }
  }
  if (isCommandName(topic)) {
    return { command: 'help', topic }
  }
  throw new UsageError(`unknown command '${topic}'${suggestCommand(topic)}`)
}

function isCommandName(value: string): value is UsageTopic {
  return (COMMANDS as readonly string[]).includes(value)
}

function suggestCommand(value: string): string {
  const match = COMMANDS.find((command) => command.startsWith(value.toLowerCase().slice(0, 2)))
  return match === undefined ? '' : ` (did you mean '${match}'?)`
}

/**
 * Tokenise with node's parser, then apply our own rules so every mistake gets a message in the
 * same voice: unknown flags, missing values, values on boolean flags, repeated single-value flags and
 * stray positionals are all usage errors.
 */
function readFlags(
  args: readonly string[],
  options: Record<string, OptionSpec>,
  command: UsageTopic | undefined,
): FlagValues {
  const { tokens } = parseTokens({
    args: [...args],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  })

  // Help wins even over errors elsewhere on the line, but not over what follows `--`.
  const terminator = tokens.findIndex((token) => token.kind === 'option-terminator')
  const beforeTerminator = terminator === -1 ? tokens : tokens.slice(0, terminator)
  if (beforeTerminator.some((token) => token.kind === 'option' && token.name === 'help')) {
    return new Map([['help', true]])
  }

  const flags: FlagValues = new Map()
  for (const token of tokens) {
    if (token.kind === 'option-terminator') {
      continue
    }
    if (token.kind === 'positional') {
      throw new UsageError(`unexpected argument '${token.value}'`, command)
    }

    const spec = Object.hasOwn(options, token.name) ? options[token.name] : undefined
    if (spec === undefined) {
      const where = command === undefined ? '' : ` for '${command}'`
      throw new UsageError(`unknown option '${token.rawName}'${where}`, command)
    }

    if (spec.type === 'boolean') {
      if (token.value !== undefined) {
        throw new UsageError(`option '${token.rawName}' does not take a value`, command)
      }
      flags.set(token.name, true)
      continue
    }

    const value = token.value
    if (value === undefined) {
      throw new UsageError(`option '${token.rawName}' needs a value`, command)
    }
    // `--name --json` almost certainly forgot the name; a value that really starts with '-' can
    // still be passed as `--name=-x`.
    if (!token.inlineValue && value.startsWith('-') && value !== '-') {
      throw new UsageError(
        `option '${token.rawName}' needs a value, got option '${value}' (use ${token.rawName}=${value} if you meant it)`,
        command,
      )
    }

    if (spec.multiple === true) {
      const list = flags.get(token.name)
      if (Array.isArray(list)) {
        list.push(value)
      } else {
        flags.set(token.name, [value])
      }
    } else {
      if (flags.has(token.name)) {
        throw new UsageError(`option '--${token.name}' given more than once`, command)
      }
      flags.set(token.name, value)
    }
  }
  return flags
}

function stringFlag(flags: FlagValues, name: string): string | undefined {
  const value = flags.get(name)
  return typeof value === 'string' ? value : undefined
}

function listFlag(flags: FlagValues, name: string): string[] | undefined {
  const value = flags.get(name)
  return Array.isArray(value) ? value : undefined
}

function buildStart(flags: FlagValues): StartCommand {
  const rawName = stringFlag(flags, 'name')
  if (rawName === undefined) {
    throw new UsageError("missing required option '--name'", 'start')
  }
  const name = validateDisplayName(rawName, '--name', 'start')

  const create = stringFlag(flags, 'create')
  const join = stringFlag(flags, 'join')
  const groupRef = stringFlag(flags, 'group')
  if (create !== undefined && join !== undefined) {
    throw new UsageError("options '--create' and '--join' cannot be used together", 'start')
  }
  if (groupRef !== undefined && (create !== undefined || join !== undefined)) {
    const other = create !== undefined ? '--create' : '--join'
    throw new UsageError(`options '--group' and '${other}' cannot be used together`, 'start')
  }

  let group: GroupSelection
  if (create !== undefined) {
    group = { kind: 'create', groupName: validateDisplayName(create, '--create', 'start') }
  } else if (join !== undefined) {
    const invite = join.trim()
    if (invite === '') {
      throw new UsageError("option '--join' needs an invite, got an empty value", 'start')
    }
    group = { kind: 'join', invite }
  } else if (groupRef !== undefined) {
    const ref = groupRef.trim()
    if (ref === '') {
      throw new UsageError("option '--group' needs a group id or name, got an empty value", 'start')
    }
    group = { kind: 'open', group: ref }
  } else {
    group = { kind: 'open' }
  }

  return {
    command: 'start',
    name,
    group,
    dataDir: dataDirFlag(flags, 'start'),
    listen: multiaddrsFlag(flags, 'listen', DEFAULT_START_LISTEN, 'start'),
    bootstrap: multiaddrsFlag(flags, 'bootstrap', [], 'start'),
    mdns: !flags.has('no-mdns'),
    json: flags.has('json'),
  }
}

function buildRelay(flags: FlagValues): RelayCommand {
  return {
    command: 'relay',
    dataDir: dataDirFlag(flags, 'relay'),
    listen: multiaddrsFlag(flags, 'listen', DEFAULT_RELAY_LISTEN, 'relay'),
    bootstrap: multiaddrsFlag(flags, 'bootstrap', [], 'relay'),
    json: flags.has('json'),
    maxStorage: relayValue(flags, 'max-storage', DEFAULT_MAX_STORAGE, parseSize),
    retention: relayValue(flags, 'retention', DEFAULT_RETENTION, parseDuration),
    maxMemory: relayValue(flags, 'max-memory', DEFAULT_MAX_MEMORY, parseSize),
    maxGroups: relayValue(flags, 'max-groups', DEFAULT_MAX_GROUPS, parseCount),
  }
}

/** A relay option's value parsed by `parse`, or `fallback` when it is absent; errors show the relay's usage. */
function relayValue(
  flags: FlagValues,
  name: string,
  fallback: number,
  parse: (text: string, label: string) => number,
): number {
  const text = stringFlag(flags, name)
  if (text === undefined) return fallback
  try {
    return parse(text, `'--${name}' value`)
  } catch (err) {
    throw err instanceof UsageError ? new UsageError(err.message, 'relay') : err
  }
}

/**
 * Parse a count: a whole number of at least 1, written in decimal digits.
 *
 * @throws {@link UsageError} when the text is not such a number
 */
export function parseCount(text: string, label = 'count'): number {
  const count = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new UsageError(`invalid ${label} '${text}': expected a whole number of at least 1`)
  }
  return count
}

function dataDirFlag(flags: FlagValues, command: UsageTopic): string | undefined {
  const dir = stringFlag(flags, 'data-dir')
  if (dir !== undefined && dir.trim() === '') {
    throw new UsageError("option '--data-dir' needs a directory, got an empty value", command)
  }
  return dir
}

function multiaddrsFlag(
  flags: FlagValues,
  name: 'listen' | 'bootstrap',
  defaults: readonly string[],
  command: UsageTopic,
): string[] {
  const values = listFlag(flags, name)
  if (values === undefined) {
    return [...defaults]
  }
  return values.map((value) => validateMultiaddr(value, `--${name}`, command))
}

/**
 * Check that `value` parses as a multiaddr with at least one component.
 *
 * @returns the value, trimmed
 * @throws {@link UsageError} naming `option` and quoting the parser's reason
 */
function validateMultiaddr(value: string, option: string, command: UsageTopic): string {
  const text = value.trim()
  let reason: string | undefined
  try {
    if (multiaddr(text).getComponents().length === 0) {
      reason = 'it has no protocols'
    }
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err)
  }
  if (reason !== undefined) {
    throw new UsageError(
      `invalid '${option}' value '${value}': ${reason}; expected a multiaddr like /ip4/192.168.1.10/tcp/4001`,
      command,
    )
  }
  return text
}

/**
 * Unicode characters that make a name misleading or unprintable: control characters, lone
 * surrogates, line/paragraph separators, and format characters (bidi overrides, zero-width spaces),
 * except the zero-width (non-)joiners that emoji sequences and some scripts need.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}]|(?![\u200C\u200D])\p{Cf}/u

/**
 * Validate a user-chosen display name (for `--name` and `--create`): trimmed, non-empty, printable,
 * and valid by the membership core's rule (`isValidName`: at most `MAX_NAME_BYTES` bytes of
 * UTF-8), so a name that passes here is never refused later by this peer or, in a join request or an
 * add event, silently by every other peer.
 */
function validateDisplayName(value: string, option: string, command: UsageTopic): string {
  const name = value.trim()
  if (name === '') {
    throw new UsageError(`option '${option}' must not be empty`, command)
  }
  const bad = UNPRINTABLE.exec(name)
  if (bad !== null) {
    const code = (bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')
    throw new UsageError(
      `option '${option}' contains an unprintable character (U+${code}); use letters, digits, spaces and symbols`,
      command,
    )
  }
  if (!isValidName(name)) {
    const bytes = Buffer.byteLength(name, 'utf8')
    if (bytes <= MAX_NAME_BYTES) {
      // not reached with today's core rule; kept so a stricter rule still gets a usage error
      throw new UsageError(`option '${option}' is not a valid name`, command)
    }
    const chars = [...name].length
    const size = bytes === chars ? `${bytes} bytes` : `${chars} characters take ${bytes} bytes in UTF-8`
    throw new UsageError(
      `option '${option}' is too long: ${size}, at most ${MAX_NAME_BYTES} bytes are allowed`,
      command,
    )
  }
  return name
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
}

/**
 * Parse a storage size: a plain number of bytes (`1048576`) or a number with a decimal (`kB`, `MB`,
 * `GB`, `TB`) or binary (`KiB`, `MiB`, `GiB`, `TiB`) unit, case-insensitive, with optional space and
 * fraction (`1.5 GiB`). Bare `K`/`M`/`G` are refused because they do not say which of the two they mean.
 *
 * @param text - what the user typed
 * @param label - what is being parsed, to start the error message (e.g. `'--retention' value`)
 * @returns a positive whole number of bytes (fractions of a byte are rounded down)
 * @throws {@link UsageError} when the text is not a size, or is zero or too large
 *
 * @example
 * ```ts
 * parseSize('512MiB') // → 536870912
 * parseSize('1GB')    // → 1000000000
 * ```
 */
export function parseSize(text: string, label = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text)
  const unit = match?.[2]?.toLowerCase() ?? ''
  const factor = SIZE_UNITS[unit]
  if (match?.[1] === undefined || factor === undefined) {
    throw new UsageError(`invalid ${label} '${text}': expected a size like 512MiB, 1GB or a number of bytes`)
  }
  const bytes = Math.floor(Number(match[1]) * factor)
  if (bytes <= 0) {
    throw new UsageError(`invalid ${label} '${text}': must be at least 1 byte`)
  }
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError(`invalid ${label} '${text}': too large`)
  }
  return bytes
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  w: 7 * 24 * 60 * 60 * 1000,
}

/**
 * Parse a duration: one or more numbers each followed by a unit, `ms`, `s`, `m` (minutes), `h`, `d`
 * or `w`, e.g. `7d`, `12h`, `30m`, `1h30m`, `1.5d`. A bare number is refused: nobody can tell
 * whether it means seconds or days.
 *
 * @param text - what the user typed
 * @param label - what is being parsed, to start the error message (e.g. `'--retention' value`)
 * @returns a positive whole number of milliseconds
 * @throws {@link UsageError} when the text is not a duration, or is zero or too large
 *
 * @example
 * ```ts
 * parseDuration('7d')    // → 604800000
 * parseDuration('1h30m') // → 5400000
 * ```
 */
export function parseDuration(text: string, label = 'duration'): number {
  const trimmed = text.trim()
  const part = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d|w)/gy
  let total = 0
  let end = 0
  for (let match = part.exec(trimmed); match !== null; match = part.exec(trimmed)) {
    const [, amount = '', unit = ''] = match
    total += Number(amount) * (DURATION_UNITS[unit] ?? Number.NaN)
    end = part.lastIndex
  }
  if (trimmed === '' || end !== trimmed.length || Number.isNaN(total)) {
    const hint = /^\d+(\.\d+)?$/.test(trimmed) ? ' (a unit is required)' : ''
    throw new UsageError(`invalid ${label} '${text}': expected a duration like 7d, 12h or 30m${hint}`)
  }
  const ms = Math.floor(total)
  if (ms <= 0) {
    throw new UsageError(`invalid ${label} '${text}': must be longer than zero`)
  }
  if (!Number.isSafeInteger(ms)) {
    throw new UsageError(`invalid ${label} '${text}': too large`)
  }
  return ms
}

/**
 * The platform's per-user data directory, where applications keep their state:
 * `$XDG_DATA_HOME` (if absolute) or `~/.local/share` on Linux and other Unixes,
 * `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
 */
function userDataDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  if (platform === 'win32') {
    const appData = env.APPDATA
    if (appData !== undefined && appData !== '') {
      return appData
    }
    return win32.join(env.USERPROFILE || homedir(), 'AppData', 'Roaming')
  }
  const home = env.HOME || homedir()
  if (platform === 'darwin') {
    return posix.join(home, 'Library', 'Application Support')
  }
  const xdg = env.XDG_DATA_HOME
  // The XDG spec says relative values are invalid and must be ignored.
  if (xdg !== undefined && posix.isAbsolute(xdg)) {
    return xdg
  }
  return posix.join(home, '.local', 'share')
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i

/**
 * Turn a display name into a single, safe path segment on every platform.
 *
 * Characters that are unsafe in a file name (path separators, `:*?"<>|`, controls, `%` itself), a
 * dot that starts the segment or follows another dot (so no `.`, `..` or hidden directory), trailing
 * dots and spaces (which Windows drops) and the first letter of Windows device names are
 * percent-encoded. Because `%` is encoded too, two different names never share a directory.
 *
 * @example
 * ```ts
 * pathSegmentFor('alice')     // → 'alice'
 * pathSegmentFor('../etc')    // → '%2E%2E%2Fetc'
 * ```
 */
export function pathSegmentFor(name: string): string {
  if (name === '') {
    throw new UsageError('a name is needed to choose a data directory')
  }
  const encode = (char: string): string =>
    [...Buffer.from(char, 'utf8')]
      .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)
      .join('')

  const chars = [...name.normalize('NFC')]
  const out = chars.map((char, i) => {
    const unsafe =
      /[/\\:*?"<>|%\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(char) ||
      (char === '.' && (i === 0 || chars[i - 1] === '.')) ||
      // Trailing dots and spaces are silently dropped by Windows.
      ((char === '.' || char === ' ') && chars.slice(i).every((c) => c === '.' || c === ' '))
    return unsafe ? encode(char) : char
  })
  if (WINDOWS_RESERVED.test(name)) {
    out[0] = encode(chars[0] ?? '')
  }
  return out.join('')
}

/**
 * Where `p2pchat start --name <name>` keeps its identity, group keys and membership log when no
 * `--data-dir` is given: `<user data dir>/p2pchat/<name>`, where the user data dir is
 * `$XDG_DATA_HOME` or `~/.local/share` on Linux, `~/Library/Application Support` on macOS and
 * `%APPDATA%` on Windows. The name is made a safe path segment first (see {@link pathSegmentFor}), so
 * a name can never point outside `p2pchat/`.
 *
 * @param name - the `--name` the peer runs as
 * @param env - environment variables to read (`HOME`, `XDG_DATA_HOME`, `APPDATA`, `USERPROFILE`)
 * @param platform - the platform whose conventions to follow
 *
 * @example
 * ```ts
 * defaultDataDir('alice', { HOME: '/home/al' }, 'linux') // → '/home/al/.local/share/p2pchat/alice'
 * ```
 */
export function defaultDataDir(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const path = platform === 'win32' ? win32 : posix
  return path.join(userDataDir(env, platform), 'p2pchat', pathSegmentFor(name))
}

/**
 * Where `p2pchat relay` keeps its identity and stored ciphertext when no `--data-dir` is given:
 * `<user data dir>/p2pchat-relay` (see {@link defaultDataDir} for the user data dir).
 *
 * @example
 * ```ts
 * defaultRelayDataDir({ HOME: '/Users/al' }, 'darwin') // → '/Users/al/Library/Application Support/p2pchat-relay'
 * ```
 */
export function defaultRelayDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const path = platform === 'win32' ? win32 : posix
  return path.join(userDataDir(env, platform), 'p2pchat-relay')
}

const PROGRAM_USAGE = `p2pchat - serverless, end-to-end encrypted group chat on libp2p

Usage:
  p2pchat start --name <name> [options]   Chat as <name> in a group
  p2pchat relay [options]                 Run a relay for peers mDNS cannot reach
  p2pchat help [command]                  Show help for a command
  p2pchat --version                       Print the version

Options:
  -h, --help       Show help (also after a command: p2pchat start --help)
  -v, --version    Print the version

Examples:
  p2pchat start --name alice --create team
  p2pchat start --name bob --join <invite>
  p2pchat relay --listen /ip4/0.0.0.0/tcp/4001

Run 'p2pchat help <command>' for the options of a command.`

const START_USAGE = `Usage: p2pchat start --name <name> [--create <group> | --join <invite>] [options]

Start a chat peer. Peers on the same network find each other by mDNS; use --bootstrap to
reach a relay elsewhere. Without --create or --join, opens a group you already belong to.

Options:
  --name <name>           Your display name (required): at most ${MAX_NAME_BYTES} bytes of UTF-8,
                          i.e. ${MAX_NAME_BYTES} ASCII characters, fewer accented or non-Latin ones
  --create <group>        Create a new group with this name (same limit); you become its
                          first member
  --join <invite>         Join the group this invite (from a member) is for
  --group <id-or-name>    Which of your groups to open, if you belong to several
  --data-dir <dir>        Where to keep your identity and keys
                          (default: <user data dir>/p2pchat/<name>, e.g.
                          ~/.local/share/p2pchat/<name> on Linux)
  --listen <multiaddr>    Address to listen on; repeatable (default: ${DEFAULT_START_LISTEN.join(', ')})
  --bootstrap <multiaddr> Peer or relay to connect to at start; repeatable (default: none)
  --no-mdns               Do not discover peers on the local network
  --json                  Speak JSON-RPC 2.0 over stdin/stdout instead of the terminal UI
  -h, --help              Show this help

Examples:
  p2pchat start --name alice --create team
  p2pchat start --name bob --join <invite>
  p2pchat start --name carol --no-mdns \\
    --bootstrap /dns4/relay.example.com/tcp/4001/p2p/12D3KooW...`

const RELAY_USAGE = `Usage: p2pchat relay [options]

Run a relay: it relays connections between peers that cannot reach each other directly and
keeps encrypted messages for members who are offline. It cannot read them, but it sees each
group's name, its members' peer ids and names, and who is online.

Options:
  --listen <multiaddr>    Address to listen on; repeatable (default: ${DEFAULT_RELAY_LISTEN.join(', ')})
  --bootstrap <multiaddr> Other relay or peer to connect to at start; repeatable (default: none)
  --data-dir <dir>        Where to keep the relay's identity and stored messages
                          (default: <user data dir>/p2pchat-relay)
  --max-storage <size>    Most stored ciphertext to keep, e.g. 512MiB, 1GB or a number of
                          bytes (default: 1GiB)
  --retention <duration>  How long to keep stored ciphertext, e.g. 7d, 12h, 30m (default: 30d);
                          a group with no member activity for this long is dropped
  --max-groups <n>        Most groups to keep; a quarter are kept free for new groups
                          (default: 1000)
  --max-memory <size>     Memory for group data, pending buffers included (default: 256MiB)
  --json                  Log JSON lines instead of human-readable text
  -h, --help              Show this help

Examples:
  p2pchat relay
  p2pchat relay --listen /ip4/0.0.0.0/tcp/4001 --max-storage 512MiB --retention 7d`

/**
 * Help text for the program (no argument) or for one command: synopsis, options with their defaults,
 * and examples. No trailing newline.
 *
 * @example
 * ```ts
 * console.log(usage('start'))
 * ```
 */
export function usage(command?: UsageTopic): string {
  switch (command) {
    case 'start':
      return START_USAGE
    case 'relay':
      return RELAY_USAGE
    default:
      return PROGRAM_USAGE
  }
}
