/**
 * A p2pchat peer: the libp2p stack, the group topics, sync, and the database.
 *
 * @packageDocumentation
 */
export type {
  ChatMessage,
  ChatNodeEvents,
  ChatNodeInit,
  ChatStatus,
  EncryptedNotice,
  GroupSummary,
  JoinRequestNotice,
  MembershipNotice,
  PeerRef,
  SendResult,
} from './chat-node.js'
export { ChatNode, createChatNode } from './chat-node.js'
export * from './errors.js'
export type { SeqRanges, StoredGroup, StoredMessage, StoredPeer } from './store.js'
export { ChatStore, loadOrCreateIdentity } from './store.js'
export { SYNC_PROTOCOL } from './sync.js'
export type { TransportInit, TransportNode } from './transport.js'
export { createTransport } from './transport.js'
export type { Invite, JoinRequest } from './wire.js'
export { decodeInvite, encodeInvite, topicOf } from './wire.js'
