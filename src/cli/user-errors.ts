/**
 * What the CLI makes of each error class, in one table: whether it is the user's to fix (one line, no
 * stack), the `data.name` a JSON-RPC client gets, and the message shown. Pure: a thrown value in, a
 * sentence out, so the mapping is unit-tested without starting a node. The error modules imported here
 * import nothing, but the membership and crypto ones still count as the core: `main` loads this module
 * only once a command failed, so `--version` and `--help` stay light.
 *
 * @packageDocumentation
 */

import * as crypto from '../crypto/errors.js'
import * as membership from '../membership/errors.js'
import * as node from '../node/errors.js'
import * as relay from '../relay/errors.js'
import * as web from '../web/errors.js'
import * as cli from './errors.js'
import type { ApplicationErrorName } from './json-rpc.js'

/** An error class, as the table keys on it: its static `name` is the `.name` of its instances. */
export interface ErrorClass {
  readonly name: string
  readonly prototype: Error
}

/** What the CLI does with one error class. */
export interface ErrorPresentation {
  /**
   * The user's to fix (a bad invite, an unknown group, a data directory in use, an identity key other
   * users can read): a command that fails with it prints the message as one line, no stack, exit 1.
   */
  readonly user?: true
  /**
   * The `error.data.name` a JSON-RPC client gets (`InvalidParams` with code -32602, the others -32000).
   * Absent: the error is not expected there, and the client gets "Internal error".
   */
  readonly rpc?: ApplicationErrorName
  /** The message shown (terminal and JSON-RPC), from the error's own; default: that message. */
  readonly message?: (message: string) => string
}

/**
 * Why a message cannot be sent yet when the core says there is no current epoch (`NoCurrentEpochError`):
 * a concurrent membership change left no group key that reaches exactly the members, or this peer has
 * not received its sealed key yet. Either resolves on its own, so the user is told to retry.
 *
 * @param coreMessage - the core error's message, kept when it says more than its default
 */
export function noCurrentEpochMessage(coreMessage: string): string {
  const standard = 'no usable group key yet: waiting for a member to rekey; try again shortly'
  if (coreMessage === '' || /waiting for a rekey/.test(coreMessage)) return standard
  return `no usable group key yet (${coreMessage}); try again shortly`
}

/** The one table from error class to what the CLI shows; see {@link ErrorPresentation}. */
export const ERROR_TABLE: ReadonlyMap<ErrorClass, ErrorPresentation> = new Map<ErrorClass, ErrorPresentation>(
  [
    [membership.AccessDeniedError, { user: true, rpc: 'AccessDenied' }],
    [node.NotInGroupError, { user: true, rpc: 'NotInGroup' }],
    [node.UnknownMemberError, { rpc: 'UnknownMember' }],
    [node.AmbiguousMemberError, { rpc: 'AmbiguousMember' }],
    [node.UnverifiedNameError, { rpc: 'UnverifiedName' }],
    [cli.InvalidParamsError, { rpc: 'InvalidParams' }],
    // no group named, or none or several match the name: the message names the groups
    [cli.GroupChoiceError, { user: true, rpc: 'InvalidParams' }],
    // e.g. adding someone who is already a member: the message is for the client
    [membership.InvalidArgumentError, { user: true, rpc: 'InvalidParams' }],
    [crypto.InvalidMemberIdError, { user: true, rpc: 'InvalidParams' }],
    [node.InvalidInviteError, { user: true, rpc: 'InvalidParams' }],
    [membership.TooLargeError, { rpc: 'InvalidParams' }],
    [node.GroupNotReadyError, { rpc: 'InvalidParams' }],
    // nothing can be sent until a rekey: say to retry
    [membership.NoCurrentEpochError, { rpc: 'InvalidParams', message: noCurrentEpochMessage }],
    [node.DialFailedError, { user: true, rpc: 'Unreachable' }],
    [node.InvalidTransportInitError, { user: true }],
    // a second process on the same data directory (src/node)
    [node.DataDirLockedError, { user: true }],
    // identity.key readable or writable by other users; the message has the chmod that fixes it
    [node.InsecureIdentityKeyError, { user: true }],
    // relay limits that do not fit together, e.g. a --max-memory too small for --max-groups
    [relay.InvalidRelayInitError, { user: true }],
  ],
)

/**
 * Exported error classes the CLI has nothing of its own to show for: typed rejections of network input
 * that the node logs and carries on from, limits of its own streams, and errors that escaping to the
 * CLI would make a bug (whose stack is printed). `UsageError` is printed by `main` with the usage text.
 */
