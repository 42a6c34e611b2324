import { logger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import type { Identity } from '../crypto/index.js'
import {
  Group,
  type OpenedMessage,
  PendingBudget,
  type ReceiveEventResult,
  type SignedEvent,
  UnknownAuthorError,
  WrongGroupError,
} from '../membership/index.js'
import { NodeStoppedError } from '../node/errors.js'
import { Lifecycle } from '../node/lifecycle.js'
import { type DataDirLock, lockDataDir } from '../node/lock.js'
import { ChatStore, loadOrCreateIdentity, type StoredGroup } from '../node/store.js'
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
import { canonicalGroupId, decodeGossip, decodeJoinRequest, topicOf } from '../node/wire.js'
import {
  type AdmittedGroup,
  admissionLimits,
  DEFAULT_MAX_PENDING_GROUPS,
  GroupAdmission,
  PENDING_EVENT_BYTES_PER_GROUP,
  PENDING_EVENTS_PER_GROUP,
  PENDING_MESSAGES_PER_GROUP,
  type Standing,
} from './admission.js'
import { RateLimitedError } from './errors.js'

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
  /** Tests with many peers on one host: turn off gossipsub's IP-colocation penalty. */
  sameHostTest?: boolean
  /** Interval of `stats` events, in ms. Default 10000. */
  statsIntervalMs?: number
  /** Clock, in ms; injected so tests can let groups go idle. Default `Date.now`. */
  now?: () => number
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

interface RelayGroup {
  group: Group
  removeValidator?: () => void
  /** Join requesters by when their request was last forwarded, least recent first. */
  joinRequests: Map<string, number>
  /** New join requesters this minute (one window, keyed ''). */
  joinRate: Map<string, RateWindow>
}

interface RateWindow {
  windowStart: number
  count: number
}

const RATE_WINDOW_MS = 60_000
/** Repeats of one requester's join request closer than this are not forwarded (requesters announce every 10 s). */
const JOIN_REPEAT_MIN_MS = 2000
/** New join requesters forwarded per group per minute; members show no more than that either. */
const JOIN_REQUESTERS_PER_MINUTE = 30
/** Join requesters remembered per group, for the repeat check. */
const MAX_JOIN_REQUESTERS = 256
/** A group whose genesis has not come this long after it was taken up is dropped. */
const PENDING_GENESIS_MS = 10 * 60_000

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
  /** Groups without a genesis yet, oldest first, with when each was taken up. */
  readonly #pending = new Map<string, number>()
  /** Groups with a genesis: what the relay keeps and evicts. */
  readonly #admission: GroupAdmission
  /** Per peer: envelopes and events sent. */
  readonly #rates = new Map<string, RateWindow>()
  /** Per peer: new groups asked for. */
  readonly #groupRates = new Map<string, RateWindow>()
  readonly #abort = new AbortController()
  /** What waits for parents or epochs, over all groups, per sending peer and author. */
  readonly #pendingBudget = new PendingBudget()
  readonly #now: () => number
  #libp2p: TransportNode | undefined
  #timers: Array<ReturnType<typeof setInterval>> = []
  #rejected = 0
  #evicted = 0
  readonly #life = new Lifecycle(
    () => new NodeStoppedError('this relay was stopped and cannot be started again'),
  )

  /**
   * @param lock - the data directory lock taken by {@link createRelayNode}; released by {@link RelayNode.stop}
   * @throws {InvalidRelayInitError} a limit is unusable
   */
  constructor(init: RelayNodeInit, identity: Identity, store: ChatStore, lock?: DataDirLock) {
    super()
    this.#init = init
    this.identity = identity
    this.#store = store
    this.#lock = lock
    this.#now = init.now ?? Date.now
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
    this.#loadGroups()
  }

  /** The relay's peer id. */
  get peerId(): string {
    return this.identity.memberId
  }

  /**
   * Restores the stored groups and admits them again under today's limits, least deserving first, so that
   * when they no longer all fit (the limits were lowered, or junk was stored before this policy) the ones
   * evicted are those the policy would have evicted.
   */
  #loadGroups(): void {
    const restored: Array<{ relayGroup: RelayGroup; admitted: AdmittedGroup }> = []
    for (const [id, spellings] of storedSpellings(this.#store)) {
      // one unusable stored group must not keep the relay from starting
      try {
        const loaded = this.#loadGroup(id, spellings)
        if (loaded !== undefined) restored.push(loaded)
      } catch (err) {
        log.error('skipping stored group %s: %s', id, (err as Error).message)
      }
    }
    const { returnAfterMs } = this.#admission.limits
    const rank = ({ admitted }: { admitted: AdmittedGroup }): number => {
      if ([...(admitted.active ?? [])].length < 2) return 0
      return (admitted.lastActive ?? admitted.since) - admitted.since >= returnAfterMs ? 2 : 1
    }
    restored.sort((a, b) => rank(a) - rank(b) || (a.admitted.lastActive ?? 0) - (b.admitted.lastActive ?? 0))
    for (const { relayGroup, admitted } of restored) {
      const id = relayGroup.group.id
      this.#groups.set(id, relayGroup)
      try {
        this.#evictAll(this.#admission.admit(id, admitted), `making room for ${id} after a restart`)
      } catch (err) {
        this.#evict(id, (err as Error).message)
      }
    }
  }

  /**
   * Restores the group `id` from its stored rows `spellings` (the canonical id and any other spelling of
   * it), leaving exactly one row, the canonical one; drops them all if its genesis was never stored.
   * Returns the group and what the admission policy needs to know of it.
   */
  #loadGroup(
    id: string,
    spellings: readonly StoredGroup[],
  ): { relayGroup: RelayGroup; admitted: AdmittedGroup } | undefined {
    const relayGroup = this.#newRelayGroup(id)
    const { group } = relayGroup
    const messageBytes = this.#store.restoreGroup(group, (err) =>
      log.error('stored event of %s does not apply: %s', id, err.message),
    )
    const founder = group.founder
    if (!group.ready || founder === undefined) {
      log.error('dropping stored group %s: its genesis was never stored', id)
      for (const stored of spellings) this.#store.deleteGroup(stored.id)
      return undefined
    }
    for (const stored of spellings) {
      if (stored.id === id) continue
      log.error('dropping stored group %s: another spelling of %s', stored.id.slice(0, 80), id)
      this.#store.deleteGroup(stored.id)
    }
    const since = Math.min(...spellings.map((stored) => stored.joinedAt))
    if (!spellings.some((stored) => stored.id === id)) this.#store.saveGroup({ id }, since)
    // Activity is not stored as such: it is read back from what is. Events carry no arrival time, so
    // after a restart a group's last activity is its newest stored envelope (or when its genesis came).
    const senders = this.#store.senderActivity(id)
    const eventBytes = this.#store.eventBytes(id)
    return {
      relayGroup,
      admitted: {
        founder,
        since,
        lastActive: Math.max(since, ...senders.values()),
        active: new Set([...group.events().map((e) => e.author), ...senders.keys()]),
        storedBytes: messageBytes + eventBytes,
        eventBytes,
      },
    }
  }

  /** A group as the relay holds it: ciphertext only, with small pending buffers (see admission.ts). */
  #newRelayGroup(id: string): RelayGroup {
    return {
      group: new Group({
        identity: this.identity,
        groupId: id,
        ciphertextOnly: true,
        now: this.#now,
        maxPendingEvents: PENDING_EVENTS_PER_GROUP,
        maxPendingBytes: PENDING_EVENT_BYTES_PER_GROUP,
        maxPendingMessages: PENDING_MESSAGES_PER_GROUP,
        pendingBudget: this.#pendingBudget,
      }),
      joinRequests: new Map(),
      joinRate: new Map(),
    }
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
      groups: this.#admission.size,
      events,
      messages: this.#store.messageCount(),
      storedBytes: this.#admission.storedBytes,
      pendingBytes: this.#pendingBudget.usage().bytes,
      rejected: this.#rejected,
      evicted: this.#evicted,
    }
  }

  /** Where a held group stands in the admission policy (see admission.ts); undefined if not held. */
  standing(groupId: string): Standing | undefined {
    const id = canonicalGroupId(groupId)
    return id === undefined ? undefined : this.#admission.standing(id)
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
      return this.#acceptJoin(relayGroup, frame.data)
    } catch (err) {
      this.#reject(relayGroup.group.id, from, err as Error)
      return 'reject'
    }
  }

  /**
   * A join request is forwarded, never stored, and only when it is what it claims: signed by the peer it
   * names, for this group (decodeGossip already bounded its size). Anything else is rejected, so gossipsub
   * counts it against the sender. A member's request, a requester repeating itself within
   * {@link JOIN_REPEAT_MIN_MS}, and new requesters beyond {@link JOIN_REQUESTERS_PER_MINUTE} a minute are
   * ignored: members would drop them anyway.
   */
  #acceptJoin(relayGroup: RelayGroup, bytes: Uint8Array): TopicValidationResult {
    const { group } = relayGroup
    const request = decodeJoinRequest(bytes)
    if (request.group !== group.id) throw new WrongGroupError(`join request is for group ${request.group}`)
    if (group.isMember(request.peerId)) return 'ignore'
    const now = this.#now()
    const last = relayGroup.joinRequests.get(request.peerId)
    if (last !== undefined && now - last < JOIN_REPEAT_MIN_MS) return 'ignore'
    if (last === undefined) {
      if (!this.#take(relayGroup.joinRate, '', JOIN_REQUESTERS_PER_MINUTE)) return 'ignore'
      if (relayGroup.joinRequests.size >= MAX_JOIN_REQUESTERS) {
        const oldest = relayGroup.joinRequests.keys().next()
        if (oldest.done !== true) relayGroup.joinRequests.delete(oldest.value)
      }
    }
    relayGroup.joinRequests.delete(request.peerId)
    relayGroup.joinRequests.set(request.peerId, now)
    return 'accept'
  }

  #acceptEvent(relayGroup: RelayGroup, bytes: Uint8Array, from: string): TopicValidationResult {
    const { group } = relayGroup
    if (!this.#admit(relayGroup, bytes.length, from)) return 'ignore'
    let result: ReceiveEventResult
    try {
      result = group.receiveEvent(bytes, { from })
    } catch (err) {
      const error = err as Error
      if (error.name === 'ReplayError') return 'ignore'
      this.#reject(group.id, from, error)
      return error.name === 'PendingLimitError' ? 'ignore' : 'reject'
    }
    for (const event of result.applied) this.#storeEvent(relayGroup, event, from)
    for (const { error } of result.rejected) this.#reject(group.id, from, error)
    for (const envelope of result.released) {
      this.#acceptMessage(relayGroup, envelope, from).catch((err: unknown) =>
        log.error('released envelope of %s failed: %s', group.id, (err as Error).message),
      )
    }
    return result.pending ? 'ignore' : 'accept'
  }

  /**
   * Stores an applied event, counting it as activity of its author. The genesis admits the group: from
   * then on the relay keeps it across restarts, until the admission policy evicts it.
   */
  #storeEvent(relayGroup: RelayGroup, event: SignedEvent, from: string): void {
    const { group } = relayGroup
    // evicted, or its genesis did not fit, while the events of one receive were being stored
    if (this.#groups.get(group.id) !== relayGroup) return
    try {
      if (event.payload.type === 'genesis' && !this.#hold(relayGroup, event, from)) return
      if (!this.#admission.has(group.id)) return
      // verified activity of its author, whether or not there is room to store it
      this.#touch(group.id, event.author)
      if (!this.#makeRoom(group.id, event.bytes.length, true, from)) return
      if (this.#store.addEvent(group.id, event.id, event.bytes)) {
        this.#admission.add(group.id, event.bytes.length, true)
      }
    } catch (err) {
      log.error('could not store event %s of %s: %s', event.id, group.id, (err as Error).message)
    }
  }

  /** The genesis of a group taken up on request came: admit the group, evicting what the policy says. */
  #hold(relayGroup: RelayGroup, genesis: SignedEvent, from: string): boolean {
    const id = relayGroup.group.id
    const now = this.#now()
    let evict: string[]
    try {
      evict = this.#admission.admit(id, { founder: genesis.author, since: now, active: [genesis.author] })
    } catch (err) {
      this.#reject(id, from, err as Error)
      this.#forget(id, 'its genesis did not fit')
      return false
    }
    this.#pending.delete(id)
    this.#evictAll(evict, `making room for new group ${id}`)
    this.#store.saveGroup({ id }, now)
    log('now holding group %s', id)
    return true
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
      opened = await group.open(bytes, { from })
    } catch (err) {
      const error = err as Error
      if (error.name === 'ReplayError' || error.name === 'UnknownEpochError') return 'ignore'
      this.#reject(group.id, from, error)
      // not judged: its sender's add is not known here (yet), so it is not kept to wait either
      if (error.name === UnknownAuthorError.name) return 'ignore'
      return error.name === 'StaleEpochError' || error.name === 'PendingLimitError' ? 'ignore' : 'reject'
    }
    // evicted while the signature was checked: it is valid, but no longer ours to store
    if (this.#groups.get(group.id) !== relayGroup) return 'accept'
    // verified activity of its sender, before room is made: a second member's first message takes the
    // group off probation, so it may make room among established groups
    this.#touch(group.id, opened.sender)
    if (!this.#makeRoom(group.id, bytes.length, false, from)) return 'ignore'
    let stored: boolean
    try {
      stored = this.#store.addMessage({
        groupId: group.id,
        id: opened.id,
        sender: opened.sender,
        seq: opened.seq,
        epoch: opened.epoch,
        receivedAt: this.#now(),
        bytes,
        text: null,
        ts: null,
      })
    } catch (err) {
      log.error('could not store envelope %s of %s: %s', opened.id, group.id, (err as Error).message)
      return 'ignore'
    }
    if (stored) {
      this.#admission.add(group.id, bytes.length, false)
      this.safeDispatchEvent('message:store', { detail: { group: group.id, id: opened.id } })
    }
    return 'accept'
  }

  /** Makes room for `bytes` more of group `id`, evicting what the policy says; false (logged) if it cannot. */
  #makeRoom(id: string, bytes: number, event: boolean, from: string): boolean {
    try {
      this.#evictAll(this.#admission.makeRoom(id, bytes, event), `making room in ${id}`)
      return true
    } catch (err) {
      this.#reject(id, from, err as Error)
      return false
    }
  }

  /** Member activity in group `id`; a second active member may make room among established groups. */
  #touch(id: string, member: string): void {
    this.#evictAll(this.#admission.touch(id, member, this.#now()), `${id} became established`)
  }

  /** Counts one more in `from`'s window; false when that is over `limit`. */
  #take(rates: Map<string, RateWindow>, from: string, limit: number): boolean {
    const now = this.#now()
    let rate = rates.get(from)
    if (rate === undefined || now - rate.windowStart >= RATE_WINDOW_MS) {
      rate = { windowStart: now, count: 0 }
      rates.set(from, rate)
    }
    rate.count++
    return rate.count <= limit
  }

  /**
   * Applies the per-peer rate limit and the group's storage cap to `bytes` more, before anything is
   * verified; logs a refusal. Room is made only for what verifies, as the sender's standing decides.
   */
  #admit(relayGroup: RelayGroup, bytes: number, from: string): boolean {
    const id = relayGroup.group.id
    try {
      const limit = this.#init.ratePerMinute ?? 600
      if (!this.#take(this.#rates, from, limit))
        throw new RateLimitedError(`peer ${from} sent more than ${limit} messages in a minute`)
      this.#admission.checkGroupCap(id, bytes)
      return true
    } catch (err) {
      this.#reject(id, from, err as Error)
      return false
    }
  }

  #reject(group: string, from: string, error: Error): void {
    this.#rejected++
    log('rejected input for %s from %s: %s: %s', group, from, error.name, error.message)
    this.safeDispatchEvent('reject', { detail: { group, from, reason: `${error.name}: ${error.message}` } })
  }

  /**
   * Deletes envelopes older than the retention period and recounts storage, drops idle groups (with all
   * they stored) and groups whose genesis never came, forgets old rate windows.
   */
  #prune(): void {
    const now = this.#now()
    this.#pendingBudget.expire()
    for (const rates of [this.#rates, this.#groupRates]) {
      for (const [peer, rate] of rates) if (now - rate.windowStart >= RATE_WINDOW_MS) rates.delete(peer)
    }
    for (const [id, since] of this.#pending) {
      if (now - since >= PENDING_GENESIS_MS) this.#forget(id, 'no genesis came within 10 minutes')
    }
    try {
      for (const id of this.#admission.expired(now)) this.#evict(id, 'no member activity for too long')
      const retention = this.#init.retention ?? 30 * 24 * 60 * 60 * 1000
      const removed = this.#store.deleteMessagesBefore(now - retention)
      if (removed > 0) {
        log('pruned %d envelopes past retention', removed)
        for (const id of this.#groups.keys()) {
          if (this.#admission.has(id)) {
            this.#admission.recount(id, this.#store.messageBytes(id) + this.#store.eventBytes(id))
          }
        }
      }
    } catch (err) {
      log.error('pruning the store failed: %s', (err as Error).message)
    }
  }

  /** Evicts each group in `ids`, in order, for `why`. */
  #evictAll(ids: readonly string[], why: string): void {
    for (const id of ids) this.#evict(id, why)
  }

  /** Drops a held group with everything stored for it. */
  #evict(id: string, why: string): void {
    this.#admission.remove(id)
    this.#forget(id, why)
    try {
      this.#store.purgeGroup(id)
    } catch (err) {
      log.error('could not delete what was stored for group %s: %s', id, (err as Error).message)
    }
    this.#evicted++
  }

  // SyncReplica

  /**
   * @internal A relay takes up any group a peer syncs with it, at most `groupsPerMinute` new ones per
   * peer. Until its genesis arrives the group is held in memory only, among at most `maxPendingGroups`
   * such groups (the oldest is dropped for a new one); then the admission policy decides. A sync by a
   * member counts as that member's activity in the group.
   */
  group(groupId: string, asServer: boolean, remote = ''): Group | undefined {
    const id = canonicalGroupId(groupId)
    if (id === undefined) return undefined
    const existing = this.#groups.get(id)
    if (existing !== undefined) {
      if (asServer && remote !== '' && existing.group.isMember(remote)) this.#touch(id, remote)
      return existing.group
    }
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
    if (this.#pending.size >= (this.#init.maxPendingGroups ?? DEFAULT_MAX_PENDING_GROUPS)) {
      const oldest = this.#pending.keys().next()
      if (oldest.done !== true) this.#forget(oldest.value, 'no genesis came before newer requests')
    }
    const relayGroup = this.#newRelayGroup(id)
    this.#groups.set(id, relayGroup)
    this.#pending.set(id, this.#now())
    this.#subscribe(relayGroup)
    log('taking up group %s for %s; waiting for its genesis', id, remote)
    return relayGroup.group
  }

  /** Stops serving a group (held or waiting for its genesis): its topic, validator and memory. */
  #forget(id: string, why: string): void {
    const relayGroup = this.#groups.get(id)
    this.#pending.delete(id)
    this.#groups.delete(id)
    relayGroup?.removeValidator?.()
    relayGroup?.group.clearPending()
    try {
      this.#libp2p?.services.pubsub.unsubscribe(topicOf(id))
    } catch (err) {
      log('unsubscribing from %s failed: %s', id, (err as Error).message)
    }
    log('dropped group %s: %s', id, why)
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
 * The stored group rows by canonical group id, each with every spelling of that id that was stored. Rows
 * that are no group id are deleted here. Grouping first makes the outcome independent of the order the
 * rows come in: sorted by `joined_at`, another spelling may come before the canonical row.
 */
function storedSpellings(store: ChatStore): Map<string, StoredGroup[]> {
  const byId = new Map<string, StoredGroup[]>()
  for (const stored of store.groups()) {
    const id = canonicalGroupId(stored.id)
    if (id === undefined) {
      log.error('dropping stored group %s: not a group id', stored.id.slice(0, 80))
      store.deleteGroup(stored.id)
      continue
    }
    const spellings = byId.get(id)
    if (spellings === undefined) byId.set(id, [stored])
    else spellings.push(stored)
  }
  return byId
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
