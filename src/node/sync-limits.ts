/**
 * What one peer, and all peers together, may cost a replica in sync streams: concurrent streams per
 * peer, a smaller pool for peers that are in none of its groups (so strangers with throwaway identities
 * never take the slots members need), a total, a rate of new streams per peer, and time limits.
 *
 * @packageDocumentation
 */

import { RateLimiter } from '@libp2p/utils'
import { SyncRateLimitError, SyncStreamLimitError } from './errors.js'

/** Limits on the sync streams a replica serves; every field has a default. */
export interface SyncLimits {
  /** Sync streams served to one peer at once. Default 4. */
  maxStreamsPerPeer?: number
  /** Sync streams served at once, to all peers. Default 32. */
  maxStreams?: number
  /**
   * Of those, streams served at once to peers that are members of none of this replica's groups and are
   * no configured relay: joiners, and strangers. Default 8.
   */
  maxStrangerStreams?: number
  /** New sync streams one peer may open per minute. Default 120. */
  streamsPerMinute?: number
  /**
   * A read or a write on a sync stream that waits longer than this (the peer sends nothing, or reads
   * nothing so the write waits on backpressure) aborts the stream, in ms. Default 20000.
   */
  stallTimeoutMs?: number
  /** Longest a whole sync may take, each side, in ms. Default 60000. */
  syncTimeoutMs?: number
}

/** The defaults of {@link SyncLimits}. */
export const DEFAULT_SYNC_LIMITS: Readonly<Required<SyncLimits>> = {
  maxStreamsPerPeer: 4,
  maxStreams: 32,
  maxStrangerStreams: 8,
  streamsPerMinute: 120,
  stallTimeoutMs: 20_000,
  syncTimeoutMs: 60_000,
}

/**
 * Counts the sync streams being served and refuses those over a limit.
 *
 * @example
 * ```ts
 * const admission = new SyncAdmission({ maxStreamsPerPeer: 2 })
 * const release = admission.admit(peerId, true) // throws SyncStreamLimitError or SyncRateLimitError
 * try { await serve() } finally { release() }
 * ```
 */
export class SyncAdmission {
  readonly limits: Readonly<Required<SyncLimits>>
  readonly #perPeer = new Map<string, number>()
  readonly #rate: RateLimiter
  #total = 0
  #strangers = 0

  constructor(limits: SyncLimits = {}) {
    this.limits = { ...DEFAULT_SYNC_LIMITS, ...limits }
    this.#rate = new RateLimiter({ points: this.limits.streamsPerMinute, duration: 60 })
  }

  /** Streams being served now. */
  get open(): number {
    return this.#total
  }

  /**
   * Admits one more stream from `peer`, a member of one of the replica's groups or a configured relay
   * when `known`. Returns the function that ends it (calling it again does nothing).
   *
   * @throws {SyncStreamLimitError} a concurrency limit is reached
   * @throws {SyncRateLimitError} `peer` opened too many streams in the last minute
   */
  admit(peer: string, known: boolean): () => void {
    const { maxStreams, maxStrangerStreams, maxStreamsPerPeer, streamsPerMinute } = this.limits
    if (this.#total >= maxStreams) {
      throw new SyncStreamLimitError(`already serving ${maxStreams} sync streams, the most it serves at once`)
    }
    if (!known && this.#strangers >= maxStrangerStreams) {
      throw new SyncStreamLimitError(
        `already serving ${maxStrangerStreams} sync streams to peers in none of its groups, the most it serves them`,
      )
    }
    const ofPeer = this.#perPeer.get(peer) ?? 0
    if (ofPeer >= maxStreamsPerPeer) {
      throw new SyncStreamLimitError(`${peer} has ${ofPeer} sync streams open, the most one peer may`)
    }
    try {
      this.#rate.consume(peer)
    } catch {
      throw new SyncRateLimitError(`${peer} opened more than ${streamsPerMinute} sync streams in a minute`)
    }
    this.#total++
    if (!known) this.#strangers++
    this.#perPeer.set(peer, ofPeer + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      this.#total--
      if (!known) this.#strangers--
      const left = (this.#perPeer.get(peer) ?? 1) - 1
      if (left > 0) this.#perPeer.set(peer, left)
      else this.#perPeer.delete(peer)
    }
  }
}
