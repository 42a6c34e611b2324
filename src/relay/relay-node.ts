import type { AbortOptions, Logger } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import type { Identity } from '../crypto/index.js'
import { type Group, PendingBudget } from '../membership/index.js'
import type { ChatNodeComponents, NodeComponents } from '../node/components.js'
import { NodeStoppedError } from '../node/errors.js'
import { Lifecycle, openNode } from '../node/lifecycle.js'
import type { DataDirLock } from '../node/lock.js'
import type { ChatStore } from '../node/store.js'
import {
  handleSync,
  type PeerHint,
  type SyncAccess,
  type SyncReplica,
  subscriberHints,
} from '../node/sync.js'
import { accessOf, bootstrapPeerIds, isKnownPeer } from '../node/sync-access.js'
import type { TransportNode } from '../node/transport.js'
import { canonicalGroupId, topicOf } from '../node/wire.js'
import { admissionLimits, DEFAULT_MAX_PENDING_GROUPS, GroupAdmission, type Standing } from './admission.js'
import { DEFAULT_RELAY_LISTEN } from './defaults.js'
import { RelayGroups } from './relay-groups.js'

/** Where a relay listens unless told otherwise: a fixed port, so that peers can be given its address. */
export { DEFAULT_RELAY_LISTEN }

/** Options for {@link createRelayNode}. */
export interface RelayNodeInit {
  /** Directory for the relay's identity key and its store. */
  dataDir: string
  /** Multiaddrs to listen on. Default {@link DEFAULT_RELAY_LISTEN}. */
  listen?: string[]
  /** Other relays or peers to connect to. */
  bootstrap?: string[]
  /** Total bytes of stored envelopes and membership events, over all groups. Default 1 GiB. */
  maxStorage?: number
  /** Bytes of stored envelopes and membership events per group. Default a quarter of `maxStorage`. */
  maxGroupStorage?: number
  /**
   * Memory for group data: the membership events held in memory, plus the pending buffers (events with
   * unknown parents, envelopes under an unknown epoch) of every group slot, counted at their caps.
   * Default 256 MiB.
   */
  maxMemory?: number
  /** Groups the relay holds at most (a quarter of them reserved for new groups). Default 1000. */
  maxGroups?: number
  /** Groups one founder may have held; the founder's least active one makes room. Default 8. */
  maxFounderGroups?: number
  /** Stored bytes over one founder's groups. Default `maxGroupStorage`. */
  maxFounderStorage?: number
  /**
   * Groups taken up on a peer's request whose genesis has not arrived yet, at most; the oldest is dropped
   * for a new one, and each is dropped after 10 minutes. Held in memory only, outside `maxGroups`.
   * Default 64.
   */
  maxPendingGroups?: number
  /** New groups one peer may ask the relay to take up per minute. Default 10. */
  groupsPerMinute?: number
  /** How long envelopes are kept, in ms. Default 30 days. */
  retention?: number
  /**
   * A group with no member activity for this long is dropped with all it stored, in ms (a group with
   * fewer than 2 active members: after at most a day). Default `retention`.
   */
  groupIdleMs?: number
  /** Envelopes and membership events accepted per peer per minute. Default 600. */
  ratePerMinute?: number
  /** Interval of `stats` events, in ms. Default 10000. */
  statsIntervalMs?: number
}

/** Counters an operator watches. Contains no content, no keys, no names. */
export interface RelayStats {
  peers: number
  groups: number
  events: number
  messages: number
  /** Bytes of stored envelopes and membership events. */
  storedBytes: number
  /** Memory taken by events and envelopes waiting for their parents or epoch, bookkeeping included. */
  pendingBytes: number
  rejected: number
  /** Groups dropped to make room or for being idle, since start. */
  evicted: number
}

/** Why the relay refused something, for its log. */
export interface RelayRejection {
  group: string
  from: string
  reason: string
}

/** Events of a {@link RelayNode}. */
export interface RelayNodeEvents {
  stats: CustomEvent<RelayStats>
  reject: CustomEvent<RelayRejection>
  'message:store': CustomEvent<{ group: string; id: string }>
}

/**
 * The optional bootstrap/relay node: a circuit-relay v2 server that also keeps, and serves over the sync
 * protocol, the signed membership events and ciphertext envelopes of every group whose members use it.
 * It is never a member: its groups are opened ciphertext-only, so it cannot read even if added. What it
 * holds and stores is {@link RelayGroups}; this class is its lifecycle, counters and sync.
 *
 * @example
 * ```ts
 * const relay = await createRelayNode({ dataDir: '/var/lib/p2pchat-relay' })
 * await relay.start()
 * console.log(relay.addrs())
 * ```
 */
