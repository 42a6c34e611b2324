/**
 * Which thrown errors are the user's to fix, and the one line the CLI shows for each. Pure: a thrown
 * value in, a sentence out, so the mapping is unit-tested without starting a node.
 *
 * @packageDocumentation
 */

import { InsecureIdentityKeyError } from '../node/errors.js'
import { InvalidRelayInitError } from '../relay/errors.js'

/**
 * `.name`s of errors that are the user's to fix (a bad invite, an unknown group, a data directory in
 * use by another process, an identity key other users can read), printed as one line without a stack.
 */
export const USER_ERRORS: ReadonlySet<string> = new Set([
  'InvalidInviteError',
  'NotInGroupError',
  'InvalidArgumentError',
  'InvalidMemberIdError',
  'InvalidTransportInitError',
  'AccessDeniedError',
  // a second process on the same data directory (src/node)
  'DataDirLockedError',
  // identity.key readable or writable by other users; the message has the chmod that fixes it
  InsecureIdentityKeyError.name,
  // relay limits that do not fit together, e.g. a --max-memory too small for --max-groups
  InvalidRelayInitError.name,
])

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
 * use or not available, or an error named in {@link USER_ERRORS}. `undefined` means a bug: the caller
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
    if (e.name === 'UnsupportedListenAddressesError' && typeof e.message === 'string') {
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
  if (err instanceof Error && USER_ERRORS.has(err.name)) {
    return err.message.replace(/\s*\n\s*/g, ' ').trim()
  }
  return undefined
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
