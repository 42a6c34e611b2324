/**
 * The secure group core: who belongs to a group, and making sure only they can read.
 *
 * Pure: no sockets, no disk. A {@link Group} holds one group's membership log (signed add/remove/rekey
 * events in a hash-linked DAG, resolved by the strong-remove rule), the epoch keys this identity was
 * sealed, and seals and opens message envelopes.
 *
 * @packageDocumentation
 */

export { dutyRank } from './duty.js'
export type { Envelope, EnvelopeHeader, MessageBody } from './envelope.js'
export {
  ciphertextPreview,
  claimedSender,
  decodeEnvelope,
  MAX_ENVELOPE_BYTES,
  MAX_TEXT_BYTES,
} from './envelope.js'
export * from './errors.js'
export type { EventHead, EventKey, EventPayload, EventType, SignedEvent } from './event.js'
export {
  decodeEvent,
  isValidName,
  MAX_EVENT_BYTES,
  MAX_MEMBERS,
  MAX_NAME_BYTES,
  memberIdFromString,
  memberIdToString,
} from './event.js'
export type {
  CreateGroupInit,
  DecryptedMessage,
  EncryptedMessage,
  EpochKeyProblem,
  GroupInit,
  GroupOptions,
  MembershipChange,
  OpenedMessage,
  ReceiveEventResult,
  Rename,
  SealedMessage,
} from './group.js'
export { DEFAULT_GRACE_MS, Group } from './group.js'
export type { InviteToken, InviteTokenInit } from './invite-token.js'
export {
  DEFAULT_INVITE_TTL_MS,
  decodeInviteToken,
  decodeInviteUse,
  inviteTokenOf,
  MAX_INVITE_USE_BYTES,
  signInviteToken,
  useInviteToken,
} from './invite-token.js'
export type { MemberInfo, MemberMap } from './log.js'
export type { PendingBudgetInit, PendingClaim, PendingTicket, PendingUsage } from './pending.js'
export { PendingBudget } from './pending.js'
