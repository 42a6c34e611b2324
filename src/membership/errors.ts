/**
 * Typed rejections of the group core. Tests and callers match on `.name`; every class has a default
 * message a user can read.
 */

/** Bytes that do not decode to a well-formed event or envelope. */
export class MalformedError extends Error {
  static override readonly name = 'MalformedError'
  override readonly name = 'MalformedError'
  constructor(message = 'malformed input') {
    super(message)
  }
}

/** Input larger than the limit for its kind. */
export class TooLargeError extends Error {
  static override readonly name = 'TooLargeError'
  override readonly name = 'TooLargeError'
  constructor(message = 'input is over the size limit') {
    super(message)
  }
}

/** An event or envelope that belongs to another group. */
export class WrongGroupError extends Error {
  static override readonly name = 'WrongGroupError'
  override readonly name = 'WrongGroupError'
  constructor(message = 'input belongs to another group') {
    super(message)
  }
}

/** An event or message this replica has already accepted (a replay or a duplicate delivery). */
export class ReplayError extends Error {
  static override readonly name = 'ReplayError'
  override readonly name = 'ReplayError'
  constructor(message = 'already seen') {
    super(message)
  }
}

/** The author of an event, or the sender of a message, was not a member where it claims to act. */
export class NotAMemberError extends Error {
  static override readonly name = 'NotAMemberError'
  override readonly name = 'NotAMemberError'
  constructor(message = 'author is not a member') {
    super(message)
  }
}

/** A local operation that this identity is not allowed to perform (the original "Access denied"). */
export class AccessDeniedError extends Error {
  static override readonly name = 'AccessDeniedError'
  override readonly name = 'AccessDeniedError'
  constructor(message = 'Access denied: you are not a member of this group') {
    super(message)
  }
}

/** An epoch event whose sealed keys do not go to exactly the members resolved at that event. */
export class InvalidEpochError extends Error {
  static override readonly name = 'InvalidEpochError'
  override readonly name = 'InvalidEpochError'
  constructor(message = 'epoch keys are not sealed to exactly the members of the epoch') {
    super(message)
  }
}

/**
 * An add of someone who is already a member where the add was made. Accepting it would silently rename
 * the member on every replica; a member changes its own name with a signed rename instead.
 */
export class AlreadyMemberError extends Error {
  static override readonly name = 'AlreadyMemberError'
  override readonly name = 'AlreadyMemberError'
  constructor(message = 'the subject is already a member') {
    super(message)
  }
}

/**
 * The group key sealed to this identity in an epoch does not open, or opens to a key that does not match
 * the commitment its author signed: the author split or withheld the key. This member cannot use that
 * epoch and rekeys.
 */
export class BadEpochKeyError extends Error {
  static override readonly name = 'BadEpochKeyError'
  override readonly name = 'BadEpochKeyError'
  constructor(message = 'the epoch key sealed to this member does not open to the committed key') {
    super(message)
  }
}

/** A message under an epoch this replica does not know yet; it waits for the epoch's event. */
export class UnknownEpochError extends Error {
  static override readonly name = 'UnknownEpochError'
  override readonly name = 'UnknownEpochError'
  constructor(message = 'message is under an epoch that is not known yet') {
    super(message)
  }
}

/** A message under an epoch that was superseded longer ago than the grace window. */
export class StaleEpochError extends Error {
  static override readonly name = 'StaleEpochError'
  override readonly name = 'StaleEpochError'
  constructor(message = 'message is under a superseded epoch, past its grace window') {
    super(message)
  }
}

/** A well-formed, authentic message this identity has no key for: it stays ciphertext. */
export class NoEpochKeyError extends Error {
  static override readonly name = 'NoEpochKeyError'
  override readonly name = 'NoEpochKeyError'
  constructor(message = 'this identity holds no key for the message epoch') {
    super(message)
  }
}

/** The bounded buffer for events with unknown parents, or messages with unknown epochs, is full. */
export class PendingLimitError extends Error {
  static override readonly name = 'PendingLimitError'
  override readonly name = 'PendingLimitError'
  constructor(message = 'too many items are waiting for their dependencies') {
    super(message)
  }
}

/**
 * A message under an epoch this replica does not know, from a sender that no event of the group's known log
 * ever added. It is not kept to wait for its epoch: a member's message always comes from someone added in
 * the log, and if this replica merely lags behind, sync brings the add, the epoch and the message again.
 */
export class UnknownAuthorError extends Error {
  static override readonly name = 'UnknownAuthorError'
  override readonly name = 'UnknownAuthorError'
  constructor(message = 'the sender was never added to this group, so its message does not wait') {
    super(message)
  }
}

/** There is no current epoch whose key is sealed only to members, so nothing can be sent until a rekey. */
export class NoCurrentEpochError extends Error {
  static override readonly name = 'NoCurrentEpochError'
  override readonly name = 'NoCurrentEpochError'
  constructor(message = 'no usable epoch key yet: waiting for a rekey') {
    super(message)
  }
}

/** A member id or argument that cannot be used for the requested operation. */
export class InvalidArgumentError extends Error {
  static override readonly name = 'InvalidArgumentError'
  override readonly name = 'InvalidArgumentError'
}

/** An invite token, or its use, that does not check out: forged, for another group, or not proved. */
export class InvalidInviteTokenError extends Error {
  static override readonly name = 'InvalidInviteTokenError'
  override readonly name = 'InvalidInviteTokenError'
  constructor(message = 'the invite token is not valid') {
    super(message)
  }
}

/** An add with an invite token that an add in its causal past already used: a token admits once. */
export class InviteTokenUsedError extends Error {
  static override readonly name = 'InviteTokenUsedError'
  override readonly name = 'InviteTokenUsedError'
  constructor(message = 'the invite token was already used') {
    super(message)
  }
}

/** An add with an invite token whose inviter is not a member in the add's causal past (removed, say). */
export class VoidInviteTokenError extends Error {
  static override readonly name = 'VoidInviteTokenError'
  override readonly name = 'VoidInviteTokenError'
  constructor(message = 'the member who made the invite is no longer a member') {
    super(message)
  }
}
