/**
 * A p2pchat peer: the libp2p stack, the group topics, sync, and the database.
 *
 * @packageDocumentation
 */
export type {
  BadEpochKeyNotice,
  ChatMessage,
  ChatNodeEvents,
  ChatNodeInit,
  ChatStatus,
  ClaimedPeerRef,
  EncryptedNotice,
  GroupStanding,
  GroupStatus,
  GroupSummary,
  InviteForgedNotice,
  InviteRefusedNotice,
  JoinRequestNotice,
  JoinUnansweredNotice,
  MembershipNotice,
  PeerRef,
  ReachabilityChange,
  Removal,
  SendResult,
} from './chat-events.js'
export { ChatNode, createChatNode } from './chat-node.js'
export type { ChatNodeComponents, Clock, NodeComponents, TransportFactory } from './components.js'
export { DIAL_TIMEOUT_MS, systemClock } from './components.js'
export * from './errors.js'
export type { GroupOrigin, Invite, InviteAdmits, InvitePeer } from './invite.js'
export { decodeInvite, encodeInvite, forgedClaim, INVITE_PREFIX, MAX_INVITE_ADDRS } from './invite.js'
export type { InviteOptions } from './invite-check.js'
export type { SeqRanges, StoredGroup, StoredMessage, StoredPeer } from './store.js'
export { ChatStore, loadOrCreateIdentity } from './store.js'
export { SYNC_PROTOCOL } from './sync.js'
export type { TransportInit, TransportNode } from './transport.js'
export { createTransport } from './transport.js'
export type { JoinRequest } from './wire.js'
export { topicOf } from './wire.js'
