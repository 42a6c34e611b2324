import * as dagCbor from '@ipld/dag-cbor'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Group } from '../membership/index.js'
import { MalformedFrameError, SyncStalledError } from './errors.js'
import type { SeqRanges } from './store.js'
import { getsLog, hintsToDial, isTrusted, type SyncAccess, servedEpochs } from './sync-access.js'
import { DEFAULT_SYNC_LIMITS, SyncAdmission, type SyncLimits } from './sync-limits.js'
import { createFrameStream, type FrameStream, SYNC_PROTOCOL } from './sync-protocol.js'
import type { TransportNode } from './transport.js'

export type { SyncAccess } from './sync-access.js'
export type { SyncLimits } from './sync-limits.js'
export { SYNC_PROTOCOL }

const log = logger('p2pchat:sync')

/** Items per frame; frames stay well below the transport's frame size limit. */
const ITEMS_PER_FRAME = 64
/** Messages sent in one sync; a peer that gets this many asks again. */
export const MAX_SYNC_MESSAGES = 5000
/**
 * Envelope bytes sent in one sync. A response cut short by this (or by {@link MAX_SYNC_MESSAGES}) ends
 * with `more`, and the asker asks again.
 */
export const MAX_SYNC_BYTES = 16 * 1024 * 1024
/** Syncs in a row with one peer while each brings {@link MAX_SYNC_MESSAGES} (a long catch-up). */
export const MAX_SYNC_ROUNDS = 20
/** Senders a 'want' may name. */
const MAX_WANT_SENDERS = 10_000
/** Seq ranges per sender in a 'want'. */
const MAX_WANT_RANGES_PER_SENDER = 256
/** Seq ranges in a 'want' over all senders: keeps the frame well under the frame size limit. */
const MAX_WANT_RANGES = 16_384
/** Events sent in one sync. */
const MAX_SYNC_EVENTS = 20_000
const MAX_HEADS = 256
/** Payload bytes per frame: under the 1 MiB frame limit with room for encoding overhead. */
const FRAME_BUDGET = 768 * 1024

/** A bidirectional channel of whole frames (one sync message each). */
export interface FrameChannel {
  write(frame: Uint8Array): Promise<void>
  /** The next frame, or `undefined` when the remote closed its side. */
  read(): Promise<Uint8Array | undefined>
}

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

/** A peer of a group and where to dial it: peer exchange, so peers that met only a relay meet each other. */
export interface PeerHint {
  id: string
  addrs: string[]
}

const MAX_PEER_HINTS = 32
const MAX_HINT_ADDRS = 8

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
  /** Other peers of the group that `remote` may dial (answering a sync). */
  peersOf?(group: Group, remote: string): Promise<PeerHint[]>
  /**
   * Peers of the group a sync partner named, already limited to members named by a member or configured
   * relay `remote`; a chat node dials those it is not connected to.
   */
  acceptPeers?(group: Group, peers: PeerHint[], remote: string): void
}

type SyncMessage =
  | { t: 'hello'; g: string; h: string[] }
  | { t: 'heads'; h: string[]; p?: PeerHint[] }
  | { t: 'unknown' }
  | { t: 'events'; e: Uint8Array[] }
  | { t: 'msgs'; m: Uint8Array[] }
  /** Ends a batch; `more` when the sender stopped at its budget with more to send. */
  | { t: 'end'; more?: true }
  /**
   * What the asker has: `m` per sender, the seq up to which it has every message; `r` (optional) per
   * sender, the ranges of seqs it has, which also covers a member added late: it never has the messages
   * of the epochs before it, so its watermarks stay at -1.
   */
  | { t: 'want'; ep: string[] | null; m: Record<string, number>; r?: Record<string, SeqRanges> }

function isStringArray(value: unknown, max: number): value is string[] {
  return (
    Array.isArray(value) && value.length <= max && value.every((v) => typeof v === 'string' && v.length < 200)
  )
}

function isBytesArray(value: unknown): value is Uint8Array[] {
  return (
    Array.isArray(value) && value.length <= ITEMS_PER_FRAME && value.every((v) => v instanceof Uint8Array)
  )
}

