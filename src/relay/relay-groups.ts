import type { ComponentLogger, Logger } from '@libp2p/interface'
import { RateLimiter } from '@libp2p/utils'
import type { Identity } from '../crypto/index.js'
import {
  claimedSender,
  Group,
  type OpenedMessage,
  type PendingBudget,
  type ReceiveEventResult,
  type SignedEvent,
} from '../membership/index.js'
import type { Clock } from '../node/components.js'
import { GroupTopic, type GroupTopicHooks, type Pubsub, type TopicInput } from '../node/group-topic.js'
import { JoinInbox } from '../node/join-requests.js'
import type { ChatStore, StoredGroup } from '../node/store.js'
import type { TopicValidationResult } from '../node/transport.js'
import { canonicalGroupId } from '../node/wire.js'
import {
  type AdmittedGroup,
  type GroupAdmission,
  PENDING_EVENT_BYTES_PER_GROUP,
  PENDING_EVENTS_PER_GROUP,
  PENDING_MESSAGES_PER_GROUP,
} from './admission.js'
import { RateLimitedError } from './errors.js'

/** A group whose genesis has not come this long after it was taken up is dropped. */
const PENDING_GENESIS_MS = 10 * 60_000

/** A group as the relay holds it: its topic, and the join requests it forwards. */
export interface RelayGroup {
  group: Group
  topic: GroupTopic
  joins: JoinInbox
}

/** What {@link RelayGroups} is built from: the relay's parts. */
export interface RelayGroupsComponents {
  identity: Identity
  store: ChatStore
  clock: Clock
  logger: ComponentLogger
  /** What waits for parents or epochs, over all groups. */
  pendingBudget: PendingBudget
  /** Which groups the relay keeps (see admission.ts). */
  admission: GroupAdmission
  /** Input refused, with the reason: the relay counts and reports it. */
  rejected(group: string, from: string, error: Error): void
  /** An envelope was stored. */
  stored(group: string, id: string): void
}

/** Options of {@link RelayGroups}; see `RelayNodeInit` for each. */
export interface RelayGroupsInit {
  ratePerMinute: number
  groupsPerMinute: number
  maxPendingGroups: number
  retention: number
}

/**
 * The groups a relay holds, and what it stores of them: each group's topic is judged by the same
 * {@link GroupTopic} a chat node uses, and only what verifies is stored, as the admission policy makes
 * room. Groups without a genesis yet are held in memory only, for at most 10 minutes.
 */
export class RelayGroups {
  readonly #c: RelayGroupsComponents
  readonly #init: RelayGroupsInit
  readonly #log: Logger
  /** By canonical group id. */
  readonly #groups = new Map<string, RelayGroup>()
  /** Groups without a genesis yet, oldest first, with when each was taken up. */
  readonly #pending = new Map<string, number>()
  /** Per peer: envelopes and events sent. */
  readonly #rates: RateLimiter
  /** Per peer: new groups asked for. */
  readonly #groupRates: RateLimiter
  #pubsub: Pubsub | undefined
  /** Groups dropped to make room or for being idle. */
  evicted = 0

  constructor(components: RelayGroupsComponents, init: RelayGroupsInit) {
    this.#c = components
    this.#init = init
    this.#log = components.logger.forComponent('p2pchat:relay')
    this.#rates = new RateLimiter({ points: init.ratePerMinute, duration: 60 })
    this.#groupRates = new RateLimiter({ points: init.groupsPerMinute, duration: 60 })
  }

  get(id: string): RelayGroup | undefined {
    return this.#groups.get(id)
  }

  values(): IterableIterator<RelayGroup> {
    return this.#groups.values()
  }

