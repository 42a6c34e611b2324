/**
 * Errors raised by the command-line layer.
 *
 * Each error is a class identified by `.name`, so callers and tests can tell them apart without
 * parsing messages.
 *
 * @packageDocumentation
 */

import { namedError } from '../named-error.js'

/** The commands whose help text {@link UsageError} can point at. */
export type UsageTopic = 'start' | 'relay'

/**
 * The command line could not be understood: a missing or unknown flag, a bad value, conflicting
 * options. The message is one line meant for the user; the caller prints it, then the usage text for
 * {@link UsageError.command} (or the program), and exits with status 2. No stack trace is shown,
 * because this is the user's mistake rather than a bug.
 *
 * @example
 * ```ts
 * try {
 *   parseArgs(argv)
 * } catch (err) {
 *   if (err instanceof UsageError) {
 *     console.error(`p2pchat: ${err.message}\n\n${usage(err.command)}`)
 *     return 2
 *   }
 *   throw err
 * }
 * ```
 */
export class UsageError extends namedError('UsageError') {
  /** The command being parsed when the error happened, if any, so its usage can be shown. */
  readonly command: UsageTopic | undefined

  constructor(message = 'Invalid command line', command?: UsageTopic) {
    super(message)
    this.command = command
  }
}

/**
 * A JSON-RPC method was called with parameters it cannot use (a missing field, a wrong type).
 *
 * Method handlers throw it; the JSON-RPC server reports it to the client as
 * `{ code: -32602, data: { name: 'InvalidParams' } }` with this error's message (see `ERROR_TABLE`).
 *
 * @example
 * ```ts
 * if (typeof params.text !== 'string') throw new InvalidParamsError('params.text must be a string')
 * ```
 */
export class InvalidParamsError extends namedError('InvalidParamsError', 'Invalid params') {}

/**
 * A request named no group, or a group that is not there, while the node is in several: the message
 * names them. Reported to JSON-RPC clients as InvalidParams.
 */
export class GroupChoiceError extends namedError('GroupChoiceError') {}
