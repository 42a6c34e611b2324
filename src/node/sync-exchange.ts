/**
 * The sync protocol itself, whatever carries its frames: the initiator's and the responder's side of one
 * sync of one group, what each may send the other (sync-access.ts), and the budgets of one sync.
 *
 * @packageDocumentation
 */

import { logger } from '@libp2p/logger'
import type { Group } from '../membership/index.js'
import { type SeqRanges, watermarkOf } from './seq-ranges.js'
import { getsLog, hintsToDial, isTrusted, type SyncAccess, servedEpochs } from './sync-access.js'
import {
  type FrameChannel,
  MAX_HINT_ADDRS,
  MAX_PEER_HINTS,
  MAX_WANT_RANGES,
  MAX_WANT_RANGES_PER_SENDER,
  MAX_WANT_SENDERS,
  type PeerHint,
  SyncSession,
} from './sync-messages.js'

const log = logger('p2pchat:sync')

/** Messages sent in one sync; a peer that gets this many asks again. */
export const MAX_SYNC_MESSAGES = 5000
/**
 * Envelope bytes sent in one sync. A response cut short by this (or by {@link MAX_SYNC_MESSAGES}) ends
 * with `more`, and the asker asks again.
 */
export const MAX_SYNC_BYTES = 16 * 1024 * 1024
/** Syncs in a row with one peer while each brings {@link MAX_SYNC_MESSAGES} (a long catch-up). */
export const MAX_SYNC_ROUNDS = 20
/** Events sent in one sync. */
const MAX_SYNC_EVENTS = 20_000
/** Where sync reads stored envelopes from; `ChatStore` is one. */
export interface MessageSource {
  /** Per sender, the sequence number up to which this replica has every message. */
  watermarks(groupId: string): Record<string, number>
  /**
   * Per sender, the ranges of sequence numbers this replica has (at most 256 per sender). Without it a
   * replica asks by watermarks only.
   */
  seqRanges?(groupId: string): Record<string, SeqRanges>
  /**
   * Stored envelopes a peer with these watermarks lacks, limited to `epochs` when given, skipping those
   * inside the ranges `have` it reported. Read lazily: sync takes them one at a time, waiting for the
   * peer to read each frame, and stops at its budget.
   */
  envelopesAfter(
    groupId: string,
    marks: Readonly<Record<string, number>>,
    epochs: ReadonlySet<string> | null,
    have?: Readonly<Record<string, SeqRanges>>,
  ): Iterable<{ bytes: Uint8Array }>
}

/** What the sync protocol needs from the local replica (a chat node or a relay). */
export interface SyncReplica {
  /**
   * The local view of a group. As server, a relay creates one for any group `remote` asks about (within
   * its limits).
   */
  group(groupId: string, asServer: boolean, remote?: string): Group | undefined
  /**
   * What `remote` may be sent of `group`, as this replica's log has it (see `sync-access.ts`). Asked
   * again after each exchange of events, since what the peer sent may have made it a member.
   */
  access(group: Group, remote: string): SyncAccess | Promise<SyncAccess>
  /**
   * Whether `remote` is a member of one of this replica's groups or a relay it was configured with: the
   * sync streams of other peers share a smaller pool. Without it every peer counts as a stranger.
   */
  isKnownPeer?(remote: string): boolean
  /** Epochs whose messages this replica wants; `null` for all of them (a relay). */
  wantedEpochs(group: Group): string[] | null
  /** The replica's stored envelopes. */
  readonly messageSource: MessageSource
  /** Applies an event received by sync (verifies, stores, notifies). Never throws. */
  acceptEvent(group: Group, bytes: Uint8Array, remote: string): void
  /** Applies an envelope received by sync. Never throws. */
  acceptMessage(group: Group, bytes: Uint8Array, remote: string): Promise<void>
  /**
   * Applies the envelopes of one frame together (a chat node stores them with one commit, then shows
   * them). Never throws. Without it each goes to {@link SyncReplica.acceptMessage}.
   */
  acceptMessages?(group: Group, items: Uint8Array[], remote: string): Promise<void>
  /** The syncs this replica started that have yet to ask for messages (see {@link PendingAsks}). */
  readonly pendingAsks?: PendingAsks
  /** Other peers of the group that `remote` may dial (answering a sync). */
  peersOf?(group: Group, remote: string): Promise<PeerHint[]>
  /**
   * Peers of the group a sync partner named, already limited to members named by a member or configured
   * relay `remote`; a chat node dials those it is not connected to.
   */
  acceptPeers?(group: Group, peers: PeerHint[], remote: string): void
}

