/**
 * @packageDocumentation
 *
 * Whether any peer is reachable: one line when the last peer is gone, one when a peer is back. Nothing
 * is said at start while the first dials are under way, nor at start by a node that knows no peer to
 * dial (a group just founded: its greeting shows the invite), nor for a connection that drops and comes
 * back within the grace period (a relay's reconnect, say).
 */

/** How long no peer at all must be connected before that is reported, in ms. */
export const DEFAULT_REACHABILITY_GRACE_MS = 10_000

/** What {@link Reachability} reports. */
export interface ReachabilityNotice {
  /** Whether a peer is connected now. */
  reachable: boolean
  /** The peer that came back; null when none is reachable. */
  peerId: string | null
  /** How many known peers and relays are being dialled again (0: none is known to this node). */
  retrying: number
}

/** Options of a {@link Reachability}. */
export interface ReachabilityInit {
  /** How many peers are connected now. */
  peers: () => number
  /** How many known peers and relays are being dialled again now. */
  retrying?: () => number
  /** Called once per change: no peer reachable, then a peer back. */
  onChange?: (notice: ReachabilityNotice) => void
  /** See {@link DEFAULT_REACHABILITY_GRACE_MS}. */
  graceMs?: number
}

/**
 * Watches the connections: silent while starting; after the grace period without any peer, "none
 * reachable" once (at start only when there are known peers to dial); at the next connection, "back"
 * once. A drop of the last connection arms the grace period again.
 */
export class Reachability {
  readonly #init: ReachabilityInit
  /** `starting` until the first connection or the first grace period ends. */
  #state: 'starting' | 'reachable' | 'unreachable' = 'starting'
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(init: ReachabilityInit) {
    this.#init = init
  }

  /** Starts the first grace period. */
  start(): void {
    if (this.#init.peers() > 0) this.#state = 'reachable'
    else this.#arm()
  }

  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** A peer connected. */
  connected(peerId: string): void {
    this.stop()
    const was = this.#state
    this.#state = 'reachable'
    if (was === 'unreachable') this.#init.onChange?.({ reachable: true, peerId, retrying: this.#retrying() })
  }

  /** A peer disconnected: if it was the last, the grace period starts. */
  disconnected(): void {
    if (this.#state === 'reachable' && this.#init.peers() === 0) this.#arm()
  }

  #retrying(): number {
    return this.#init.retrying?.() ?? 0
  }

  #arm(): void {
    this.stop()
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#state === 'unreachable' || this.#init.peers() > 0) return
      if (this.#state === 'starting' && this.#retrying() === 0) return
      this.#state = 'unreachable'
      this.#init.onChange?.({ reachable: false, peerId: null, retrying: this.#retrying() })
    }, this.#init.graceMs ?? DEFAULT_REACHABILITY_GRACE_MS)
    // a node that stops need not wait for it
    this.#timer.unref?.()
  }
}