function decode(bytes: Uint8Array): SyncMessage {
  let v: Record<string, unknown>
  try {
    v = dagCbor.decode(bytes) as Record<string, unknown>
  } catch {
    throw new MalformedFrameError('sync frame is not DAG-CBOR')
  }
  if (typeof v !== 'object' || v === null) throw new MalformedFrameError('sync frame is not a map')
  switch (v.t) {
    case 'hello':
      if (typeof v.g === 'string' && isStringArray(v.h, MAX_HEADS)) return { t: 'hello', g: v.g, h: v.h }
      break
    case 'heads': {
      if (!isStringArray(v.h, MAX_HEADS)) break
      if (v.p === undefined) return { t: 'heads', h: v.h }
      const hints = v.p as Array<Record<string, unknown>>
      const hintsOk =
        Array.isArray(hints) &&
        hints.length <= MAX_PEER_HINTS &&
        hints.every(
          (hint) =>
            typeof hint === 'object' &&
            hint !== null &&
            typeof hint.id === 'string' &&
            hint.id.length < 200 &&
            isStringArray(hint.addrs, MAX_HINT_ADDRS),
        )
      if (hintsOk) return { t: 'heads', h: v.h, p: hints as unknown as PeerHint[] }
      break
    }
    case 'unknown':
      return { t: 'unknown' }
    case 'end':
      return v.more === true ? { t: 'end', more: true } : { t: 'end' }
    case 'events':
      if (isBytesArray(v.e)) return { t: 'events', e: v.e }
      break
    case 'msgs':
      if (isBytesArray(v.m)) return { t: 'msgs', m: v.m }
      break
    case 'want': {
      const marks = v.m as Record<string, unknown>
      const epochsOk = v.ep === null || isStringArray(v.ep, 100_000)
      const marksOk =
        typeof marks === 'object' &&
        marks !== null &&
        Object.keys(marks).length <= MAX_WANT_SENDERS &&
        Object.values(marks).every((n) => Number.isSafeInteger(n))
      if (!epochsOk || !marksOk) break
      const want = { t: 'want' as const, ep: v.ep as string[] | null, m: marks as Record<string, number> }
      if (v.r === undefined) return want
      const ranges = decodeRanges(v.r)
      if (ranges !== undefined) return { ...want, r: ranges }
      break
    }
  }
  throw new MalformedFrameError(`bad sync frame ${String(v.t).slice(0, 20)}`)
}

function isRange(value: unknown): value is [number, number] {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    Number.isSafeInteger(value[0]) &&
    Number.isSafeInteger(value[1]) &&
    0 <= value[0] &&
    value[0] <= value[1]
  )
}

/** The `r` of a 'want', sorted and merged per sender; undefined if malformed or over the limits. */
function decodeRanges(value: unknown): Record<string, SeqRanges> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const entries = Object.entries(value)
  if (entries.length > MAX_WANT_SENDERS) return undefined
  const out: Record<string, SeqRanges> = Object.create(null)
  let total = 0
  for (const [sender, ranges] of entries) {
    if (sender.length >= 200 || !Array.isArray(ranges) || ranges.length > MAX_WANT_RANGES_PER_SENDER)
      return undefined
    total += ranges.length
    if (total > MAX_WANT_RANGES || !ranges.every(isRange)) return undefined
    out[sender] = mergeRanges(ranges)
  }
  return out
}

/** Sorted, disjoint ranges covering the same seqs, so lookups can bisect. */
function mergeRanges(ranges: ReadonlyArray<[number, number]>): SeqRanges {
  const sorted = ranges.map(([lo, hi]): [number, number] => [lo, hi]).sort((a, b) => a[0] - b[0])
  const out: SeqRanges = []
  for (const range of sorted) {
    const last = out.at(-1)
    if (last !== undefined && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1])
    else out.push(range)
  }
  return out
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
    const first = have[0]
    const mark = first !== undefined && first[0] === 0 ? first[1] : -1
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

class SyncSession {
  readonly #channel: FrameChannel
  constructor(channel: FrameChannel) {
    this.#channel = channel
  }

  send(message: SyncMessage): Promise<void> {
    return this.#channel.write(dagCbor.encode(message))
  }

  async receive(): Promise<SyncMessage | undefined> {
    const frame = await this.#channel.read()
    return frame === undefined ? undefined : decode(frame)
  }

  async expect<T extends SyncMessage['t']>(...types: T[]): Promise<Extract<SyncMessage, { t: T }>> {
    const message = await this.receive()
    if (message === undefined)
      throw new MalformedFrameError(`stream ended while waiting for ${types.join('/')}`)
    if (!types.includes(message.t as T))
      throw new MalformedFrameError(`expected ${types.join('/')}, got ${message.t}`)
    return message as Extract<SyncMessage, { t: T }>
  }