/**
 * The (group, peer) pairs this replica is syncing with as initiator whose ask for messages is still to
 * come or under way. When the peer opens a sync of its own meanwhile (both sides sync on connect), the
 * session it opened does not ask too: it would be served the same envelopes a second time, each read,
 * sent, verified and refused as a replay (a third of the work of a long catch-up).
 */
export class PendingAsks {
  readonly #count = new Map<string, number>()

  /** Marks the pair; the returned function (idempotent) unmarks it once the ask is done or failed. */
  begin(groupId: string, remote: string): () => void {
    const key = `${remote}|${groupId}`
    this.#count.set(key, (this.#count.get(key) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      const left = (this.#count.get(key) ?? 1) - 1
      if (left > 0) this.#count.set(key, left)
      else this.#count.delete(key)
    }
  }

  /** Whether a sync this replica started with `remote` will still ask for the messages of `groupId`. */
  has(groupId: string, remote: string): boolean {
    return this.#count.has(`${remote}|${groupId}`)
  }
}

/** Encoded bytes a 'want' may spend on watermarks and ranges, well under the frame size limit. */
const WANT_BUDGET = 512 * 1024
/** Upper bound of the encoded size of one range (array head and two integers). */
const RANGE_BYTES = 19

/**
 * What a replica tells a peer it has: watermarks and, when its source reports them, seq ranges, cut to
 * what a 'want' may carry. What is left out is only sent again, which is harmless.
 */
function haveOf(
  source: MessageSource,
  groupId: string,
): { m: Record<string, number>; r?: Record<string, SeqRanges> } {
  const all = source.seqRanges?.(groupId)
  if (all === undefined) return { m: source.watermarks(groupId) }
  const m: Record<string, number> = {}
  const r: Record<string, SeqRanges> = {}
  let senders = 0
  let ranges = 0
  let bytes = 0
  for (const [sender, have] of Object.entries(all)) {
    const mark = watermarkOf(have)
    const kept = have.slice(0, Math.min(MAX_WANT_RANGES_PER_SENDER, MAX_WANT_RANGES - ranges))
    const cost = 2 * (sender.length + 3) + 9 + 3 + kept.length * RANGE_BYTES
    if (senders >= MAX_WANT_SENDERS || bytes + cost > WANT_BUDGET) break
    senders++
    bytes += cost
    // -1 is what a peer assumes for a sender left out
    if (mark >= 0) m[sender] = mark
    if (kept.length === 0) continue
    r[sender] = kept
    ranges += kept.length
  }
  return { m, r }
}

/** Events of `group` outside the causal closure of `heads` (the peer's heads), parents first. */
function eventsMissingFrom(group: Group, heads: readonly string[]): Uint8Array[] {
  const known = new Set<string>()
  const stack = heads.filter((h) => group.hasEvent(h))
  while (stack.length > 0) {
    const id = stack.pop() as string
    if (known.has(id)) continue
    known.add(id)
    for (const parent of group.getEvent(id)?.payload.parents ?? []) stack.push(parent.toString())
  }
  const out: Uint8Array[] = []
  for (const event of group.events()) {
    if (!known.has(event.id)) out.push(event.bytes)
    if (out.length >= MAX_SYNC_EVENTS) break
  }
  return out
}

/** The bytes of `envelopes`, as they are read. */
function* bytesOf(envelopes: Iterable<{ bytes: Uint8Array }>): Generator<Uint8Array, void, undefined> {
  for (const envelope of envelopes) yield envelope.bytes
}

/**
 * Each side asks for the envelopes it lacks and serves what the other asks for, within what the other's
 * `access` allows: envelopes of the epochs sealed to a member, all to a configured relay, none to others,
 * who are not asked either (a want names senders and counts).
 */
async function exchangeMessages(
  session: SyncSession,
  replica: SyncReplica,
  group: Group,
  remote: string,
  first: 'send' | 'receive',
  access: SyncAccess,
  asked?: () => void,
): Promise<{ received: number; more: boolean }> {
  let result = { count: 0, more: false }
  const serve = async (): Promise<void> => {
    const want = await session.expect('want')
    const epochs = servedEpochs(group, remote, access, want.ep)
    const envelopes =
      epochs !== null && epochs.size === 0
        ? []
        : bytesOf(replica.messageSource.envelopesAfter(group.id, want.m, epochs, want.r))
    await session.sendBatches('msgs', envelopes, { count: MAX_SYNC_MESSAGES, bytes: MAX_SYNC_BYTES })
  }
  const ask = async (): Promise<void> => {
    // as responder, not when this replica's own sync with the peer asks (or will) for the same
    const asks = isTrusted(access) && !(first === 'send' && replica.pendingAsks?.has(group.id, remote))
    await session.send(
      asks
        ? { t: 'want', ep: replica.wantedEpochs(group), ...haveOf(replica.messageSource, group.id) }
        : { t: 'want', ep: [], m: {} },
    )
    const { acceptMessages } = replica
    result =
      acceptMessages === undefined
        ? await session.receiveBatches('msgs', MAX_SYNC_MESSAGES, (bytes) =>
            replica.acceptMessage(group, bytes, remote),
          )
        : await session.receiveFrames('msgs', MAX_SYNC_MESSAGES, (items) =>
            acceptMessages.call(replica, group, items, remote),
          )
  }
  if (first === 'receive') {
    await ask()
    asked?.()
    await serve()
  } else {
    await serve()
    await ask()
  }
  return { received: result.count, more: result.more }
}

