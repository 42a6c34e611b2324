/**
 * Typed rejections of the group core. Tests and callers match on `.name`; every class has a default
 * message a user can read.
 */

import { namedError } from '../named-error.js'

/** Bytes that do not decode to a well-formed event or envelope. */
export class MalformedError extends namedError('MalformedError', 'malformed input') {}

/** Input larger than the limit for its kind. */
export class TooLargeError extends namedError('TooLargeError', 'input is over the size limit') {}

/** An event or envelope that belongs to another group. */
export class WrongGroupError extends namedError('WrongGroupError', 'input belongs to another group') {}

/** An event or message this replica has already accepted (a replay or a duplicate delivery). */
export class ReplayError extends namedError('ReplayError', 'already seen') {}

/** The author of an event, or the sender of a message, was not a member where it claims to act. */
export class NotAMemberError extends namedError('NotAMemberError', 'author is not a member') {}

/** A local operation that this identity is not allowed to perform (the original "Access denied"). */
export class AccessDeniedError extends namedError(
  'AccessDeniedError',
  'Access denied: you are not a member of this group',
) {}

/** An epoch event whose sealed keys do not go to exactly the members resolved at that event. */
export class InvalidEpochError extends namedError(
  'InvalidEpochError',
  'epoch keys are not sealed to exactly the members of the epoch',
) {}

/**
 * An add of someone who is already a member where the add was made. Accepting it would silently rename
 * the member on every replica; a member changes its own name with a signed rename instead.
 */
export class AlreadyMemberError extends namedError('AlreadyMemberError', 'the subject is already a member') {}

/**
 * The group key sealed to this identity in an epoch does not open, or opens to a key that does not match
 * the commitment its author signed: the author split or withheld the key. This member cannot use that
 * epoch and rekeys.
 */
export class BadEpochKeyError extends namedError(
  'BadEpochKeyError',
  'the epoch key sealed to this member does not open to the committed key',
) {}

/** A message under an epoch this replica does not know yet; it waits for the epoch's event. */
export class UnknownEpochError extends namedError(
  'UnknownEpochError',
  'message is under an epoch that is not known yet',
) {}

/** A message under an epoch that was superseded longer ago than the grace window. */
export class StaleEpochError extends namedError(
  'StaleEpochError',
  'message is under a superseded epoch, past its grace window',
) {}

/** A well-formed, authentic message this identity has no key for: it stays ciphertext. */
export class NoEpochKeyError extends namedError(
  'NoEpochKeyError',
  'this identity holds no key for the message epoch',
) {}

/** The bounded buffer for events with unknown parents, or messages with unknown epochs, is full. */
export class PendingLimitError extends namedError(
  'PendingLimitError',
  'too many items are waiting for their dependencies',
) {}

/**
 * A message under an epoch this replica does not know, from a sender that no event of the group's known log
 * ever added. It is not kept to wait for its epoch: a member's message always comes from someone added in
 * the log, and if this replica merely lags behind, sync brings the add, the epoch and the message again.
 */
export class UnknownAuthorError extends namedError(
  'UnknownAuthorError',
  'the sender was never added to this group, so its message does not wait',
) {}

/** There is no current epoch whose key is sealed only to members, so nothing can be sent until a rekey. */
export class NoCurrentEpochError extends namedError(
  'NoCurrentEpochError',
  'no usable epoch key yet: waiting for a rekey',
) {}

/** A member id or argument that cannot be used for the requested operation. */
export class InvalidArgumentError extends namedError('InvalidArgumentError') {}