export const INTERNAL_ERRORS: readonly ErrorClass[] = [
  cli.UsageError,
  crypto.DecryptionError,
  crypto.InvalidKeyError,
  crypto.InvalidSignatureError,
  membership.AlreadyMemberError,
  membership.BadEpochKeyError,
  membership.InvalidEpochError,
  membership.InvalidInviteTokenError,
  membership.InviteTokenUsedError,
  membership.MalformedError,
  membership.NoEpochKeyError,
  membership.NotAMemberError,
  membership.PendingLimitError,
  membership.ReplayError,
  membership.StaleEpochError,
  membership.UnknownAuthorError,
  membership.UnknownEpochError,
  membership.VoidInviteTokenError,
  membership.WrongGroupError,
  node.DuplicateTopicValidatorError,
  node.FrameTooLargeError,
  node.IncompatibleGossipsubError,
  node.MalformedFrameError,
  node.NodeStoppedError,
  node.SyncRateLimitError,
  node.SyncStalledError,
  node.SyncStreamLimitError,
  node.TooManyFramesError,
  node.TruncatedFrameError,
  relay.QuotaExceededError,
  relay.RateLimitedError,
  // args.ts turns it into a UsageError
  web.InvalidWebAddressError,
]

const BY_NAME: ReadonlyMap<string, ErrorPresentation> = new Map(
  [...ERROR_TABLE].map(([errorClass, presentation]) => [errorClass.name, presentation]),
)

/** The table's entry for a thrown value, matched on its `.name`; `undefined` for anything else. */
export function presentationOf(err: unknown): ErrorPresentation | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const { name } = err as { name?: unknown }
  return typeof name === 'string' ? BY_NAME.get(name) : undefined
}

/** The message the CLI shows for an error a command failed with (`! <message>` in the terminal). */
export function shownMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return presentationOf(err)?.message?.(message) ?? message
}

/** libp2p's error for addresses it could not listen on; libp2p does not export the class to match on. */
const LIBP2P_LISTEN_ERROR = 'UnsupportedListenAddressesError'

/** What the errors Node.js raises for `listen()` mean, in words a user can act on. */
const LISTEN_ERROR_CODES: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available (no network interface of this machine has that IP address)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
}

/** What one listen failure says, as a short reason a user can act on. */
function listenReason(text: string): string {
  const reason = text.replace(/^\w*Error: /, '').trim()
  const code = /^listen (E[A-Z]+)\b/.exec(reason)?.[1]
  if (code !== undefined) return LISTEN_ERROR_CODES[code] ?? reason.replace(/^listen /, '')
  if (/no transport was configured/i.test(reason)) {
    return 'no transport can listen on it (p2pchat listens on TCP, e.g. /ip4/0.0.0.0/tcp/4001)'
  }
  return reason
}

/**
 * One line for libp2p's `UnsupportedListenAddressesError`, whose message is a paragraph of advice
 * (about `transportManager.faultTolerance`, which a user cannot set) followed by one indented
 * `<multiaddr>: <error>` entry per address that failed, each with its stack.
 *
 * @example
 * ```ts
 * listenErrorMessage(err.message)
 * // → 'cannot listen on /ip4/0.0.0.0/tcp/4001: address already in use'
 * ```
 */
export function listenErrorMessage(message: string): string {
  const failures: string[] = []
  for (const line of message.split('\n')) {
    // a multiaddr has no ': ' in it (an IPv6 address has colons, but no space after them)
    const match = /^\s+(\/\S+): (.+)$/.exec(line)
    if (match?.[1] !== undefined && match[2] !== undefined) {
      failures.push(`cannot listen on ${match[1]}: ${listenReason(match[2])}`)
    }
  }
  if (failures.length > 0) return failures.join('; ')
  return `cannot listen on the --listen addresses: ${message.split('\n')[0]?.trim() ?? 'unknown reason'}`
}

/**
 * The one line to print for a thrown value when it is the user's to fix: a listen address that is in
 * use or not available, or an error the {@link ERROR_TABLE} says is the user's. `undefined` means a bug: the caller
 * prints the stack.
 */
export function userErrorMessage(err: unknown): string | undefined {
  // libp2p reports listen failures itself; a wrapper may carry one as its cause
  let cause: unknown = err
  for (let depth = 0; depth < 5 && typeof cause === 'object' && cause !== null; depth++) {
    const e = cause as {
      name?: unknown
      message?: unknown
      code?: unknown
      syscall?: unknown
      address?: unknown
      port?: unknown
    }
    if (e.name === LIBP2P_LISTEN_ERROR && typeof e.message === 'string') {
      return listenErrorMessage(e.message)
    }
    if (e.syscall === 'listen' && typeof e.code === 'string') {
      // a bare Node.js error, e.g. from a transport that does not wrap it
      const reason = LISTEN_ERROR_CODES[e.code] ?? (typeof e.message === 'string' ? e.message : e.code)
      const where =
        typeof e.address === 'string'
          ? ` on ${e.address}${typeof e.port === 'number' ? ` port ${e.port}` : ''}`
          : ''
      return `cannot listen${where}: ${reason}`
    }
    cause = (cause as { cause?: unknown }).cause
  }
  if (err instanceof Error && presentationOf(err)?.user === true) {
    return shownMessage(err)
      .replace(/\s*\n\s*/g, ' ')
      .trim()
  }
  return undefined
}
