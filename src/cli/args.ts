/**
 * Command-line parsing for `p2pchat`: a pure function from `argv` to a typed {@link Command}. Node's
 * `util.parseArgs` reads the options (see `command-line.ts`); this module checks their values the way
 * the rest of p2pchat will: names by the membership core's rule, multiaddrs by the multiaddr parser,
 * sizes and durations, and which options exclude each other. Nothing here touches the network, the
 * disk or the console.
 *
 * @packageDocumentation
 */

import type { ParseArgsOptionsConfig } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { isValidName, MAX_NAME_BYTES } from '../membership/index.js'
import { DEFAULT_LISTEN } from '../node/defaults.js'
import { DEFAULT_MAX_GROUPS, DEFAULT_MAX_MEMORY, DEFAULT_RELAY_LISTEN } from '../relay/defaults.js'
import { parseWebAddress, type WebAddress } from '../web/address.js'
import {
  type CommandArgs,
  DEFAULT_MAX_STORAGE,
  DEFAULT_RETENTION,
  type HelpCommand,
  readCommandLine,
  readOptions,
  type VersionCommand,
} from './command-line.js'
import { UsageError } from './errors.js'
import { parseCount, parseDuration, parseSize } from './units.js'

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
  /** `--data-dir`, as typed; `undefined` means "use `defaultDataDir`" (default-data-dir.ts). */
  dataDir: string | undefined
  /**
   * Multiaddrs to listen on, validated; `undefined` without `--listen`: the node then reuses the port of
   * its last run when free, else {@link DEFAULT_LISTEN}.
   */
  listen: string[] | undefined
  /** Multiaddrs of peers (typically relays) to dial at start-up, validated; remembered for later starts. */
  bootstrap: string[]
  /** `--forget-relay`: remembered relays (by multiaddr or peer id) to forget before starting. */
  forgetRelays: string[]
  /** Whether to discover peers on the LAN with mDNS; `false` with `--no-mdns`. */
  mdns: boolean
  /** Speak JSON-RPC 2.0 on stdin/stdout instead of the interactive terminal UI. */
  json: boolean
  /** `--web [host:port]`: also serve the web interface there; `undefined` without `--web`. */
  web: WebAddress | undefined
}

/** `p2pchat relay`: run a relay that connects peers and stores ciphertext for offline members. */
export interface RelayCommand {
  command: 'relay'
  /** `--data-dir`, as typed; `undefined` means "use `defaultRelayDataDir`" (default-data-dir.ts). */
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

export type { HelpCommand, VersionCommand }

/** What the user asked for, discriminated by `command`. */
export type Command = StartCommand | RelayCommand | HelpCommand | VersionCommand

/** Options both commands that run a node take. */
const NODE_OPTIONS = {
  'data-dir': { type: 'string' },
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  json: { type: 'boolean', default: false },
} as const satisfies ParseArgsOptionsConfig

const START_OPTIONS = {
  ...NODE_OPTIONS,
  name: { type: 'string' },
  create: { type: 'string' },
  join: { type: 'string' },
  group: { type: 'string' },
  'forget-relay': { type: 'string', multiple: true },
  mdns: { type: 'boolean', default: true }, // off with --no-mdns
  web: { type: 'string' }, // the value is optional: see optionalValue
} as const satisfies ParseArgsOptionsConfig

const RELAY_OPTIONS = {
  ...NODE_OPTIONS,
  'max-storage': { type: 'string' },
  'max-memory': { type: 'string' },
  'max-groups': { type: 'string' },
  retention: { type: 'string' },
} as const satisfies ParseArgsOptionsConfig

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
  const line = readCommandLine(argv)
  return line.command === 'help' || line.command === 'version' ? line : parseCommandArgs(line)
}

/**
 * The second step of {@link parseArgs}: read and check the options of `start` or `relay`.
 *
 * @throws {@link UsageError} whose `command` is the command being parsed
 */
export function parseCommandArgs({ command, args }: CommandArgs): StartCommand | RelayCommand {
  try {
    return command === 'start'
      ? buildStart(readOptions(optionalValue(args, '--web'), START_OPTIONS, command))
      : buildRelay(readOptions(args, RELAY_OPTIONS, command))
  } catch (err) {
    // the value checks below do not know the command; the caller shows its usage
    throw err instanceof UsageError && err.command === undefined ? new UsageError(err.message, command) : err
  }
}

type Values<T extends ParseArgsOptionsConfig> = ReturnType<typeof readOptions<T>>

