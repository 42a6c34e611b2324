import { type ComponentLogger, KEEP_ALIVE, type Logger, type PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Queue, type RepeatingTask, repeatingTask } from '@libp2p/utils'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Group } from '../membership/index.js'
import { dialSignal } from './components.js'
import {
  MAX_SYNC_MESSAGES,
  MAX_SYNC_ROUNDS,
  type SyncLimits,
  type SyncReplica,
  syncWithPeer,
} from './sync.js'
import type { TransportNode } from './transport.js'

/**
 * Syncs this node runs at once with one peer (its groups take turns): well under the streams a peer
 * serves one peer at once, so an honest node is never refused for opening too many.
 */
export const SYNCS_PER_PEER = 2

/** What a {@link SyncScheduler} is built from. */
export interface SyncSchedulerComponents {
  libp2p: TransportNode
  replica: SyncReplica
  logger: ComponentLogger
}

/** Options of a {@link SyncScheduler}. */
export interface SyncSchedulerInit {
  /** The ids of the groups to sync in a round. */
  groups: () => Iterable<string>
  /** Peers (multiaddrs with `/p2p/<id>`) to keep connected to: the relays and peers given at start. */
  bootstrap: readonly string[]
  /**
   * Peers remembered from earlier runs (multiaddrs with `/p2p/<id>`), asked for at start (when the
   * groups' logs are replayed): dialled then, and kept
   * connected as the bootstrap peers are.
   */
  remembered?: () => readonly string[]
  /** Period of the anti-entropy rounds, in ms. Default 30000. */
  intervalMs?: number
  /** Time limits of one sync. */
  limits?: SyncLimits
  /** Housekeeping run at the start of every round, before its syncs. */
  onRound?: () => void
}

/**
 * When a node syncs, and with whom: on request (a connect, input it cannot judge yet, a new member), and
 * in anti-entropy rounds (`repeatingTask`) with a random connected peer. One sync per (peer, group) at a
 * time; one asked for while it runs runs once more after it. At most {@link SYNCS_PER_PEER} per peer.
 * Bootstrap peers are tagged `KEEP_ALIVE`, so libp2p's reconnect queue re-dials them with backoff, and
 * every round re-dials (and re-tags) those still unreachable after the queue gave up.
 */
export class SyncScheduler {
  readonly #libp2p: TransportNode
  readonly #replica: SyncReplica
  readonly #log: Logger
  readonly #init: SyncSchedulerInit
  /** The bootstrap peers, then the remembered ones, each with its addresses. */
  #keep: Array<{ addrs: Multiaddr[]; peer: PeerId }>
  readonly #syncing = new Set<string>()
  /** Keys of {@link #syncing} asked for again while running: they sync once more when done. */
  readonly #again = new Set<string>()
  /** Per peer, the syncs with it waiting for one of its turns. */
  readonly #queues = new Map<string, Queue<void>>()
  readonly #abort = new AbortController()
  readonly #task: RepeatingTask

  constructor(components: SyncSchedulerComponents, init: SyncSchedulerInit) {
    this.#libp2p = components.libp2p
    this.#replica = components.replica
    this.#log = components.logger.forComponent('p2pchat:sync-scheduler')
    this.#init = init
    this.#keep = byPeer(init.bootstrap)
    this.#task = repeatingTask(() => this.#round(), init.intervalMs ?? 30_000)
  }

