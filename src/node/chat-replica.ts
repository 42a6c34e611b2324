import type { Logger } from '@libp2p/interface'
import type { Group } from '../membership/index.js'
import type { ChatGroup } from './chat-group.js'
import { dialSignal } from './components.js'
import { rememberAddrs } from './peer-addresses.js'
import { type ChatStore, persist } from './store.js'
import {
  dialHints,
  type PeerHint,
  PendingAsks,
  type SyncAccess,
  type SyncReplica,
  subscriberHints,
} from './sync.js'
import { accessOf, epochsSealedTo, isKnownPeer } from './sync-access.js'
import { pace } from './sync-messages.js'
import type { TransportNode } from './transport.js'
import { canonicalGroupId } from './wire.js'

/** What a {@link ChatReplica} reads: its node's parts. */
export interface ChatReplicaComponents {
  peerId: string
  store: ChatStore
  logger: { forComponent(name: string): Logger }
  /** The node's groups by id (their stored logs replayed first, see `GroupRegistry.restore`). */
  groups(): ReadonlyMap<string, ChatGroup>
  /** The libp2p node, once started. */
  libp2p: () => TransportNode | undefined
  /** Peer ids of the bootstrap list: the relays among them get ciphertext by sync. */
  configured: ReadonlySet<string>
  /** Aborted when the node stops. */
  shutdown: AbortSignal
}

/**
 * A chat node as the sync protocol sees it: its groups, what each partner may be sent of them (see
 * `sync-access.ts`), and where what sync brings goes in: the same {@link GroupTopic} path as gossip.
 */
export class ChatReplica implements SyncReplica {
  readonly #c: ChatReplicaComponents
  readonly #log: Logger
  readonly pendingAsks = new PendingAsks()

  constructor(components: ChatReplicaComponents) {
    this.#c = components
    this.#log = components.logger.forComponent('p2pchat:node')
  }

  group(groupId: string): Group | undefined {
    const groups = this.#c.groups()
    return (groups.get(groupId) ?? groups.get(canonicalGroupId(groupId) ?? ''))?.group
  }

  access(group: Group, remote: string): Promise<SyncAccess> {
    const { configured, shutdown: signal } = this.#c
    return accessOf(group, remote, { libp2p: this.#c.libp2p(), configured, signal })
  }

  /** A member of one of this node's groups, or a bootstrap peer. */
  isKnownPeer(remote: string): boolean {
    const groups = [...this.#c.groups().values()].map(({ group }) => group)
    return isKnownPeer(groups, this.#c.configured, remote)
  }

  wantedEpochs(group: Group): string[] {
    // only epochs this member holds keys for: older ciphertext would be noise to it
    return [...epochsSealedTo(group, this.#c.peerId)]
  }

  get messageSource(): ChatStore {
    return this.#c.store
  }

  /** Peer exchange: the group's other subscribers this node knows that are members. */
  async peersOf(group: Group, remote: string): Promise<PeerHint[]> {
    const libp2p = this.#c.libp2p()
    const topic = this.#c.groups().get(group.id)?.topic.topic
    if (libp2p === undefined || topic === undefined) return []
    return subscriberHints(libp2p, topic, remote, (id) => group.isMember(id))
  }

  /** Dials the members a member or configured relay named (sync has checked both). */
  acceptPeers(_group: Group, peers: PeerHint[], _remote: string): void {
    const libp2p = this.#c.libp2p()
    if (libp2p === undefined || this.#c.shutdown.aborted) return
    // members a trusted partner named are worth reaching again after a restart
    for (const hint of peers) {
      persist(this.#log, 'hinted addresses', () => rememberAddrs(this.#c.store, hint.id, hint.addrs))
    }
    dialHints(libp2p, peers, dialSignal(this.#c.shutdown))
  }

  /** Never throws: a failure is logged. */
  acceptEvent(group: Group, bytes: Uint8Array, remote: string): void {
    try {
      this.#c.groups().get(group.id)?.topic.receiveEvent(bytes, remote)
    } catch (err) {
      this.#log.error('event of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }

  /** Never rejects: a failure is logged. Stored with one commit, then shown (see {@link ChatGroup}). */
  async acceptMessages(group: Group, items: Uint8Array[], remote: string): Promise<void> {
    try {
      await this.#c.groups().get(group.id)?.receiveMessages(items, remote, pace)
    } catch (err) {
      this.#log.error('messages of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }

  /** Never rejects: a failure is logged. */
  async acceptMessage(group: Group, bytes: Uint8Array, remote: string): Promise<void> {
    try {
      await this.#c.groups().get(group.id)?.topic.receiveMessage(bytes, remote)
    } catch (err) {
      this.#log.error('message of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }
}
