/**
 * @packageDocumentation
 *
 * What a chat node runs once its libp2p node started: the sync rounds, the connections it keeps, and
 * what it does on libp2p's events: a connected peer is remembered, announced to the node's listeners and
 * synced with; identify's listen addresses, and those mDNS finds for a peer worth keeping, are
 * remembered for later starts; a subscription change may be a new ear for a pending join request.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { TypedEventEmitter } from 'main-event'
import type { PendingBudget } from '../membership/index.js'
import type { ChatNodeEvents, ClaimedPeerRef } from './chat-events.js'
import type { ChatGroup } from './chat-group.js'
import { rememberAddrs } from './peer-addresses.js'
import { PeerKeeper } from './peer-keeper.js'
import { type ChatStore, persist } from './store.js'
import type { SyncReplica } from './sync.js'
import type { SyncLimits } from './sync-limits.js'
import { SyncScheduler } from './sync-scheduler.js'
import type { TransportNode } from './transport.js'

/** What the rounds and listeners act on. */
export interface NodeWiring {
  store: ChatStore
  logger: ComponentLogger
  log: Logger
  events: Pick<TypedEventEmitter<ChatNodeEvents>, 'safeDispatchEvent' | 'addEventListener'>
  replica: SyncReplica
  pendingBudget: PendingBudget
  groups(): Iterable<ChatGroup>
  /**
   * The bootstrap list of this run, and the peers remembered from earlier runs (see `peer-addresses.ts`),
   * asked for when the scheduler starts.
   */
  bootstrap: readonly string[]
  remembered: () => readonly string[]
  /** Whether a peer is worth reaching again (a member, an inviter): kept connected once met. */
  wanted: (peerId: string) => boolean
  /** A peer as the chat shows it, with a name only claimed (marked) when no signed event gives one. */
  ref: (peerId: string) => ClaimedPeerRef
  intervalMs?: number | undefined
  limits?: SyncLimits | undefined
  /** See `Reachability`. */
  reachabilityGraceMs?: number | undefined
}

/** The sync scheduler and peer keeper of a started node. */
export interface WiredNode {
  scheduler: SyncScheduler
  keeper: PeerKeeper
}

/**
 * Builds the node's sync scheduler and peer keeper and adds their listeners to `libp2p`'s events (they go
 * with the libp2p node when it stops). The caller starts both once its groups are subscribed.
 */
export function wireNode(libp2p: TransportNode, wiring: NodeWiring): WiredNode {
  const { store, log, events } = wiring
  const keeper = new PeerKeeper(
    { libp2p, logger: wiring.logger },
    {
      bootstrap: wiring.bootstrap,
      remembered: wiring.remembered,
      wanted: wiring.wanted,
      ...(wiring.reachabilityGraceMs === undefined ? {} : { graceMs: wiring.reachabilityGraceMs }),
      onChange: ({ reachable, peerId, retrying }) => {
        const peer = peerId === null ? null : wiring.ref(peerId)
        events.safeDispatchEvent('reachability:change', { detail: { reachable, peer, retrying } })
      },
    },
  )
  const scheduler = new SyncScheduler(
    { libp2p, replica: wiring.replica, logger: wiring.logger },
    {
      groups: () => [...wiring.groups()].map((g) => g.group.id),
      ...(wiring.intervalMs === undefined ? {} : { intervalMs: wiring.intervalMs }),
      ...(wiring.limits === undefined ? {} : { limits: wiring.limits }),
      onRound: () => {
        keeper.redial()
        // what waited too long for parents or epochs goes, even when nothing new arrives to push it out
        wiring.pendingBudget.expire()
        // a join request lost on the way (a relay not yet forwarding) is repeated until someone adds us
        for (const group of wiring.groups()) group.announce()
      },
    },
  )
  libp2p.addEventListener('peer:connect', (evt) => {
    const peerId = evt.detail.toString()
    persist(log, 'a connected peer', () => store.upsertPeer({ peerId }))
    events.safeDispatchEvent('peer:connect', { detail: peerId })
    scheduler.syncAll(evt.detail)
  })
  libp2p.addEventListener('peer:identify', ({ detail }) => {
    const addrs = detail.listenAddrs.map(String)
    persist(log, 'peer addresses', () => rememberAddrs(store, detail.peerId.toString(), addrs))
  })
  // what mDNS (or another discovery) found: a member's new address on this network; not every stranger's
  libp2p.addEventListener('peer:discovery', ({ detail }) => {
    const peerId = detail.id.toString()
    if (!wiring.wanted(peerId)) return
    const addrs = detail.multiaddrs.map(String)
    persist(log, 'discovered addresses', () => rememberAddrs(store, peerId, addrs))
  })
  // a peer that became a member while connected is kept from now on, before it disconnects
  events.addEventListener('membership:change', () => {
    for (const peer of libp2p.getPeers()) keeper.keepIfWanted(peer)
  })
  libp2p.addEventListener('peer:disconnect', (evt) => {
    events.safeDispatchEvent('peer:disconnect', { detail: evt.detail.toString() })
  })
  // a new subscriber may not have heard this peer's join request yet
  libp2p.services.pubsub.addEventListener('subscription-change', () => {
    for (const group of wiring.groups()) group.announce()
  })
  return { scheduler, keeper }
}