  /** Subscribes to every group's topic, and to those taken up from now on. */
  subscribe(pubsub: Pubsub): void {
    this.#pubsub = pubsub
    for (const { topic } of this.#groups.values()) topic.subscribe(pubsub)
  }

  /** Removes every topic validator. */
  stop(): void {
    this.#pubsub = undefined
    for (const { topic } of this.#groups.values()) topic.stop()
  }

  /**
   * Takes up the group `id` for `remote`, at most `groupsPerMinute` new ones per peer: held in memory
   * only until its genesis arrives, among at most `maxPendingGroups` (the oldest is dropped for a new one).
   */
  takeUp(id: string, remote: string): Group | undefined {
    if (!this.#take(this.#groupRates, remote)) {
      const error = `peer ${remote} asked for more than ${this.#init.groupsPerMinute} new groups in a minute`
      this.#c.rejected(id, remote, new RateLimitedError(error))
      return undefined
    }
    if (this.#pending.size >= this.#init.maxPendingGroups) {
      const oldest = this.#pending.keys().next()
      if (oldest.done !== true) this.#forget(oldest.value, 'no genesis came before newer requests')
    }
    const relayGroup = this.#newRelayGroup(id)
    this.#groups.set(id, relayGroup)
    this.#pending.set(id, this.#c.clock.now())
    if (this.#pubsub !== undefined) relayGroup.topic.subscribe(this.#pubsub)
    this.#log('taking up group %s for %s; waiting for its genesis', id, remote)
    return relayGroup.group
  }

  /** Member activity in group `id`; a second active member may make room among established groups. */
  touch(id: string, member: string): void {
    this.#evictAll(this.#c.admission.touch(id, member, this.#c.clock.now()), `${id} became established`)
  }

  /**
   * Restores the stored groups and admits them again under today's limits, least deserving first, so that
   * when they no longer all fit (the limits were lowered, or junk was stored before this policy) the ones
   * evicted are those the policy would have evicted.
   */
  restore(): void {
    const restored: Array<{ relayGroup: RelayGroup; admitted: AdmittedGroup }> = []
    for (const [id, spellings] of storedSpellings(this.#c.store, this.#log)) {
      // one unusable stored group must not keep the relay from starting
      try {
        const loaded = this.#restoreGroup(id, spellings)
        if (loaded !== undefined) restored.push(loaded)
      } catch (err) {
        this.#log.error('skipping stored group %s: %s', id, (err as Error).message)
      }
    }
    const { admission } = this.#c
    const { returnAfterMs } = admission.limits
    const rank = ({ admitted }: { admitted: AdmittedGroup }): number => {
      if ([...(admitted.active ?? [])].length < 2) return 0
      return (admitted.lastActive ?? admitted.since) - admitted.since >= returnAfterMs ? 2 : 1
    }
    restored.sort((a, b) => rank(a) - rank(b) || (a.admitted.lastActive ?? 0) - (b.admitted.lastActive ?? 0))
    for (const { relayGroup, admitted } of restored) {
      const id = relayGroup.group.id
      this.#groups.set(id, relayGroup)
      try {
        this.#evictAll(admission.admit(id, admitted), `making room for ${id} after a restart`)
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
  #restoreGroup(
    id: string,
    spellings: readonly StoredGroup[],
  ): { relayGroup: RelayGroup; admitted: AdmittedGroup } | undefined {
    const { store } = this.#c
    const relayGroup = this.#newRelayGroup(id)
    const { group } = relayGroup
    store.restoreGroup(group, (err) =>
      this.#log.error('stored event of %s does not apply: %s', id, err.message),
    )
    const founder = group.founder
    if (!group.ready || founder === undefined) {
      this.#log.error('dropping stored group %s: its genesis was never stored', id)
      for (const stored of spellings) store.deleteGroup(stored.id)
      return undefined
    }
    for (const stored of spellings) {
      if (stored.id === id) continue
      this.#log.error('dropping stored group %s: another spelling of %s', stored.id.slice(0, 80), id)
      store.deleteGroup(stored.id)
    }
    const since = Math.min(...spellings.map((stored) => stored.joinedAt))
    if (!spellings.some((stored) => stored.id === id)) store.saveGroup({ id }, since)
    // Activity is not stored as such: it is read back from what is. Events carry no arrival time, so
    // after a restart a group's last activity is its newest stored envelope (or when its genesis came).
    const senders = store.senderActivity(id)
    const eventBytes = store.eventBytes(id)
    return {
      relayGroup,
      admitted: {
        founder,
        since,
        lastActive: Math.max(since, ...senders.values()),
        active: new Set([...group.events().map((e) => e.author), ...senders.keys()]),
        storedBytes: store.messageBytes(id) + eventBytes,
        eventBytes,
      },
    }
  }

  /** A group as the relay holds it: ciphertext only, with small pending buffers (see admission.ts). */
  #newRelayGroup(id: string): RelayGroup {
    const group = new Group({
      identity: this.#c.identity,
      groupId: id,
      ciphertextOnly: true,
      now: () => this.#c.clock.now(),
      maxPendingEvents: PENDING_EVENTS_PER_GROUP,
      maxPendingBytes: PENDING_EVENT_BYTES_PER_GROUP,
      maxPendingMessages: PENDING_MESSAGES_PER_GROUP,
      pendingBudget: this.#c.pendingBudget,
    })
    const relayGroup: RelayGroup = {
      group,
      // members would drop what the relay does not forward anyway
      joins: new JoinInbox(this.#c),
      topic: new GroupTopic(this.#c, { group, hooks: this.#hooks(() => relayGroup) }),
    }
    return relayGroup
  }

  /** What the relay does with what the core accepted on a group's topic. */
  #hooks(relayGroup: () => RelayGroup): GroupTopicHooks {
    return {
      admit: (input, from) => this.#admit(relayGroup().group, input, from),
      eventsApplied: (result: ReceiveEventResult, from) => {
        for (const event of result.applied) this.#storeEvent(relayGroup(), event, from)
      },
      messageOpened: (opened, bytes, from) => this.#storeMessage(relayGroup(), opened, bytes, from),
      // a join request is forwarded, never stored; a repeat within 2 s and new requesters beyond 30 a
      // minute are ignored
      joinRequested: (request) => {
        const verdict = relayGroup().joins.receive(request)
        return verdict === 'new' || verdict === 'repeat' ? 'accept' : 'ignore'
      },
      rejected: (from, error) => this.#c.rejected(relayGroup().group.id, from, error),
    }
  }

  /**
   * Stores an applied event, counting it as activity of its author. The genesis admits the group: from
   * then on the relay keeps it across restarts, until the admission policy evicts it.
   */
  #storeEvent(relayGroup: RelayGroup, event: SignedEvent, from: string): void {
    const { group } = relayGroup
    const { admission, store } = this.#c
    // evicted, or its genesis did not fit, while the events of one receive were being stored
    if (this.#groups.get(group.id) !== relayGroup) return
    try {
      if (event.payload.type === 'genesis' && !this.#hold(relayGroup, event, from)) return
      if (!admission.has(group.id)) return
      // verified activity of its author, whether or not there is room to store it
      this.touch(group.id, event.author)
      if (!this.#makeRoom(group.id, event.bytes.length, true, from)) return
      if (store.addEvent(group.id, event.id, event.bytes)) admission.add(group.id, event.bytes.length, true)
    } catch (err) {
      this.#log.error('could not store event %s of %s: %s', event.id, group.id, (err as Error).message)
    }
  }

  /** The genesis of a group taken up on request came: admit the group, evicting what the policy says. */
  #hold(relayGroup: RelayGroup, genesis: SignedEvent, from: string): boolean {
    const id = relayGroup.group.id
    const now = this.#c.clock.now()
    let evict: string[]
    try {
      evict = this.#c.admission.admit(id, { founder: genesis.author, since: now, active: [genesis.author] })
    } catch (err) {
      this.#c.rejected(id, from, err as Error)
      this.#forget(id, 'its genesis did not fit')
      return false
    }
    this.#pending.delete(id)
    this.#evictAll(evict, `making room for new group ${id}`)
    this.#c.store.saveGroup({ id }, now)
    this.#log('now holding group %s', id)
    return true
  }

  #storeMessage(
    relayGroup: RelayGroup,
    opened: OpenedMessage,
    bytes: Uint8Array,
    from: string,
  ): TopicValidationResult {
    const { group } = relayGroup
    // evicted while the signature was checked: it is valid, but no longer ours to store
    if (this.#groups.get(group.id) !== relayGroup) return 'accept'
    // verified activity of its sender, before room is made: a second member's first message takes the
    // group off probation, so it may make room among established groups
    this.touch(group.id, opened.sender)
    if (!this.#makeRoom(group.id, bytes.length, false, from)) return 'ignore'
    let stored: boolean
    try {
      stored = this.#c.store.addMessage({
        groupId: group.id,
        id: opened.id,
        sender: opened.sender,
        seq: opened.seq,
        epoch: opened.epoch,
        receivedAt: this.#c.clock.now(),
        bytes,
        text: null,
        ts: null,
      })
    } catch (err) {
      this.#log.error('could not store envelope %s of %s: %s', opened.id, group.id, (err as Error).message)
      return 'ignore'
    }
    if (stored) {
      this.#c.admission.add(group.id, bytes.length, false)
      this.#c.stored(group.id, opened.id)
    }
    return 'accept'
  }

  /** Makes room for `bytes` more of group `id`, evicting what the policy says; false (logged) if it cannot. */
  #makeRoom(id: string, bytes: number, event: boolean, from: string): boolean {
    try {
      this.#evictAll(this.#c.admission.makeRoom(id, bytes, event), `making room in ${id}`)
      return true
    } catch (err) {
      this.#c.rejected(id, from, err as Error)
      return false
    }
  }

  /** Counts one more for `from` in `rates`; false when that is over the limit. */
  #take(rates: RateLimiter, from: string): boolean {
    try {
      rates.consume(from)
      return true
    } catch {
      return false
    }
  }

  /**
   * Applies the per-peer rate limit and the group's storage cap to `input`, before anything is verified;
   * logs a refusal. Room is made only for what verifies, as the sender's standing decides.
   *
   * An envelope naming a current member as sender skips the rate: an honest burst meets only the caps,
   * and a peer that spent its rate on junk cannot make the relay pass over a member's message it forwards
   * first (gossipsub drops the member's own copy as a duplicate). A false claim fails the signature.
   */
  #admit(group: Group, input: TopicInput, from: string): boolean {
    try {
      const fromMember = input.kind === 'message' && group.isMember(claimedSender(input.bytes) ?? '')
      if (!fromMember && !this.#take(this.#rates, from)) {
        const limit = this.#init.ratePerMinute
        throw new RateLimitedError(
          `peer ${from} sent more than ${limit} events or envelopes of non-members in a minute`,
        )
      }
      this.#c.admission.checkGroupCap(group.id, input.bytes.length)
      return true
    } catch (err) {
      this.#c.rejected(group.id, from, err as Error)
      return false
    }
  }

  /**
   * Deletes envelopes older than the retention period and recounts storage, drops idle groups (with all
   * they stored) and groups whose genesis never came.
   */
  prune(): void {
    const { admission, store, clock } = this.#c
    const now = clock.now()
    this.#c.pendingBudget.expire()
    for (const [id, since] of this.#pending) {
      if (now - since >= PENDING_GENESIS_MS) this.#forget(id, 'no genesis came within 10 minutes')
    }
    try {
      for (const id of admission.expired(now)) this.#evict(id, 'no member activity for too long')
      const removed = store.deleteMessagesBefore(now - this.#init.retention)
      if (removed > 0) {
        this.#log('pruned %d envelopes past retention', removed)
        for (const id of this.#groups.keys()) {
          if (admission.has(id)) admission.recount(id, store.messageBytes(id) + store.eventBytes(id))
        }
      }
    } catch (err) {
      this.#log.error('pruning the store failed: %s', (err as Error).message)
    }
  }

  /** Evicts each group in `ids`, in order, for `why`. */
  #evictAll(ids: readonly string[], why: string): void {
    for (const id of ids) this.#evict(id, why)
  }

  /** Drops a held group with everything stored for it. */
  #evict(id: string, why: string): void {
    this.#c.admission.remove(id)
    this.#forget(id, why)
    try {
      this.#c.store.purgeGroup(id)
    } catch (err) {
      this.#log.error('could not delete what was stored for group %s: %s', id, (err as Error).message)
    }
    this.evicted++
  }

  /** Stops serving a group (held or waiting for its genesis): its topic, validator and memory. */
  #forget(id: string, why: string): void {
    const relayGroup = this.#groups.get(id)
    this.#pending.delete(id)
    this.#groups.delete(id)
    relayGroup?.topic.stop({ unsubscribe: true })
    relayGroup?.group.clearPending()
    this.#log('dropped group %s: %s', id, why)
  }
}

/**
 * The stored group rows by canonical group id, each with every spelling of that id that was stored. Rows
 * that are no group id are deleted here. Grouping first makes the outcome independent of the order the
 * rows come in: sorted by `joined_at`, another spelling may come before the canonical row.
 */
function storedSpellings(store: ChatStore, log: Logger): Map<string, StoredGroup[]> {
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
