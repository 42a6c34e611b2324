/**
 * @packageDocumentation
 *
 * Who a node stays connected to: the relays of its bootstrap list, the peers remembered from earlier
 * runs, and the members and inviters it meets during this run. And whether any peer is reachable at all.
 */
import { type ComponentLogger, KEEP_ALIVE, type Logger, type PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { dialSignal } from './components.js'
import { Reachability, type ReachabilityInit } from './reachability.js'
import type { TransportNode } from './transport.js'

/** Peers met during a run that are kept connected, besides the bootstrap and remembered ones, at most. */
export const MAX_KEPT_MET = 64

/** What a {@link PeerKeeper} is built from. */
export interface PeerKeeperComponents {
  libp2p: TransportNode
  logger: ComponentLogger
}

/** Options of a {@link PeerKeeper}. */
export interface PeerKeeperInit extends Omit<ReachabilityInit, 'peers' | 'retrying'> {
  /** Peers (multiaddrs with `/p2p/<id>`) to keep connected to: the relays and peers given at start. */
  bootstrap: readonly string[]
  /**
   * Peers remembered from earlier runs (multiaddrs with `/p2p/<id>`), asked for at {@link PeerKeeper.start}
   * (once the groups' logs are replayed: who is worth it depends on them): dialled then, and kept.
   */
  remembered?: () => readonly string[]
  /** Whether a peer met during the run is worth reaching again: a member of a group, an inviter. */
  wanted?: (peerId: string) => boolean
}

/** A kept peer and where to dial it; no addresses: wherever libp2p's peer store has for it. */
interface Kept {
  peer: PeerId
  addrs: Multiaddr[]
}

/**
 * Keeps connections: every kept peer is tagged `KEEP_ALIVE`, so libp2p's reconnect queue re-dials it with
 * backoff (5 tries, from 1 s, doubling) when its connection drops, and {@link PeerKeeper.redial} (every
 * sync round) dials again those still unreachable once the queue gave up. A member or inviter that
 * connects during the run is kept from then on, not only from the next start. Says, through
 * `onChange`, when no peer at all is reachable and when one is again (see {@link Reachability}).
 */
export class PeerKeeper {
  readonly #libp2p: TransportNode
  readonly #log: Logger
  readonly #init: PeerKeeperInit
  /** The bootstrap peers, then the remembered ones, then those met during the run. */
  readonly #kept = new Map<string, Kept>()
  #met = 0
  readonly #reachability: Reachability
  readonly #abort = new AbortController()
  readonly #onConnect = (evt: CustomEvent<PeerId>): void => {
    this.#reachability.connected(evt.detail.toString())
    this.keepIfWanted(evt.detail)
  }
  readonly #onDisconnect = (): void => this.#reachability.disconnected()

  constructor(components: PeerKeeperComponents, init: PeerKeeperInit) {
    this.#libp2p = components.libp2p
    this.#log = components.logger.forComponent('p2pchat:peer-keeper')
    this.#init = init
    for (const kept of byPeer(init.bootstrap)) this.#kept.set(kept.peer.toString(), kept)
    this.#reachability = new Reachability({
      ...init,
      peers: () => this.#libp2p.getPeers().length,
      retrying: () => this.#kept.size,
    })
  }

  /**
   * Tags the kept peers `KEEP_ALIVE`, dials the remembered ones (libp2p dials the bootstrap list itself),
   * and starts watching whether any peer is reachable.
   */
  start(): void {
    const remembered = byPeer(this.#init.remembered?.() ?? []).filter(
      (k) => !this.#kept.has(k.peer.toString()),
    )
    for (const kept of remembered) this.#kept.set(kept.peer.toString(), kept)
    for (const kept of this.#kept.values()) this.#keepAlive(kept)
    for (const kept of remembered) this.#dial(kept)
    this.#libp2p.addEventListener('peer:connect', this.#onConnect)
    this.#libp2p.addEventListener('peer:disconnect', this.#onDisconnect)
    this.#reachability.start()
  }

  /** Stops dialling and watching. */
  stop(): void {
    this.#abort.abort()
    this.#reachability.stop()
    this.#libp2p.removeEventListener('peer:connect', this.#onConnect)
    this.#libp2p.removeEventListener('peer:disconnect', this.#onDisconnect)
  }

  /** How many peers are kept (dialled while unreachable). */
  get size(): number {
    return this.#kept.size
  }

  /**
   * Keeps `peer` connected from now on if it is worth it (a member, an inviter), at most
   * {@link MAX_KEPT_MET} of those met during the run.
   */
  keepIfWanted(peer: PeerId): void {
    const id = peer.toString()
    if (
      this.#abort.signal.aborted ||
      this.#kept.has(id) ||
      this.#met >= MAX_KEPT_MET ||
      this.#init.wanted?.(id) !== true
    )
      return
    const kept = { peer, addrs: [] }
    this.#kept.set(id, kept)
    this.#met++
    this.#keepAlive(kept)
  }

  /**
   * Keeps the peers `addrs` name (multiaddrs ending in `/p2p/<id>`, an invite's) connected from now on,
   * and dials them now; counted with the peers met during the run.
   */
  keepAddrs(addrs: readonly string[]): void {
    for (const kept of byPeer(addrs)) {
      const id = kept.peer.toString()
      if (this.#abort.signal.aborted || this.#kept.has(id) || this.#met >= MAX_KEPT_MET) continue
      this.#kept.set(id, kept)
      this.#met++
      this.#keepAlive(kept)
      this.#dial(kept)
    }
  }

  /**
   * Stops dialling the peer `peerId` at the addresses it was kept for (a relay the user forgot): no more
   * re-dials and no `KEEP_ALIVE` tag, unless it is worth keeping anyway (a member), as if met now.
   *
   * @returns whether it was kept
   */
  forget(peerId: string): boolean {
    const kept = this.#kept.get(peerId)
    if (kept === undefined) return false
    if (this.#init.wanted?.(peerId) === true) {
      this.#kept.set(peerId, { peer: kept.peer, addrs: [] })
      return true
    }
    this.#kept.delete(peerId)
    this.#libp2p.peerStore
      .merge(kept.peer, { tags: { [KEEP_ALIVE]: undefined } })
      .catch((err: unknown) => this.#log('could not untag %p: %s', kept.peer, (err as Error).message))
    return true
  }

  /**
   * Dials again the kept peers we are not connected to, and keeps the wanted ones connected now (a peer
   * that became a member while connected). The reconnect queue gives up after a few tries and drops the
   * tag, and libp2p announces the bootstrap list only once at start, so a relay that was down for long
   * would otherwise never be reached again.
   */
  redial(): void {
    const connected = this.#libp2p.getPeers()
    for (const peer of connected) this.keepIfWanted(peer)
    const ids = new Set(connected.map(String))
    for (const [id, kept] of this.#kept) {
      if (ids.has(id)) continue
      this.#keepAlive(kept)
      this.#dial(kept)
    }
  }

  #dial({ addrs, peer }: Kept): void {
    this.#libp2p
      .dial(addrs.length > 0 ? addrs : peer, { signal: dialSignal(this.#abort.signal) })
      .catch((err: unknown) => {
        this.#log('peer %p still unreachable: %s', peer, (err as Error).message)
      })
  }

  #keepAlive({ addrs, peer }: Kept): void {
    this.#libp2p.peerStore
      .merge(peer, { multiaddrs: addrs, tags: { [KEEP_ALIVE]: {} } })
      .catch((err: unknown) => this.#log('could not tag %p keep-alive: %s', peer, (err as Error).message))
  }
}

/** Multiaddrs with `/p2p/<id>` grouped by that peer, in first-seen order; others are skipped. */
function byPeer(texts: readonly string[]): Kept[] {
  const out = new Map<string, Kept>()
  for (const text of texts) {
    try {
      const addr = multiaddr(text)
      const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (id === undefined) continue
      const entry = out.get(id) ?? { addrs: [], peer: peerIdFromString(id) }
      if (!entry.addrs.some((a) => a.equals(addr))) entry.addrs.push(addr)
      out.set(id, entry)
    } catch {
      // not a multiaddr, or no peer id in it: nothing to dial
    }
  }
  return [...out.values()]
}