/** Result of one sync as initiator. */
export interface SyncResult {
  /** False when the peer does not hold the group. */
  known: boolean
  /** Messages the peer sent. */
  messagesReceived: number
  /** The peer stopped at its budget ({@link MAX_SYNC_MESSAGES} or {@link MAX_SYNC_BYTES}): ask again. */
  more: boolean
}

/**
 * Runs the initiator side of a sync for one group over `channel`:
 * hello(heads) → peer's heads and the events we lack → the events the peer lacks → each side asks for
 * the messages it lacks (per-sender watermarks and seq ranges, limited to the epochs it can use). What
 * is sent to the peer is limited by its access (see {@link SyncReplica.access}); its peer hints are
 * taken only from a member or configured relay, and only those naming members.
 */
export async function syncAsInitiator(
  channel: FrameChannel,
  replica: SyncReplica,
  group: Group,
  remote: string,
): Promise<SyncResult> {
  const asked = replica.pendingAsks?.begin(group.id, remote)
  try {
    return await initiate(new SyncSession(channel), replica, group, remote, asked)
  } finally {
    asked?.()
  }
}

async function initiate(
  session: SyncSession,
  replica: SyncReplica,
  group: Group,
  remote: string,
  asked: (() => void) | undefined,
): Promise<SyncResult> {
  let access = await replica.access(group, remote)
  await session.send({ t: 'hello', g: group.id, h: getsLog(access) ? group.heads() : [] })
  const reply = await session.expect('heads', 'unknown')
  if (reply.t === 'unknown') return { known: false, messagesReceived: 0, more: false }
  await session.receiveBatches('events', MAX_SYNC_EVENTS, (bytes) =>
    replica.acceptEvent(group, bytes, remote),
  )
  // the events it sent may show it is a member after all (an add this replica had not seen)
  access = await replica.access(group, remote)
  if (reply.p !== undefined && reply.p.length > 0) {
    const hints = hintsToDial(group, reply.p, access, remote)
    if (hints.length > 0) replica.acceptPeers?.(group, hints, remote)
  }
  await session.sendBatches('events', getsLog(access) ? eventsMissingFrom(group, reply.h) : [])
  const exchanged = await exchangeMessages(session, replica, group, remote, 'receive', access, asked)
  return { known: true, messagesReceived: exchanged.received, more: exchanged.more }
}

/**
 * Serves one sync stream opened by a peer, sending only what its access allows (a stranger is told
 * nothing: empty heads, no events, no envelopes, no hints). Throws (to abort the stream) on protocol
 * violations.
 */
export async function syncAsResponder(
  channel: FrameChannel,
  replica: SyncReplica,
  remote: string,
): Promise<void> {
  const session = new SyncSession(channel)
  const hello = await session.expect('hello')
  const group = replica.group(hello.g, true, remote)
  if (group === undefined) {
    await session.send({ t: 'unknown' })
    return
  }
  let access = await replica.access(group, remote)
  const peers =
    access === 'member'
      ? ((await replica.peersOf?.(group, remote)) ?? [])
          .filter((hint) => hint.id !== remote && group.isMember(hint.id))
          .slice(0, MAX_PEER_HINTS)
          .map((hint) => ({ id: hint.id, addrs: hint.addrs.slice(0, MAX_HINT_ADDRS) }))
      : []
  const heads = getsLog(access) ? group.heads() : []
  await session.send(peers.length > 0 ? { t: 'heads', h: heads, p: peers } : { t: 'heads', h: heads })
  await session.sendBatches('events', getsLog(access) ? eventsMissingFrom(group, hello.h) : [])
  await session.receiveBatches('events', MAX_SYNC_EVENTS, (bytes) =>
    replica.acceptEvent(group, bytes, remote),
  )
  // the events it sent may have made it a member here: the add naming it had not reached this replica
  access = await replica.access(group, remote)
  await exchangeMessages(session, replica, group, remote, 'send', access)
  log('served sync of %s to %s (%s)', group.id, remote, access)
}
