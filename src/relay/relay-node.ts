import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import type { Identity } from '../crypto/index.js'
import { Group, type OpenedMessage, type ReceiveEventResult, type SignedEvent } from '../membership/index.js'
import { NodeStoppedError } from '../node/errors.js'
import { Lifecycle } from '../node/lifecycle.js'
import { type DataDirLock, lockDataDir } from '../node/lock.js'
import { ChatStore, loadOrCreateIdentity } from '../node/store.js'
import {
  handleSync,
  type PeerHint,
  type SyncAccess,
  type SyncReplica,
  subscriberHints,
} from '../node/sync.js'
import { accessOf, bootstrapPeerIds, isKnownPeer } from '../node/sync-access.js'
import {
  createTransport,
  setTopicValidator,
  type TopicValidationResult,
  type TransportNode,
} from '../node/transport.js'
import { canonicalGroupId, decodeGossip, topicOf } from '../node/wire.js'
import { QuotaExceededError, RateLimitedError } from './errors.js'

const log = logger('p2pchat:relay')

/** Options for {@link createRelayNode}. */
export interface RelayNodeInit {
  /** Directory for the relay's identity key and its store. */
  dataDir: string
  /** Multiaddrs to listen on. Default `/ip4/0.0.0.0/tcp/4001`. */
  listen?: string[]
  /** Other relays or peers to connect to. */
  bootstrap?: string[]
  /** Total bytes of stored envelopes and membership events, over all groups. Default 1 GiB. */
  maxStorage?: number
  /** Bytes of stored envelopes and membership events per group. Default a quarter of `maxStorage`. */
  maxGroupStorage?: number
  /** Groups the relay holds at most. Default 1000. */
  maxGroups?: number
  /**
   * Groups taken up on a peer's request whose genesis has not arrived yet, at most; the oldest is dropped
   * for a new one. Anyone can ask for any id, so these never fill `maxGroups`. Default 64.
   */
  maxPendingGroups?: number
  /** New groups one peer may ask the relay to take up per minute. Default 10. */
  groupsPerMinute?: number
  /** How long envelopes are kept, in ms. Default 30 days. */
  retention?: number
  /** Envelopes and membership events accepted per peer per minute. Default 600. */
  ratePerMinute?: number
  /** Tests with many peers on one host: turn off gossipsub's IP-colocation penalty. */
  sameHostTest?: boolean
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
  rejected: number
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

interface RelayGroup {
  group: Group
  /** Bytes of its stored envelopes and events. */
  storedBytes: number
  removeValidator?: () => void
}

interface RateWindow {
  windowStart: number
  count: number
}

const RATE_WINDOW_MS = 60_000

/**
 * The optional bootstrap/relay node: a circuit-relay v2 server that also keeps, and serves over the sync
 * protocol, the signed membership events and ciphertext envelopes of every group whose members use it.
 * It is never a member: its groups are opened ciphertext-only, so it cannot read even if added.
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
  readonly #store: ChatStore
  readonly #lock: DataDirLock | undefined
  /** By canonical group id. */
  readonly #groups = new Map<string, RelayGroup>()
  /** Groups without a genesis yet, oldest first. */
  readonly #pending = new Set<string>()
  /** Per peer: envelopes and events sent. */
  readonly #rates = new Map<string, RateWindow>()
  /** Per peer: new groups asked for. */
  readonly #groupRates = new Map<string, RateWindow>()
  readonly #abort = new AbortController()
  #libp2p: TransportNode | undefined
  #timers: Array<ReturnType<typeof setInterval>> = []
  #rejected = 0
  #totalBytes = 0
  readonly #life = new Lifecycle(
    () => new NodeStoppedError('this relay was stopped and cannot be started again'),
  )

  /**
   * @param lock - the data directory lock taken by {@link createRelayNode}; released by {@link RelayNode.stop}
   */
  constructor(init: RelayNodeInit, identity: Identity, store: ChatStore, lock?: DataDirLock) {
    super()
    this.#init = init
    this.identity = identity
    this.#store = store
    this.#lock = lock
    for (const stored of store.groups()) {
      // one unusable stored group must not keep the relay from starting
      try {
        this.#loadGroup(stored.id)
      } catch (err) {
        log.error('skipping stored group %s: %s', stored.id.slice(0, 80), (err as Error).message)
      }
    }
  }

  /** The relay's peer id. */
  get peerId(): string {
    return this.identity.memberId
  }

  /** Restores a stored group; drops rows that are no group id, have no genesis, or repeat one. */
  #loadGroup(storedId: string): void {
    const id = canonicalGroupId(storedId)
    if (id === undefined || this.#groups.has(id)) {
      log.error(
        'dropping stored group %s: %s',
        storedId.slice(0, 80),
        id === undefined ? 'not a group id' : 'a duplicate',
      )
      this.#store.deleteGroup(storedId)
      return
    }
    const relayGroup: RelayGroup = {
      group: new Group({ identity: this.identity, groupId: id, ciphertextOnly: true }),
      storedBytes: 0,
    }
    const messageBytes = this.#store.restoreGroup(relayGroup.group, (err) =>
      log.error('stored event of %s does not apply: %s', id, err.message),
    )
    if (!relayGroup.group.ready) {
      log.error('dropping stored group %s: its genesis was never stored', id)
      this.#store.deleteGroup(storedId)
      return
    }
    if (storedId !== id) {
      this.#store.deleteGroup(storedId)
      this.#store.saveGroup({ id })
    }
    relayGroup.storedBytes = messageBytes + this.#store.eventBytes(id)
    this.#groups.set(id, relayGroup)
    this.#totalBytes += relayGroup.storedBytes
  }

  /**
   * Listens, serves relay reservations and sync, subscribes to known groups. Idempotent: every call,
   * concurrent ones included, gets the same start. A start that failed can be tried again.
   *
   * @throws {NodeStoppedError} the relay was stopped
   */
  start(): Promise<void> {
    return this.#life.start(() => this.#start())
  }

  async #start(): Promise<void> {
    const libp2p = await createTransport({
      privateKey: this.identity.privateKey,
      listen: this.#init.listen ?? ['/ip4/0.0.0.0/tcp/4001'],
      bootstrap: this.#init.bootstrap ?? [],
      mdns: false,
      relayServer: true,
      gossip: { sameHostTest: this.#init.sameHostTest === true },
    })
    this.#libp2p = libp2p
    // stopped meanwhile: stop() waits for this start, then stops the node
    if (this.#life.stopping) return
    try {
      await handleSync(libp2p, this, this.#abort.signal)
    } catch (err) {
      this.#libp2p = undefined
      try {
        await libp2p.stop()
      } catch (stopErr) {
        log.error('stopping after a failed start failed too: %e', stopErr)
      }
      throw err
    }
    if (this.#life.stopping) return
    for (const relayGroup of this.#groups.values()) this.#subscribe(relayGroup)
    this.#prune()
    const prune = setInterval(() => this.#prune(), 60_000)
    const stats = setInterval(() => {
      try {
        this.safeDispatchEvent('stats', { detail: this.stats() })
      } catch (err) {
        log.error('could not report stats: %s', (err as Error).message)
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
    this.#abort.abort()
    try {
      await this.#life.startSettled()
      for (const timer of this.#timers) clearInterval(timer)
      for (const relayGroup of this.#groups.values()) relayGroup.removeValidator?.()
      await this.#libp2p?.stop()
    } finally {
      try {
        this.#store.close()
      } finally {
        this.#lock?.release()
      }
    }
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
      groups: this.#groups.size - this.#pending.size,
      events,
      messages: this.#store.messageCount(),
      storedBytes: this.#totalBytes,
      rejected: this.#rejected,
    }
  }

  /** Subscribes to the group's topic; a failure is logged and leaves the group unsubscribed. */
  #subscribe(relayGroup: RelayGroup): void {
    const libp2p = this.#libp2p
    if (libp2p === undefined || relayGroup.removeValidator !== undefined) return
    const topic = topicOf(relayGroup.group.id)
    try {
      relayGroup.removeValidator = setTopicValidator(
        libp2p.services.pubsub,
        topic,
        ({ data, propagationSource }) => this.#onGossip(relayGroup, data, propagationSource.toString()),
      )
      libp2p.services.pubsub.subscribe(topic)
    } catch (err) {
      log.error('could not subscribe to group %s: %s', relayGroup.group.id, (err as Error).message)
    }
  }

  async #onGossip(relayGroup: RelayGroup, data: Uint8Array, from: string): Promise<TopicValidationResult> {
    try {
      const frame = decodeGossip(data)
      if (frame.kind === 'event') return this.#acceptEvent(relayGroup, frame.data, from)
      if (frame.kind === 'message') return await this.#acceptMessage(relayGroup, frame.data, from)
      // join requests are forwarded, not stored
      return 'accept'
    } catch (err) {
      this.#reject(relayGroup.group.id, from, err as Error)
      return 'reject'
    }
  }

  #acceptEvent(relayGroup: RelayGroup, bytes: Uint8Array, from: string): TopicValidationResult {
    const { group } = relayGroup
    if (!this.#admit(relayGroup, bytes.length, from)) return 'ignore'
    let result: ReceiveEventResult
    try {
      result = group.receiveEvent(bytes)
    } catch (err) {
      const error = err as Error
      if (error.name === 'ReplayError') return 'ignore'
      this.#reject(group.id, from, error)
      return error.name === 'PendingLimitError' ? 'ignore' : 'reject'
    }
    for (const event of result.applied) this.#storeEvent(relayGroup, event)
    for (const { error } of result.rejected) this.#reject(group.id, from, error)
    for (const envelope of result.released) {
      this.#acceptMessage(relayGroup, envelope, from).catch((err: unknown) =>
        log.error('released envelope of %s failed: %s', group.id, (err as Error).message),
      )
    }
    return result.pending ? 'ignore' : 'accept'
  }

  /** Stores an applied event; the genesis makes the group one the relay keeps across restarts. */
  #storeEvent(relayGroup: RelayGroup, event: SignedEvent): void {
    const { group } = relayGroup
    try {
      if (event.payload.type === 'genesis') {
        this.#store.saveGroup({ id: group.id })
        if (this.#pending.delete(group.id)) log('now holding group %s', group.id)
      }
      if (this.#store.addEvent(group.id, event.id, event.bytes)) {
        relayGroup.storedBytes += event.bytes.length
        this.#totalBytes += event.bytes.length
      }
    } catch (err) {
      log.error('could not store event %s of %s: %s', event.id, group.id, (err as Error).message)
    }
  }

  async #acceptMessage(
    relayGroup: RelayGroup,
    bytes: Uint8Array,
    from: string,
  ): Promise<TopicValidationResult> {
    const { group } = relayGroup
    if (!this.#admit(relayGroup, bytes.length, from)) return 'ignore'
    let opened: OpenedMessage
    try {
      // checks signature, membership of the sender in the epoch (against the signed log), replays
      opened = await group.open(bytes)
    } catch (err) {
      const error = err as Error
      if (error.name === 'ReplayError' || error.name === 'UnknownEpochError') return 'ignore'
      this.#reject(group.id, from, error)
      return error.name === 'StaleEpochError' || error.name === 'PendingLimitError' ? 'ignore' : 'reject'
    }
    let stored: boolean
    try {
      stored = this.#store.addMessage({
        groupId: group.id,
        id: opened.id,
        sender: opened.sender,
        seq: opened.seq,
        epoch: opened.epoch,
        receivedAt: Date.now(),
        bytes,
        text: null,
        ts: null,
      })
    } catch (err) {
      log.error('could not store envelope %s of %s: %s', opened.id, group.id, (err as Error).message)
      return 'ignore'
    }
    if (stored) {
      relayGroup.storedBytes += bytes.length
      this.#totalBytes += bytes.length
      this.safeDispatchEvent('message:store', { detail: { group: group.id, id: opened.id } })
    }
    return 'accept'
  }

  /** Counts one more in `from`'s window; false when that is over `limit`. */
  #take(rates: Map<string, RateWindow>, from: string, limit: number): boolean {
    const now = Date.now()
    let rate = rates.get(from)
    if (rate === undefined || now - rate.windowStart >= RATE_WINDOW_MS) {
      rate = { windowStart: now, count: 0 }
      rates.set(from, rate)
    }
    rate.count++
    return rate.count <= limit
  }

  /** Applies the per-peer rate limit and the storage caps to `bytes` more from `from`; logs a refusal. */
  #admit(relayGroup: RelayGroup, bytes: number, from: string): boolean {
    try {
      this.#checkRate(from)
      this.#checkQuota(relayGroup, bytes)
      return true
    } catch (err) {
      this.#reject(relayGroup.group.id, from, err as Error)
      return false
    }
  }

  #checkRate(from: string): void {
    const limit = this.#init.ratePerMinute ?? 600
    if (!this.#take(this.#rates, from, limit))
      throw new RateLimitedError(`peer ${from} sent more than ${limit} messages in a minute`)
  }

  /** Envelopes and events both count; a full relay is reported as such before a full group. */
  #checkQuota(relayGroup: RelayGroup, bytes: number): void {
    const total = this.#init.maxStorage ?? 1024 ** 3
    const perGroup = this.#init.maxGroupStorage ?? Math.floor(total / 4)
    if (this.#totalBytes + bytes > total) {
      throw new QuotaExceededError(`the relay is at its total storage cap of ${total} bytes`)
    }
    if (relayGroup.storedBytes + bytes > perGroup) {
      throw new QuotaExceededError(`group ${relayGroup.group.id} is at its storage cap of ${perGroup} bytes`)
    }
  }

  #reject(group: string, from: string, error: Error): void {
    this.#rejected++
    log('rejected input for %s from %s: %s: %s', group, from, error.name, error.message)
    this.safeDispatchEvent('reject', { detail: { group, from, reason: `${error.name}: ${error.message}` } })
  }

  /** Deletes envelopes older than the retention period, recounts storage, forgets old rate windows. */
  #prune(): void {
    const now = Date.now()
    for (const rates of [this.#rates, this.#groupRates]) {
      for (const [peer, rate] of rates) if (now - rate.windowStart >= RATE_WINDOW_MS) rates.delete(peer)
    }
    try {
      const retention = this.#init.retention ?? 30 * 24 * 60 * 60 * 1000
      const removed = this.#store.deleteMessagesBefore(now - retention)
      if (removed > 0) {
        log('pruned %d envelopes past retention', removed)
        this.#totalBytes = 0
        for (const relayGroup of this.#groups.values()) {
          const id = relayGroup.group.id
          relayGroup.storedBytes = this.#store.messageBytes(id) + this.#store.eventBytes(id)
          this.#totalBytes += relayGroup.storedBytes
        }
      }
    } catch (err) {
      log.error('pruning the store failed: %s', (err as Error).message)
    }
  }

  // SyncReplica

  /**
   * @internal A relay takes up any group a peer syncs with it, up to `maxGroups`, at most
   * `groupsPerMinute` new ones per peer. Until its genesis arrives the group is held in memory only,
   * among at most `maxPendingGroups` such groups (the oldest is dropped for a new one).
   */
  group(groupId: string, asServer: boolean, remote = ''): Group | undefined {
    const id = canonicalGroupId(groupId)
    if (id === undefined) return undefined
    const existing = this.#groups.get(id)
    if (existing !== undefined) return existing.group
    if (!asServer || this.#life.stopping) return undefined
    const perMinute = this.#init.groupsPerMinute ?? 10
    if (!this.#take(this.#groupRates, remote, perMinute)) {
      this.#reject(
        id,
        remote,
        new RateLimitedError(`peer ${remote} asked for more than ${perMinute} new groups in a minute`),
      )
      return undefined
    }
    const maxGroups = this.#init.maxGroups ?? 1000
    const maxPending = this.#init.maxPendingGroups ?? 64
    if (this.#pending.size >= maxPending || this.#groups.size >= maxGroups) {
      const oldest = this.#pending.values().next()
      if (oldest.done === true) {
        log('holding %d groups, the most it may; not taking up %s', this.#groups.size, id)
        return undefined
      }
      this.#drop(oldest.value)
    }
    const relayGroup: RelayGroup = {
      group: new Group({ identity: this.identity, groupId: id, ciphertextOnly: true }),
      storedBytes: 0,
    }
    this.#groups.set(id, relayGroup)
    this.#pending.add(id)
    this.#subscribe(relayGroup)
    log('taking up group %s for %s; waiting for its genesis', id, remote)
    return relayGroup.group
  }

  /** Forgets a group whose genesis never came. */
  #drop(id: string): void {
    const relayGroup = this.#groups.get(id)
    this.#pending.delete(id)
    this.#groups.delete(id)
    relayGroup?.removeValidator?.()
    try {
      this.#libp2p?.services.pubsub.unsubscribe(topicOf(id))
    } catch (err) {
      log('unsubscribing from %s failed: %s', id, (err as Error).message)
    }
    log('dropped group %s: no genesis came before newer requests', id)
  }

  /** Peer ids of the relay's bootstrap list: the relays among them are served every group. */
  #configured: ReadonlySet<string> | undefined

  #configuredPeers(): ReadonlySet<string> {
    this.#configured ??= bootstrapPeerIds(this.#init.bootstrap ?? [])
    return this.#configured
  }

  /**
   * @internal What `remote` may be sent of `group`: a member gets its own epochs' envelopes, a relay
   * this one was configured with gets every envelope, a former member the log, anyone else nothing.
   */
  access(group: Group, remote: string): Promise<SyncAccess> {
    return accessOf(group, remote, {
      libp2p: this.#libp2p,
      configured: this.#configuredPeers(),
      signal: this.#abort.signal,
    })
  }

  /** @internal A member of one of the groups held here, or a bootstrap peer. */
  isKnownPeer(remote: string): boolean {
    return isKnownPeer(
      [...this.#groups.values()].map((held) => held.group),
      this.#configuredPeers(),
      remote,
    )
  }

  /** @internal A relay wants every epoch's envelopes. */
  wantedEpochs(): null {
    return null
  }

  /** @internal The store, as the source of envelopes for sync. */
  get messageSource(): ChatStore {
    return this.#store
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
    const relayGroup = this.#groups.get(group.id)
    // a group dropped while its sync ran is not taken up again here
    if (relayGroup === undefined || relayGroup.group !== group) return
    try {
      this.#acceptEvent(relayGroup, bytes, remote)
    } catch (err) {
      log.error('event of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }

  /** @internal Never rejects: a failure is logged. */
  async acceptMessage(group: Group, bytes: Uint8Array, remote: string): Promise<void> {
    const relayGroup = this.#groups.get(group.id)
    if (relayGroup === undefined || relayGroup.group !== group) return
    try {
      await this.#acceptMessage(relayGroup, bytes, remote)
    } catch (err) {
      log.error('envelope of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }
}

/**
 * Locks `init.dataDir` for this process and opens (creating on first use) the relay's identity and store;
 * call {@link RelayNode.start}.
 *
 * @throws {DataDirLockedError} another running p2pchat process uses the data directory
 * @throws {InsecureIdentityKeyError} `identity.key` is readable or writable by other users
 */
export async function createRelayNode(init: RelayNodeInit): Promise<RelayNode> {
  const lock = lockDataDir(init.dataDir)
  let store: ChatStore | undefined
  try {
    const identity = await loadOrCreateIdentity(init.dataDir)
    store = ChatStore.open(init.dataDir)
    return new RelayNode(init, identity, store, lock)
  } catch (err) {
    store?.close()
    lock.release()
    throw err
  }
}
