/**
 * @packageDocumentation
 *
 * What a chat node runs once its libp2p node started: the sync rounds, and what it does on libp2p's
 * events: a connected peer is remembered, announced to the node's listeners and synced with; identify's
 * listen addresses are remembered for later starts; a subscription change may be a new ear for a pending
 * join request.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { TypedEventEmitter } from 'main-event'
import type { PendingBudget } from '../membership/index.js'
import type { ChatNodeEvents } from './chat-events.js'
import type { ChatGroup } from './chat-group.js'
import { rememberAddrs } from './peer-addresses.js'
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
  events: Pick<TypedEventEmitter<ChatNodeEvents>, 'safeDispatchEvent'>
  replica: SyncReplica
  pendingBudget: PendingBudget
  groups(): Iterable<ChatGroup>
  /**
   * The bootstrap list of this run, and the peers remembered from earlier runs (see `peer-addresses.ts`),
   * asked for when the scheduler starts.
   */
  bootstrap: readonly string[]
  remembered: () => readonly string[]
  intervalMs?: number | undefined
  limits?: SyncLimits | undefined
}

/**
 * Builds the node's sync scheduler and adds its listeners to `libp2p`'s events (they go with the libp2p
 * node when it stops). The caller starts the scheduler once its groups are subscribed.
 */
export function wireNode(libp2p: TransportNode, wiring: NodeWiring): SyncScheduler {
  const { store, log, events } = wiring
  const scheduler = new SyncScheduler(
    { libp2p, replica: wiring.replica, logger: wiring.logger },
    {
      groups: () => [...wiring.groups()].map((g) => g.group.id),
      bootstrap: wiring.bootstrap,
      remembered: wiring.remembered,
      ...(wiring.intervalMs === undefined ? {} : { intervalMs: wiring.intervalMs }),
      ...(wiring.limits === undefined ? {} : { limits: wiring.limits }),
      onRound: () => {
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
  libp2p.addEventListener('peer:disconnect', (evt) => {
    events.safeDispatchEvent('peer:disconnect', { detail: evt.detail.toString() })
  })
  // a new subscriber may not have heard this peer's join request yet
  libp2p.services.pubsub.addEventListener('subscription-change', () => {
    for (const group of wiring.groups()) group.announce()
  })
  return scheduler
}
