/**
 * The messages of the sync protocol, as they travel in frames: their DAG-CBOR shapes, the strict
 * decoding of what a peer sends (every count and size bounded), and a {@link SyncSession} that sends and
 * receives them over a {@link FrameChannel}, batching items into frames.
 *
 * @packageDocumentation
 */

import { setImmediate as nextTurn } from 'node:timers/promises'
import * as dagCbor from '@ipld/dag-cbor'
import { MalformedFrameError } from './errors.js'
import { mergeRanges, type SeqRanges } from './seq-ranges.js'

/** Items per frame; frames stay well below the transport's frame size limit. */
const ITEMS_PER_FRAME = 64
/** Senders a 'want' may name. */
export const MAX_WANT_SENDERS = 10_000
/** Seq ranges per sender in a 'want'. */
export const MAX_WANT_RANGES_PER_SENDER = 256
/** Seq ranges in a 'want' over all senders: keeps the frame well under the frame size limit. */
export const MAX_WANT_RANGES = 16_384
/** Heads in a 'hello' or 'heads'. */
const MAX_HEADS = 256
/** Payload bytes per frame: under the 1 MiB frame limit with room for encoding overhead. */
const FRAME_BUDGET = 768 * 1024
/**
 * Longest run of items received, or read and framed to send, back to back before sync lets the event
 * loop turn: a batch of large epochs, or of messages arriving (or taken) faster than they are handled,
 * must not block gossip, timers and the user for seconds.
 */
export const MAX_ACCEPT_RUN_MS = 20

/** A bidirectional channel of whole frames (one sync message each). */
export interface FrameChannel {
  write(frame: Uint8Array): Promise<void>
  /** The next frame, or `undefined` when the remote closed its side. */
  read(): Promise<Uint8Array | undefined>
}

/** A peer of a group and where to dial it: peer exchange, so peers that met only a relay meet each other. */
export interface PeerHint {
  id: string
  addrs: string[]
}

/** Peers named in one 'heads'. */
export const MAX_PEER_HINTS = 32
/** Addresses per peer named. */
export const MAX_HINT_ADDRS = 8

/** A sync message: one frame. */
export type SyncMessage =
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

/**
 * The sync message in `bytes`.
 *
 * @throws {MalformedFrameError} if it is not one, or is over a limit
 */
function decodeSyncMessage(bytes: Uint8Array): SyncMessage {
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

/** Sync messages over a frame channel: one message a frame, items batched. */
export class SyncSession {
  readonly #channel: FrameChannel
  constructor(channel: FrameChannel) {
    this.#channel = channel
  }

  send(message: SyncMessage): Promise<void> {
    return this.#channel.write(dagCbor.encode(message))
  }

  async receive(): Promise<SyncMessage | undefined> {
    const frame = await this.#channel.read()
    return frame === undefined ? undefined : decodeSyncMessage(frame)
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
   * what is held is one frame, however many items `items` would yield. Reading the items and framing them
   * lets the event loop turn every {@link MAX_ACCEPT_RUN_MS}: a stream that takes frames as fast as they
   * come (a local peer) would otherwise hold it for a whole batch.
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
      await pace()
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
  receiveBatches(
    kind: 'events' | 'msgs',
    max: number,
    accept: (item: Uint8Array) => Promise<void> | void,
  ): Promise<{ count: number; more: boolean }> {
    return this.receiveFrames(kind, max, async (items) => {
      for (const item of items) {
        await accept(item)
        await pace()
      }
    })
  }

  /**
   * {@link SyncSession.receiveBatches}, a frame's items at a time: `accept` takes them together (the
   * store commits them at once). The event loop may turn between frames.
   */
  async receiveFrames(
    kind: 'events' | 'msgs',
    max: number,
    accept: (items: Uint8Array[]) => Promise<void> | void,
  ): Promise<{ count: number; more: boolean }> {
    let count = 0
    for (;;) {
      const message = await this.expect(kind, 'end')
      if (message.t === 'end') return { count, more: message.more === true }
      const items = message.t === 'events' ? message.e : (message as { m: Uint8Array[] }).m
      count += items.length
      if (count > max) throw new MalformedFrameError(`peer sent more than ${max} ${kind}`)
      await accept(items)
      await pace()
    }
  }
}

/** When the current run of sync work began, and whether timers have run since. */
let runStart = 0
let turned = true

/**
 * A pause to call between steps of sync work: once work has run {@link MAX_ACCEPT_RUN_MS} without the
 * event loop's timers running, it lets timers and I/O in. The run is counted over every sync session of
 * the process, since awaiting a step that needs no I/O, or a frame already buffered, only runs
 * microtasks: sessions served and received at once take turns without the loop turning. A run ends
 * when a timer set at its start has fired: a pause taken from an I/O callback reaches the same turn's
 * immediates before any timer, so until then each step pauses again.
 */
export async function pace(): Promise<void> {
  const now = performance.now()
  if (turned) {
    turned = false
    runStart = now
    setTimeout(() => {
      turned = true
    }, 0)
    return
  }
  if (now - runStart >= MAX_ACCEPT_RUN_MS) await nextTurn()
}