  /**
   * Tags the bootstrap and remembered peers `KEEP_ALIVE`, dials the remembered ones (libp2p dials the
   * bootstrap list itself) and starts the rounds.
   */
  start(): void {
    const bootstrap = this.#keep.length
    this.#keep = byPeer([...this.#init.bootstrap, ...(this.#init.remembered?.() ?? [])])
    for (const { addrs, peer } of this.#keep) this.#keepAlive(addrs, peer)
    for (const target of this.#keep.slice(bootstrap)) this.#dial(target)
    this.#task.start()
  }

  /** Stops the rounds and aborts every sync and dial in flight. */
  stop(): void {
    this.#task.stop()
    this.#abort.abort()
  }

  /** Syncs every group with `peer`. */
  syncAll(peer: PeerId): void {
    for (const id of this.#init.groups()) this.sync(peer, id)
  }

  /** Syncs group `groupId` with every peer connected now. */
  syncConnected(groupId: string): void {
    for (const peer of this.#libp2p.getPeers()) this.sync(peer, groupId)
  }

  /** Syncs group `groupId` with the peer `peerId` (a string); with `connectedOnly`, only if connected now. */
  syncWith(peerId: string, groupId: string, connectedOnly = false): void {
    const peer = connectedOnly
      ? this.#libp2p.getPeers().find((p) => p.toString() === peerId)
      : peerIdFromString(peerId)
    if (peer !== undefined) this.sync(peer, groupId)
  }

  /**
   * Syncs one group with one peer in the background. A sync that stopped at the peer's budget is
   * followed by another at once, up to {@link MAX_SYNC_ROUNDS}. Never throws; failures are logged.
   */
  sync(peer: PeerId, groupId: string): void {
    const group = this.#replica.group(groupId, false)
    if (group === undefined || this.#abort.signal.aborted) return
    const key = `${peer.toString()}|${groupId}`
    if (this.#syncing.has(key)) {
      // the running sync may have judged or read too early for what asked for this one (e.g. the peer
      // was sent nothing before our add of it arrived): run once more after it
      this.#again.add(key)
      return
    }
    this.#syncing.add(key)
    this.#queue(peer.toString())
      .add(() => this.#rounds(peer, group))
      .catch((err: unknown) => {
        if (!this.#abort.signal.aborted) {
          this.#log('sync of %s with %p failed: %s', groupId, peer, (err as Error).message)
        }
      })
      .finally(() => {
        this.#syncing.delete(key)
        if (this.#again.delete(key)) this.sync(peer, groupId)
      })
  }

  async #rounds(peer: PeerId, group: Group): Promise<void> {
    for (let round = 1; !this.#abort.signal.aborted; round++) {
      const result = await syncWithPeer(
        this.#libp2p,
        peer,
        this.#replica,
        group,
        this.#abort.signal,
        this.#init.limits,
      )
      this.#log('synced %s with %p: %d messages', group.id, peer, result.messagesReceived)
      if (!result.known || !(result.more || result.messagesReceived >= MAX_SYNC_MESSAGES)) return
      if (round >= MAX_SYNC_ROUNDS) {
        this.#log(
          '%s: %d full syncs with %p in a row; the rest waits for the next round',
          group.id,
          round,
          peer,
        )
        return
      }
    }
  }

  /** The queue of syncs with `peer`, dropped once it runs empty. */
  #queue(peer: string): Queue<void> {
    let queue = this.#queues.get(peer)
    if (queue === undefined) {
      const created = new Queue<void>({ concurrency: SYNCS_PER_PEER })
      created.addEventListener('idle', () => {
        if (this.#queues.get(peer) === created) this.#queues.delete(peer)
      })
      this.#queues.set(peer, created)
      queue = created
    }
    return queue
  }

  #round(): void {
    try {
      this.#init.onRound?.()
      this.#redialBootstrap()
      const peers = this.#libp2p.getPeers()
      const peer = peers[Math.floor(Math.random() * peers.length)]
      if (peer !== undefined) this.syncAll(peer)
    } catch (err) {
      this.#log.error('anti-entropy round failed: %s', (err as Error).message)
    }
  }

  /**
   * Dials again the bootstrap and remembered peers we are not connected to. The reconnect queue gives up
   * after a few tries and drops the tag, and libp2p announces the bootstrap list only once at start, so a
   * relay that was down for long would otherwise never be reached again.
   */
  #redialBootstrap(): void {
    const connected = new Set(this.#libp2p.getPeers().map(String))
    for (const target of this.#keep) {
      if (connected.has(target.peer.toString())) continue
      this.#keepAlive(target.addrs, target.peer)
      this.#dial(target)
    }
  }

  #dial({ addrs, peer }: { addrs: Multiaddr[]; peer: PeerId }): void {
    this.#libp2p.dial(addrs, { signal: dialSignal(this.#abort.signal) }).catch((err: unknown) => {
      this.#log('peer %p still unreachable: %s', peer, (err as Error).message)
    })
  }

  #keepAlive(addrs: Multiaddr[], peer: PeerId): void {
    this.#libp2p.peerStore
      .merge(peer, { multiaddrs: addrs, tags: { [KEEP_ALIVE]: {} } })
      .catch((err: unknown) => this.#log('could not tag %p keep-alive: %s', peer, (err as Error).message))
  }
}

/** Multiaddrs with `/p2p/<id>` grouped by that peer, in first-seen order; others are skipped. */
function byPeer(texts: readonly string[]): Array<{ addrs: Multiaddr[]; peer: PeerId }> {
  const out = new Map<string, { addrs: Multiaddr[]; peer: PeerId }>()
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
