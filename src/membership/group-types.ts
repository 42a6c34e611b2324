/**
 * The options and results of a {@link Group}: what it is opened with, and what receiving, sealing and
 * opening give back.
 *
 * @packageDocumentation
 */

import type { Identity } from '../crypto/index.js'
import type { EventHead, SignedEvent } from './event.js'
import type { PendingBudget } from './pending.js'

/** Default grace window in which a superseded epoch is still accepted. */
export const DEFAULT_GRACE_MS = 60_000

/** Options shared by every way of opening a `Group`. */
export interface GroupOptions {
  /** Clock, in ms; injected so tests control the grace window. Default `Date.now`. */
  now?: () => number
  /** How long a superseded epoch stays acceptable, in ms. Default {@link DEFAULT_GRACE_MS}. */
  graceMs?: number
  /**
   * Bound on the events waiting for parents in this group, for members' and strangers' apart (see
   * {@link PendingBudget}). Default 4096.
   */
  maxPendingEvents?: number
  /** Bound on the bytes (bookkeeping included) of events waiting for parents, likewise. Default 16 MiB. */
  maxPendingBytes?: number
  /** Bound on the messages waiting for their epoch in this group, likewise. Default 1024. */
  maxPendingMessages?: number
  /**
   * Where this group's waiting events and messages are accounted, per sending peer and per author, with
   * those of every other group given the same budget (see {@link PendingBudget}). A node or relay gives
   * all its groups one. Default: one budget shared by every group of the process given none.
   */
  pendingBudget?: PendingBudget
  /**
   * Never open an epoch key, even one sealed to this identity: for relays, which store and forward
   * ciphertext and must not be able to read it even if someone adds them as a member.
   */
  ciphertextOnly?: boolean
}

/** Options for the `Group` constructor: a group known by id, whose events arrive later. */
export interface GroupInit extends GroupOptions {
  identity: Identity
  /** The group id (genesis CID string). */
  groupId: string
}

/** Options for `Group.create`. */
export interface CreateGroupInit extends GroupOptions {
  identity: Identity
  /** Group name, e.g. `team`. */
  name: string
  /** The founder's display name. */
  memberName: string
}

/** A membership change caused by one event, for "alice added bob" lines. */
export interface MembershipChange {
  action: 'create' | 'add' | 'remove' | 'rename'
  by: string
  member: string
  event: string
}

/** A member whose resolved display name changed. */
export interface Rename {
  member: string
  from: string
  to: string
}

/**
 * The key sealed to this identity in an epoch is unusable: it does not open, or it opens to a key other
 * than the one its author committed to, so this member cannot read or write under it.
 */
export interface EpochKeyProblem {
  epoch: string
  /** Who chose (and sealed) the bad key. */
  author: string
  reason: string
}

/** Options for `Group.receiveEvent` and `Group.open`. */
export interface ReceiveOptions {
  /**
   * The libp2p peer that delivered the input (the gossip propagation source, the sync partner). What has
   * to wait is accounted against it. Leave it out only for local input (storage, this identity's own),
   * which waits as a member's would: network input without it would escape the per-peer accounting.
   */
  from?: string
}

/** Options for {@link Group.receiveEvent}. */
export interface ReceiveEventOptions extends ReceiveOptions {
  /**
   * The event comes from this node's own store, written only after it was checked and applied: its
   * signature and canonical form are not checked again (a restart verified every stored event, half of
   * its cost). Never set it for input from the network or from another process.
   */
  stored?: boolean
  /**
   * With `stored`: the event as this replica just signed it, so it is not parsed again (a 1,000-key
   * event's decode). Only for `Group`'s own events.
   */
  decoded?: SignedEvent
}

/** What receiving one event did. */
export interface ReceiveEventResult {
  /** Events applied (the one received and any it unblocked), in order. */
  applied: SignedEvent[]
  /** Buffered events refused once their parents arrived. */
  rejected: Array<{ event: EventHead; error: Error }>
  /** True when the event waits for parents. */
  pending: boolean
  /** Whether the set of resolved members changed (who is in, not what they are called). */
  membersChanged: boolean
  /** Members whose resolved display name changed (members before and after). */
  renamed: Rename[]
  /** Buffered envelopes whose epoch is now known; pass each to `Group.open` again. */
  released: Uint8Array[]
}

/** A message this member decrypted. */
export interface DecryptedMessage {
  kind: 'message'
  id: string
  sender: string
  seq: number
  epoch: string
  text: string
  ts: number
}

/** An authentic message under an epoch whose key this identity was not given: shown as ciphertext. */
export interface EncryptedMessage {
  kind: 'encrypted'
  id: string
  sender: string
  seq: number
  epoch: string
  /** Size of the ciphertext in bytes. */
  bytes: number
  /** Hex of the first ciphertext bytes. */
  preview: string
}

/** Result of `Group.open`. */
export type OpenedMessage = DecryptedMessage | EncryptedMessage

/** A message this member sealed. */
export interface SealedMessage {
  bytes: Uint8Array
  id: string
  seq: number
  ts: number
  epoch: string
}
