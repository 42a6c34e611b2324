/**
 * The one shape of p2pchat's error classes. Callers match errors by name (`err.name === XError.name`),
 * as with `@libp2p/interface`'s errors, so the name is written out here rather than taken from the
 * class's identifier, which a bundler may rename.
 *
 * @example
 * ```ts
 * // one line for an error that carries only a message
 * export class MalformedError extends namedError('MalformedError', 'malformed input') {}
 *
 * // fields and a message built from them in the subclass
 * export class TooManyFramesError extends namedError('TooManyFramesError') {
 *   constructor(readonly maxFrames: number) {
 *     super(`More than ${maxFrames} frames on one stream`)
 *   }
 * }
 * ```
 *
 * @packageDocumentation
 */

/**
 * A base class whose instances and static side are both called `name`.
 *
 * @param name - the class's name, the same string as its identifier
 * @param defaultMessage - the message when the constructor is given none
 */
export function namedError<const Name extends string>(name: Name, defaultMessage?: string) {
  return class extends Error {
    static override readonly name: Name = name
    override readonly name: Name = name
    constructor(message = defaultMessage) {
      super(message)
    }
  }
}