export class RelayNode extends TypedEventEmitter<RelayNodeEvents> implements SyncReplica {
  readonly identity: Identity
  readonly #init: RelayNodeInit
  readonly #components: ChatNodeComponents
  readonly #log: Logger
  readonly #lock: DataDirLock | undefined
  readonly #groups: RelayGroups
  /** Groups with a genesis: what the relay keeps and evicts. */
  readonly #admission: GroupAdmission
  readonly #abort = new AbortController()
  /** What waits for parents or epochs, over all groups, per sending peer and author. */
  readonly #pendingBudget = new PendingBudget()
  /** Peer ids of the relay's bootstrap list: the relays among them are served every group. */
  readonly #configured: ReadonlySet<string>
  #libp2p: TransportNode | undefined
  #timers: Array<ReturnType<typeof setInterval>> = []
  #rejected = 0
  readonly #life = new Lifecycle(
    () => new NodeStoppedError('this relay was stopped and cannot be started again'),
  )

  /**
   * @param lock - the data directory lock taken by {@link createRelayNode}; released by {@link RelayNode.stop}
   * @throws {InvalidRelayInitError} a limit is unusable
   */
  constructor(init: RelayNodeInit, identity: Identity, components: ChatNodeComponents, lock?: DataDirLock) {
    super()
    this.#init = init
    this.identity = identity
    this.#components = components
    this.#log = components.logger.forComponent('p2pchat:relay')
    this.#lock = lock
    this.#configured = bootstrapPeerIds(init.bootstrap ?? [])
    this.#admission = new GroupAdmission(
      admissionLimits({
        maxStorage: init.maxStorage,
        maxGroupStorage: init.maxGroupStorage,
        maxMemory: init.maxMemory,
        maxGroups: init.maxGroups,
        maxPendingGroups: init.maxPendingGroups,
        maxFounderGroups: init.maxFounderGroups,
        maxFounderStorage: init.maxFounderStorage,
        idleMs: init.groupIdleMs ?? init.retention,
      }),
    )
    this.#groups = new RelayGroups(
      {
        ...components,
        identity,
        pendingBudget: this.#pendingBudget,
        admission: this.#admission,
        rejected: (group, from, error) => this.#reject(group, from, error),
        stored: (group, id) => this.safeDispatchEvent('message:store', { detail: { group, id } }),
      },
      {
        ratePerMinute: init.ratePerMinute ?? 600,
        groupsPerMinute: init.groupsPerMinute ?? 10,
        maxPendingGroups: init.maxPendingGroups ?? DEFAULT_MAX_PENDING_GROUPS,
        retention: init.retention ?? 30 * 24 * 60 * 60 * 1000,
      },
    )
    this.#groups.restore()
  }

  /** The relay's peer id. */
  get peerId(): string {
    return this.identity.memberId
  }

  /**
   * Listens, serves relay reservations and sync, subscribes to known groups. Idempotent: every call,
   * concurrent ones included, gets the same start. A start that failed can be tried again.
   *
   * @throws {NodeStoppedError} the relay was stopped
   */
  start(options: AbortOptions = {}): Promise<void> {
    return this.#life.start(() => this.#start(options))
  }

  async #start(options: AbortOptions): Promise<void> {
    const libp2p = await this.#life.startNode(
      () =>
        this.#components.transport(
          {
            privateKey: this.identity.privateKey,
            listen: this.#init.listen ?? [...DEFAULT_RELAY_LISTEN],
            bootstrap: this.#init.bootstrap ?? [],
            mdns: false,
            relayServer: true,
          },
          options,
        ),
      (created) => {
        this.#libp2p = created
      },
      (created) => handleSync(created, this, this.#abort.signal),
    )
    if (libp2p === undefined) return
    this.#groups.subscribe(libp2p.services.pubsub)
    this.#groups.prune()
    const prune = setInterval(() => this.#groups.prune(), 60_000)
    const stats = setInterval(() => {
      try {
        this.safeDispatchEvent('stats', { detail: this.stats() })
      } catch (err) {
        this.#log.error('could not report stats: %s', (err as Error).message)
      }
    }, this.#init.statsIntervalMs ?? 10_000)
    prune.unref()
    stats.unref()
    this.#timers = [prune, stats]
  }

  /**
   * Stops networking, then flushes and closes the store and releases the data directory. Idempotent:
   * every call gets the same stop. The store is closed even if libp2p fails to stop.
   */
  stop(): Promise<void> {
    return this.#life.stop(() => this.#stop())
  }

  async #stop(): Promise<void> {
    await this.#life.stopNode(this.#abort, async () => {
      for (const timer of this.#timers) clearInterval(timer)
      this.#groups.stop()
      await this.#libp2p?.stop()
    }, [this.#components.store, this.#lock])
  }

  /** Full multiaddrs, `/p2p/<id>` included, to give to `--bootstrap`. */
  addrs(): string[] {
    return (this.#libp2p?.getMultiaddrs() ?? []).map(String)
  }

  /** The libp2p node, once started. */
  get libp2p(): TransportNode | undefined {
    return this.#libp2p
  }

  /** Counters without content. `groups` counts the groups whose genesis the relay holds. */
  stats(): RelayStats {
    let events = 0
    for (const { group } of this.#groups.values()) events += group.events().length
    return {
      peers: this.#libp2p?.getPeers().length ?? 0,
      groups: this.#admission.size,
      events,
      messages: this.#components.store.messageCount(),
      storedBytes: this.#admission.storedBytes,
      pendingBytes: this.#pendingBudget.usage().bytes,
      rejected: this.#rejected,
      evicted: this.#groups.evicted,
    }
  }

  /** Where a held group stands in the admission policy (see admission.ts); undefined if not held. */
  standing(groupId: string): Standing | undefined {
    const id = canonicalGroupId(groupId)
    return id === undefined ? undefined : this.#admission.standing(id)
  }

  #reject(group: string, from: string, error: Error): void {
    this.#rejected++
    this.#log('rejected input for %s from %s: %s: %s', group, from, error.name, error.message)
    this.safeDispatchEvent('reject', { detail: { group, from, reason: `${error.name}: ${error.message}` } })
  }

  // SyncReplica

  /**
   * @internal A relay takes up any group a peer syncs with it (see {@link RelayGroups.takeUp}); then the
   * admission policy decides. A sync by a member counts as that member's activity in the group.
   */
  group(groupId: string, asServer: boolean, remote = ''): Group | undefined {
    const id = canonicalGroupId(groupId)
    if (id === undefined) return undefined
    const existing = this.#groups.get(id)
    if (existing !== undefined) {
      if (asServer && remote !== '' && existing.group.isMember(remote)) this.#groups.touch(id, remote)
      return existing.group
    }
    if (!asServer || this.#life.stopping) return undefined
    return this.#groups.takeUp(id, remote)
  }

  /**
   * @internal What `remote` may be sent of `group`: a member gets its own epochs' envelopes, a relay
   * this one was configured with gets every envelope, a former member the log, anyone else nothing.
   */
  access(group: Group, remote: string): Promise<SyncAccess> {
    return accessOf(group, remote, {
      libp2p: this.#libp2p,
      configured: this.#configured,
      signal: this.#abort.signal,
    })
  }

  /** @internal A member of one of the groups held here, or a bootstrap peer. */
  isKnownPeer(remote: string): boolean {
    const groups = [...this.#groups.values()].map((held) => held.group)
    return isKnownPeer(groups, this.#configured, remote)
  }

  /** @internal A relay wants every epoch's envelopes. */
  wantedEpochs(): null {
    return null
  }

  /** @internal The store, as the source of envelopes for sync. */
  get messageSource(): ChatStore {
    return this.#components.store
  }

  /**
   * @internal Peer exchange: the group's other subscribers that are members, each also through this
   * relay, so members that met only here can connect to each other (and DCUtR can then upgrade to a
   * direct connection).
   */
  async peersOf(group: Group, remote: string): Promise<PeerHint[]> {
    return this.#libp2p === undefined
      ? []
      : subscriberHints(this.#libp2p, topicOf(group.id), remote, (id) => group.isMember(id), this.addrs())
  }

  /** @internal Never throws: a failure is logged. */
  acceptEvent(group: Group, bytes: Uint8Array, remote: string): void {
    const held = this.#groups.get(group.id)
    // a group dropped while its sync ran is not taken up again here
    if (held === undefined || held.group !== group) return
    try {
      held.topic.receiveEvent(bytes, remote)
    } catch (err) {
      this.#log.error('event of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }

  /** @internal Never rejects: a failure is logged. */
  async acceptMessage(group: Group, bytes: Uint8Array, remote: string): Promise<void> {
    const held = this.#groups.get(group.id)
    if (held === undefined || held.group !== group) return
    try {
      await held.topic.receiveMessage(bytes, remote)
    } catch (err) {
      this.#log.error('envelope of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }
}

/**
 * Locks `init.dataDir` for this process and opens (creating on first use) the relay's identity and store;
 * call {@link RelayNode.start}.
 *
 * @param components - parts to use instead of the defaults (see {@link NodeComponents})
 * @throws {DataDirLockedError} another running p2pchat process uses the data directory
 * @throws {InsecureIdentityKeyError} `identity.key` is readable or writable by other users
 */
export async function createRelayNode(
  init: RelayNodeInit,
  components: Partial<NodeComponents> = {},
): Promise<RelayNode> {
  const own = { ...components, store: undefined } // a relay always opens the store in its data directory
  return openNode(init.dataDir, own, (identity, parts, lock) => new RelayNode(init, identity, parts, lock))
}
