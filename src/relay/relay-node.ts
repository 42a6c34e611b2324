import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import type { Identity } from '../crypto/index.js'
import { Group, type OpenedMessage } from '../membership/index.js'
import { ChatStore, loadOrCreateIdentity } from '../node/store.js'
import {
  handleSync,
  type MessageSource,
  type PeerHint,
  type SyncReplica,
  subscriberHints,
} from '../node/sync.js'
import {
  createTransport,
  setTopicValidator,
  type TopicValidationResult,
  type TransportNode,
} from '../node/transport.js'
import { decodeGossip, topicOf } from '../node/wire.js'
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
  /** Total bytes of stored envelopes, over all groups. Default 1 GiB. */
  maxStorage?: number
  /** Bytes of stored envelopes per group. Default a quarter of `maxStorage`. */
  maxGroupStorage?: number
  /** Groups the relay holds at most. Default 1000. */
  maxGroups?: number
  /** How long envelopes are kept, in ms. Default 30 days. */
  retention?: number
  /** Envelopes accepted per peer per minute. Default 600. */
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
  storedBytes: number
  removeValidator?: () => void
}

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
  readonly #groups = new Map<string, RelayGroup>()
  readonly #rates = new Map<string, { windowStart: number; count: number }>()
  readonly #abort = new AbortController()
  #libp2p: TransportNode | undefined
  #timers: Array<ReturnType<typeof setInterval>> = []
  #rejected = 0
  #totalBytes = 0
  #stopping = false

  constructor(init: RelayNodeInit, identity: Identity, store: ChatStore) {
    super()
    this.#init = init
    this.identity = identity
    this.#store = store
    for (const stored of store.groups()) {
      const relayGroup = this.#openGroup(stored.id)
      relayGroup.storedBytes = store.restoreGroup(relayGroup.group, (err) =>
        log.error('stored event of %s does not apply: %s', stored.id, err.message),
      )
      this.#totalBytes += relayGroup.storedBytes
    }
  }

  /** The relay's peer id. */
  get peerId(): string {
    return this.identity.memberId
  }

  #openGroup(groupId: string): RelayGroup {
    const relayGroup: RelayGroup = {
      group: new Group({ identity: this.identity, groupId, ciphertextOnly: true }),
      storedBytes: 0,
    }
    this.#groups.set(groupId, relayGroup)
    return relayGroup
  }

  /** Listens, serves relay reservations and sync, subscribes to known groups. Idempotent. */
  async start(): Promise<void> {
    if (this.#libp2p !== undefined) return
    const libp2p = await createTransport({
      privateKey: this.identity.privateKey,
      listen: this.#init.listen ?? ['/ip4/0.0.0.0/tcp/4001'],
      bootstrap: this.#init.bootstrap ?? [],
      mdns: false,
      relayServer: true,
      gossip: { sameHostTest: this.#init.sameHostTest === true },
    })
    this.#libp2p = libp2p
    await handleSync(libp2p, this, this.#abort.signal)
    for (const relayGroup of this.#groups.values()) this.#subscribe(relayGroup)
    this.#prune()
    const prune = setInterval(() => this.#prune(), 60_000)
    const stats = setInterval(
      () => this.safeDispatchEvent('stats', { detail: this.stats() }),
      this.#init.statsIntervalMs ?? 10_000,
    )
    prune.unref()
    stats.unref()
    this.#timers = [prune, stats]
  }

  /** Stops networking, then flushes and closes the store. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopping) return
    this.#stopping = true
    this.#abort.abort()
    for (const timer of this.#timers) clearInterval(timer)
    for (const relayGroup of this.#groups.values()) relayGroup.removeValidator?.()
    await this.#libp2p?.stop()
    this.#store.close()
  }

  /** Full multiaddrs, `/p2p/<id>` included, to give to `--bootstrap`. */
  addrs(): string[] {
    return (this.#libp2p?.getMultiaddrs() ?? []).map(String)
  }

  /** The libp2p node, once started. */
  get libp2p(): TransportNode | undefined {
    return this.#libp2p
  }

  /** Counters without content. */
  stats(): RelayStats {
    let events = 0
    for (const { group } of this.#groups.values()) events += group.events().length
    return {
      peers: this.#libp2p?.getPeers().length ?? 0,
      groups: this.#groups.size,
      events,
      messages: this.#store.messageCount(),
      storedBytes: this.#totalBytes,
      rejected: this.#rejected,
    }
  }

  #subscribe(relayGroup: RelayGroup): void {
    const libp2p = this.#libp2p
    if (libp2p === undefined || relayGroup.removeValidator !== undefined) return
    const topic = topicOf(relayGroup.group.id)
    relayGroup.removeValidator = setTopicValidator(
      libp2p.services.pubsub,
      topic,
      ({ data, propagationSource }) => this.#onGossip(relayGroup, data, propagationSource.toString()),
    )
    libp2p.services.pubsub.subscribe(topic)
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
    try {
      const result = group.receiveEvent(bytes)
      for (const event of result.applied) this.#store.addEvent(group.id, event.id, event.bytes)
      for (const { error } of result.rejected) this.#reject(group.id, from, error)
      for (const envelope of result.released) void this.#acceptMessage(relayGroup, envelope, from)
      return result.pending ? 'ignore' : 'accept'
    } catch (err) {
      const error = err as Error
      if (error.name === 'ReplayError') return 'ignore'
      this.#reject(group.id, from, error)
      return error.name === 'PendingLimitError' ? 'ignore' : 'reject'
    }
  }

  async #acceptMessage(
    relayGroup: RelayGroup,
    bytes: Uint8Array,
    from: string,
  ): Promise<TopicValidationResult> {
    const { group } = relayGroup
    try {
      this.#checkRate(from)
      this.#checkQuota(relayGroup, bytes.length)
    } catch (err) {
      this.#reject(group.id, from, err as Error)
      return 'ignore'
    }
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
    const stored = this.#store.addMessage({
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
    if (stored) {
      relayGroup.storedBytes += bytes.length
      this.#totalBytes += bytes.length
      this.safeDispatchEvent('message:store', { detail: { group: group.id, id: opened.id } })
    }
    return 'accept'
  }

  #checkRate(from: string): void {
    const limit = this.#init.ratePerMinute ?? 600
    const now = Date.now()
    let rate = this.#rates.get(from)
    if (rate === undefined || now - rate.windowStart >= 60_000) {
      rate = { windowStart: now, count: 0 }
      this.#rates.set(from, rate)
    }
    rate.count++
    if (rate.count > limit)
      throw new RateLimitedError(`peer ${from} sent more than ${limit} messages in a minute`)
  }

  #checkQuota(relayGroup: RelayGroup, bytes: number): void {
    const total = this.#init.maxStorage ?? 1024 ** 3
    const perGroup = this.#init.maxGroupStorage ?? Math.floor(total / 4)
    if (relayGroup.storedBytes + bytes > perGroup) {
      throw new QuotaExceededError(`group ${relayGroup.group.id} is at its storage cap of ${perGroup} bytes`)
    }
    if (this.#totalBytes + bytes > total) {
      throw new QuotaExceededError(`the relay is at its total storage cap of ${total} bytes`)
    }
  }

  #reject(group: string, from: string, error: Error): void {
    this.#rejected++
    log('rejected input for %s from %s: %s: %s', group, from, error.name, error.message)
    this.safeDispatchEvent('reject', { detail: { group, from, reason: `${error.name}: ${error.message}` } })
  }

  /** Deletes envelopes older than the retention period and recounts storage. */
  #prune(): void {
    const retention = this.#init.retention ?? 30 * 24 * 60 * 60 * 1000
    const removed = this.#store.deleteMessagesBefore(Date.now() - retention)
    if (removed > 0) {
      log('pruned %d envelopes past retention', removed)
      this.#totalBytes = 0
      for (const relayGroup of this.#groups.values()) {
        relayGroup.storedBytes = this.#store.messageBytes(relayGroup.group.id)
        this.#totalBytes += relayGroup.storedBytes
      }
    }
  }

  // SyncReplica

  /** @internal A relay holds any group a peer syncs with it, up to `maxGroups`. */
  group(groupId: string, asServer: boolean): Group | undefined {
    const existing = this.#groups.get(groupId)
    if (existing !== undefined) return existing.group
    if (!asServer || this.#groups.size >= (this.#init.maxGroups ?? 1000)) return undefined
    let relayGroup: RelayGroup
    try {
      relayGroup = this.#openGroup(groupId)
    } catch {
      return undefined
    }
    this.#store.saveGroup({ id: groupId })
    this.#subscribe(relayGroup)
    log('now holding group %s', groupId)
    return relayGroup.group
  }

  /** @internal A relay wants every epoch's envelopes. */
  wantedEpochs(): null {
    return null
  }

  /** @internal The store, as the source of envelopes for sync. */
  get messageSource(): MessageSource {
    return this.#store
  }

  /**
   * @internal Peer exchange: the group's other subscribers, each also through this relay, so peers that
   * met only here can connect to each other (and DCUtR can then upgrade to a direct connection).
   */
  async peersOf(group: Group, remote: string): Promise<PeerHint[]> {
    return this.#libp2p === undefined
      ? []
      : subscriberHints(this.#libp2p, topicOf(group.id), remote, this.addrs())
  }

  /** @internal */
  acceptEvent(group: Group, bytes: Uint8Array, remote: string): void {
    const relayGroup = this.#groups.get(group.id)
    if (relayGroup !== undefined) this.#acceptEvent(relayGroup, bytes, remote)
  }

  /** @internal */
  async acceptMessage(group: Group, bytes: Uint8Array, remote: string): Promise<void> {
    const relayGroup = this.#groups.get(group.id)
    if (relayGroup !== undefined) await this.#acceptMessage(relayGroup, bytes, remote)
  }
}

/** Opens (creating on first use) the relay's identity and store; call {@link RelayNode.start}. */
export async function createRelayNode(init: RelayNodeInit): Promise<RelayNode> {
  const identity = await loadOrCreateIdentity(init.dataDir)
  const store = ChatStore.open(init.dataDir)
  return new RelayNode(init, identity, store)
}