  /**
   * Sends `items` in frames, then `end`. Stops before `budget.count` items or `budget.bytes` bytes
   * (always sending at least one), and then says `more`. Each frame waits until the stream takes it, so
   * what is held is one frame, however many items `items` would yield.
   */
  async sendBatches(
    kind: 'events' | 'msgs',
    items: Iterable<Uint8Array>,
    budget: { count: number; bytes: number } = {
      count: Number.POSITIVE_INFINITY,
      bytes: Number.POSITIVE_INFINITY,
    },
  ): Promise<void> {
    let batch: Uint8Array[] = []
    let bytes = 0
    let count = 0
    let total = 0
    let more = false
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      const frame = batch
      batch = []
      bytes = 0
      await this.send(kind === 'events' ? { t: 'events', e: frame } : { t: 'msgs', m: frame })
    }
    for (const item of items) {
      if (count >= budget.count || (count > 0 && total + item.length > budget.bytes)) {
        more = true
        break
      }
      if (batch.length >= ITEMS_PER_FRAME || bytes + item.length > FRAME_BUDGET) await flush()
      batch.push(item)
      bytes += item.length
      count++
      total += item.length
    }
    await flush()
    await this.send(more ? { t: 'end', more: true } : { t: 'end' })
  }

  /**
   * Reads batches until `end`, handing each item to `accept`; stops counting at `max`. Returns how many
   * came and whether the sender said it has more.
   */
  async receiveBatches(
    kind: 'events' | 'msgs',
    max: number,
    accept: (item: Uint8Array) => Promise<void> | void,
  ): Promise<{ count: number; more: boolean }> {
    let count = 0
    for (;;) {
      const message = await this.expect(kind, 'end')
      if (message.t === 'end') return { count, more: message.more === true }
      const items = message.t === 'events' ? message.e : (message as { m: Uint8Array[] }).m
      count += items.length
      if (count > max) throw new MalformedFrameError(`peer sent more than ${max} ${kind}`)
      for (const item of items) await accept(item)
    }
  }
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
    await session.send(
      isTrusted(access)
        ? { t: 'want', ep: replica.wantedEpochs(group), ...haveOf(replica.messageSource, group.id) }
        : { t: 'want', ep: [], m: {} },
    )
    result = await session.receiveBatches('msgs', MAX_SYNC_MESSAGES, (bytes) =>
      replica.acceptMessage(group, bytes, remote),
    )
  }
  if (first === 'receive') {
    await ask()
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
  const session = new SyncSession(channel)
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
  const { received, more } = await exchangeMessages(session, replica, group, remote, 'receive', access)
  return { known: true, messagesReceived: received, more }
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

/**
 * A frame channel over `frames`: each read or write may wait at most `stallMs` (then the stream fails
 * with {@link SyncStalledError}), and all of them together until `signal` aborts.
 */
function channelOf(frames: FrameStream, signal: AbortSignal, stallMs: number, remote: string): FrameChannel {
  const step = async <T>(waitsFor: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const stall = AbortSignal.timeout(stallMs)
    try {
      return await run(AbortSignal.any([signal, stall]))
    } catch (err) {
      if (stall.aborted && !signal.aborted)
        throw new SyncStalledError(`${remote} ${waitsFor} for ${stallMs} ms`)
      throw err
    }
  }
  return {
    write: (frame) => step('read nothing', (s) => frames.writeFrame(frame, { signal: s })),
    read: async () => (await step('sent nothing', (s) => frames.readFrame({ signal: s }))) ?? undefined,
  }
}

/**
 * Serves sync on `libp2p` for `replica` (relayed connections included) until `shutdown` aborts, within
 * `limits`: a stream over a limit is refused with a log line saying which. Each stream is bounded in
 * time, frame size and frame count; a failing peer only loses its own stream.
 */
export async function handleSync(
  libp2p: Pick<Libp2p, 'handle'>,
  replica: SyncReplica,
  shutdown: AbortSignal,
  limits: SyncLimits = {},
): Promise<void> {
  const admission = new SyncAdmission(limits)
  const { syncTimeoutMs, stallTimeoutMs } = admission.limits
  await libp2p.handle(
    SYNC_PROTOCOL,
    (stream: Stream, connection) => {
      const remote = connection.remotePeer.toString()
      let release: () => void
      try {
        release = admission.admit(remote, replica.isKnownPeer?.(remote) ?? false)
      } catch (err) {
        const error = err as Error
        log('refused a sync stream from %s: %s: %s', remote, error.name, error.message)
        stream.abort(error)
        return
      }
      const signal = AbortSignal.any([shutdown, AbortSignal.timeout(syncTimeoutMs)])
      let frames: FrameStream
      try {
        frames = createFrameStream(stream)
      } catch (err) {
        log.error('could not serve sync to %s: %s', remote, (err as Error).message)
        stream.abort(err as Error)
        release()
        return
      }
      syncAsResponder(channelOf(frames, signal, stallTimeoutMs, remote), replica, remote)
        // a peer that never reads what is left must not hold the stream open either
        .then(() => frames.close({ signal: AbortSignal.any([signal, AbortSignal.timeout(stallTimeoutMs)]) }))
        .catch((err: unknown) => {
          const error = err as Error
          log('sync served to %s failed: %s: %s', remote, error.name, error.message)
          try {
            frames.abort(error)
          } catch (abortErr) {
            log('aborting the sync stream failed: %s', (abortErr as Error).message)
          }
        })
        .finally(release)
    },
    { runOnLimitedConnection: true },
  )
}

/**
 * Opens a sync stream to `peer` and syncs `group` over it as initiator, within the time limits of
 * `limits` (defaults as {@link handleSync}'s).
 */
export async function syncWithPeer(
  libp2p: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId,
  replica: SyncReplica,
  group: Group,
  shutdown: AbortSignal,
  limits: Pick<SyncLimits, 'stallTimeoutMs' | 'syncTimeoutMs'> = {},
): Promise<SyncResult> {
  const { syncTimeoutMs, stallTimeoutMs } = { ...DEFAULT_SYNC_LIMITS, ...limits }
  const signal = AbortSignal.any([shutdown, AbortSignal.timeout(syncTimeoutMs)])
  const stream = await libp2p.dialProtocol(peer, SYNC_PROTOCOL, { signal, runOnLimitedConnection: true })
  const frames = createFrameStream(stream)
  try {
    const result = await syncAsInitiator(
      channelOf(frames, signal, stallTimeoutMs, peer.toString()),
      replica,
      group,
      peer.toString(),
    )
    await frames.close({ signal })
    return result
  } catch (err) {
    frames.abort(err as Error)
    throw err
  }
}

/**
 * Peers subscribed to `topic` for which `include` holds (the group's members), except `exclude`, with the
 * addresses this node knows for them and, when `relayAddrs` are given (on a relay), a circuit address
 * through each, for peers behind NAT.
 */
export async function subscriberHints(
  libp2p: TransportNode,
  topic: string,
  exclude: string,
  include: (peerId: string) => boolean,
  relayAddrs: readonly string[] = [],
): Promise<PeerHint[]> {
  const hints: PeerHint[] = []
  for (const peer of libp2p.services.pubsub.getSubscribers(topic)) {
    const id = peer.toString()
    if (id === exclude || !include(id)) continue
    const addrs = relayAddrs.map((relay) => `${relay}/p2p-circuit/p2p/${id}`)
    try {
      const record = await libp2p.peerStore.get(peer)
      for (const { multiaddr } of record.addresses) addrs.push(`${multiaddr.toString()}/p2p/${id}`)
    } catch {
      // not in the peer store: the circuit addresses are all we have
    }
    if (addrs.length > 0) hints.push({ id, addrs: addrs.slice(0, MAX_HINT_ADDRS) })
    if (hints.length >= MAX_PEER_HINTS) break
  }
  return hints
}

/** Dials the hinted peers this node is not connected to; failures are only logged. */
export function dialHints(libp2p: TransportNode, hints: readonly PeerHint[], signal: AbortSignal): void {
  const self = libp2p.peerId.toString()
  for (const hint of hints) {
    if (hint.id === self) continue
    let addrs: Multiaddr[]
    try {
      if (libp2p.getConnections(peerIdFromString(hint.id)).length > 0) continue
      addrs = hint.addrs.filter((a) => a.endsWith(`/p2p/${hint.id}`)).map((a) => multiaddr(a))
    } catch {
      // a hint that is not a peer id or multiaddr: skip it, keep the others
      log('ignoring a bad peer hint %s', hint.id.slice(0, 80))
      continue
    }
    if (addrs.length === 0) continue
    libp2p.dial(addrs, { signal }).catch((err: unknown) => {
      log('could not dial hinted peer %s: %s', hint.id, (err as Error).message)
    })
  }
}