function buildStart(values: Values<typeof START_OPTIONS>): StartCommand {
  if (values.name === undefined) {
    throw new UsageError("missing required option '--name'")
  }
  const name = validateDisplayName(values.name, '--name')
  const { create, join, group: groupRef } = values
  if (create !== undefined && join !== undefined) {
    throw new UsageError("options '--create' and '--join' cannot be used together")
  }
  if (groupRef !== undefined && (create !== undefined || join !== undefined)) {
    throw new UsageError(
      `options '--group' and '${create !== undefined ? '--create' : '--join'}' cannot be used together`,
    )
  }
  let group: GroupSelection = { kind: 'open' }
  if (create !== undefined) {
    group = { kind: 'create', groupName: validateDisplayName(create, '--create') }
  } else if (join !== undefined) {
    group = { kind: 'join', invite: nonEmpty(join, '--join', 'an invite') }
  } else if (groupRef !== undefined) {
    group = { kind: 'open', group: nonEmpty(groupRef, '--group', 'a group id or name') }
  }
  return {
    command: 'start',
    name,
    group,
    dataDir: dataDir(values['data-dir']),
    listen: values.listen === undefined ? undefined : multiaddrs(values.listen, '--listen', []),
    bootstrap: multiaddrs(values.bootstrap, '--bootstrap', []),
    forgetRelays: (values['forget-relay'] ?? []).map((v) =>
      nonEmpty(v, '--forget-relay', 'a multiaddr or peer id'),
    ),
    mdns: values.mdns,
    json: values.json,
    web: values.web === undefined ? undefined : webAddress(values.web),
  }
}

/**
 * `option` given without a value (last, or before another option) as `option=`, since node's parser
 * knows no options with an optional value.
 */
function optionalValue(args: readonly string[], option: string): string[] {
  const end = args.indexOf('--')
  return args.map((arg, i) =>
    arg === option && (end < 0 || i < end) && (i + 1 === args.length || args[i + 1]?.startsWith('-'))
      ? `${option}=`
      : arg,
  )
}

function webAddress(value: string): WebAddress {
  try {
    return parseWebAddress(value)
  } catch (err) {
    throw new UsageError(`invalid '--web' value: ${(err as Error).message}`)
  }
}

function buildRelay(values: Values<typeof RELAY_OPTIONS>): RelayCommand {
  const { 'max-storage': maxStorage, 'max-memory': maxMemory, 'max-groups': maxGroups, retention } = values
  return {
    command: 'relay',
    dataDir: dataDir(values['data-dir']),
    listen: multiaddrs(values.listen, '--listen', DEFAULT_RELAY_LISTEN),
    bootstrap: multiaddrs(values.bootstrap, '--bootstrap', []),
    json: values.json,
    maxStorage:
      maxStorage === undefined ? DEFAULT_MAX_STORAGE : parseSize(maxStorage, "'--max-storage' value"),
    retention: retention === undefined ? DEFAULT_RETENTION : parseDuration(retention, "'--retention' value"),
    maxMemory: maxMemory === undefined ? DEFAULT_MAX_MEMORY : parseSize(maxMemory, "'--max-memory' value"),
    maxGroups: maxGroups === undefined ? DEFAULT_MAX_GROUPS : parseCount(maxGroups, "'--max-groups' value"),
  }
}

/** `value` trimmed, or a usage error saying that `option` needs `what`. */
function nonEmpty(value: string, option: string, what: string): string {
  const text = value.trim()
  if (text === '') {
    throw new UsageError(`option '${option}' needs ${what}, got an empty value`)
  }
  return text
}

/** `--data-dir` as typed (a directory name may end in a space), but not empty. */
function dataDir(value: string | undefined): string | undefined {
  if (value !== undefined) nonEmpty(value, '--data-dir', 'a directory')
  return value
}

/**
 * Check that each value parses as a multiaddr with at least one component.
 *
 * @returns the values, trimmed, or `defaults` when the option was not given
 * @throws {@link UsageError} naming `option` and quoting the parser's reason
 */
function multiaddrs(values: string[] | undefined, option: string, defaults: readonly string[]): string[] {
  return (values ?? defaults).map((value) => {
    const text = value.trim()
    let reason = 'it has no protocols'
    try {
      if (multiaddr(text).getComponents().length > 0) return text
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err)
    }
    throw new UsageError(
      `invalid '${option}' value '${value}': ${reason}; expected a multiaddr like /ip4/192.168.1.10/tcp/4001`,
    )
  })
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
function validateDisplayName(value: string, option: string): string {
  const name = value.trim()
  if (name === '') {
    throw new UsageError(`option '${option}' must not be empty`)
  }
  const bad = UNPRINTABLE.exec(name)
  if (bad !== null) {
    const code = (bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')
    throw new UsageError(
      `option '${option}' contains an unprintable character (U+${code}); use letters, digits, spaces and symbols`,
    )
  }
  if (!isValidName(name)) {
    const bytes = Buffer.byteLength(name, 'utf8')
    if (bytes <= MAX_NAME_BYTES) {
      // not reached with today's core rule; kept so a stricter rule still gets a usage error
      throw new UsageError(`option '${option}' is not a valid name`)
    }
    const chars = [...name].length
    const size = bytes === chars ? `${bytes} bytes` : `${chars} characters take ${bytes} bytes in UTF-8`
    throw new UsageError(
      `option '${option}' is too long: ${size}, at most ${MAX_NAME_BYTES} bytes are allowed`,
    )
  }
  return name
}
