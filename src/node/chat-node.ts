import type { ConnectionGater, PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { Queue } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import type { Identity } from '../crypto/index.js'
import {
  AccessDeniedError,
  Group,
  type GroupOptions,
  InvalidArgumentError,
  type MemberInfo,
  type OpenedMessage,
  PendingBudget,
  PendingLimitError,
  type ReceiveEventResult,
  type Rename,
  ReplayError,
  type SignedEvent,
  StaleEpochError,
  UnknownAuthorError,
  UnknownEpochError,
  WrongGroupError,
} from '../membership/index.js'
import {
  AmbiguousMemberError,
  GroupNotReadyError,
  NodeStoppedError,
  NotInGroupError,
  UnknownMemberError,
  UnverifiedNameError,
} from './errors.js'
import { decodeInvite, encodeInvite, forgedClaim, type GroupOrigin, type Invite } from './invite.js'
import { Lifecycle } from './lifecycle.js'
import { type DataDirLock, lockDataDir } from './lock.js'
import { shownTime } from './sender-time.js'
import { ChatStore, loadOrCreateIdentity } from './store.js'
import {
  dialHints,
  handleSync,
  MAX_SYNC_MESSAGES,
  MAX_SYNC_ROUNDS,
  type PeerHint,
  type SyncAccess,
  type SyncLimits,
  type SyncReplica,
  subscriberHints,
  syncWithPeer,
} from './sync.js'
import { accessOf, bootstrapPeerIds, epochsSealedTo, isKnownPeer } from './sync-access.js'
import {
  createTransport,
  setTopicValidator,
  type TopicValidationResult,
  type TransportNode,
} from './transport.js'
import {
  canonicalGroupId,
  decodeGossip,
  decodeJoinRequest,
  encodeGossip,
  encodeJoinRequest,
  type GossipFrame,
  topicOf,
} from './wire.js'

const log = logger('p2pchat:node')

/** Options for {@link createChatNode}. */
export interface ChatNodeInit {
  /** Directory for the identity key and the database; one per display name. */
  dataDir: string
  /** Display name announced to others. A label: the identity is the key in `dataDir`. */
  name: string
  /** Multiaddrs to listen on. Default `/ip4/0.0.0.0/tcp/0`. */
  listen?: string[]
  /** Peers (multiaddrs with `/p2p/<id>`) to dial at start: other peers or relays. */
  bootstrap?: string[]
  /** Discover peers on the LAN with mDNS. Default true. */
  mdns?: boolean
  /** mDNS service tag; tests randomise it. */
  mdnsServiceTag?: string
  /** Tests with many peers on one host: turn off gossipsub's IP-colocation penalty. */
  sameHostTest?: boolean
  /** Reserve a slot on relays we connect to so peers behind NAT can reach us. Default true. */
  listenViaRelay?: boolean
  /** Grace window for superseded epochs, in ms. */
  graceMs?: number
  /** Delay per rank before a member that is not first in line issues a due rekey, in ms. Default 3000. */
  rekeyDelayMs?: number
  /** Period of anti-entropy sync with a random connected peer, in ms. Default 30000. */
  syncIntervalMs?: number
  /** Limits on the sync streams this node serves and the time a sync may take (see `SyncLimits`). */
  syncLimits?: SyncLimits
  /**
   * Tests only: never dial, nor accept a connection from, a peer for which this returns true, e.g. to
   * make two peers meet only through a relay. Default: no peer is refused.
   */
  denyPeer?: (peerId: string) => boolean
}

/** A peer as the chat shows it. */
export interface PeerRef {
  peerId: string
  name: string
}

/** A decrypted message, own ones included. */
export interface ChatMessage {
  group: string
  id: string
  from: string
  name: string
  text: string
  ts: number
}

/** A message this peer cannot decrypt. */
export interface EncryptedNotice {
  group: string
  id: string
  from: string
  name: string
  bytes: number
  preview: string
}

/** The resolved member list changed: who is in, or what a member is called. */
export interface MembershipNotice {
  group: string
  members: PeerRef[]
  /**
   * The event that explains it, when one does. For `rename`, `by` and `member` are the member (under its
   * new name) and `from` is the name it had.
   */
  change:
    | { action: 'create' | 'add' | 'remove'; by: PeerRef; member: PeerRef }
    | { action: 'rename'; by: PeerRef; member: PeerRef; from: string }
    | null
}

/**
 * The key this member was sealed in the group's current epoch does not open, or is not the key the
 * epoch's author committed to: the author split or withheld the key. This member cannot read or send
 * under it, so it rekeys at once.
 */
export interface BadEpochKeyNotice {
  group: string
  epoch: string
  /** Who chose the bad key. */
  author: PeerRef
  reason: string
}

/** A non-member asked to be added. */
export interface JoinRequestNotice {
  group: string
  peerId: string
  name: string
}

/**
 * The genesis of a group this peer joined by invite contradicts the invite: its inviter lied about who
 * founded the group (or what it is called), so the group is not the one the invite made it look like.
 */
export interface InviteForgedNotice {
  group: string
  /** Who signed the invite. */
  inviter: PeerRef
  /** What the invite said. */
  claimed: GroupOrigin
  /** What the genesis, which the group id is the hash of, says. */
  actual: GroupOrigin
}

/** Events of a {@link ChatNode}. */
export interface ChatNodeEvents {
  'message:receive': CustomEvent<ChatMessage>
  'message:encrypted': CustomEvent<EncryptedNotice>
  'membership:change': CustomEvent<MembershipNotice>
  'join:request': CustomEvent<JoinRequestNotice>
  'invite:forged': CustomEvent<InviteForgedNotice>
  'epoch:bad-key': CustomEvent<BadEpochKeyNotice>
  'peer:connect': CustomEvent<string>
  'peer:disconnect': CustomEvent<string>
  /** A message was rejected or could not be handled; for logs. */
  'message:reject': CustomEvent<{ group: string; reason: string; from: string }>
}

/** What `send` reports. */
export interface SendResult {
  id: string
  ts: number
  /** Peers the message was handed to now; 0 means it waits for sync when someone connects. */
  recipients: number
}

/** A group summary. */
export interface GroupSummary {
  id: string
  name: string
}

/** The selected group, as {@link ChatStatus} shows it. */
export interface GroupStatus extends GroupSummary {
  /** The founder: from the genesis once it is here, until then as the invite claims; null if neither. */
  founder: PeerRef | null
  /** Who signed the invite this peer joined with; null for a group it founded. */
  inviter: PeerRef | null
  /** The genesis contradicts that invite: the inviter lied (see {@link InviteForgedNotice}). */
  inviteForged: boolean
}

/** Node status, as `status` in the JSON interface. */
export interface ChatStatus {
  peerId: string
  name: string
  group: GroupStatus | null
  member: boolean
  addrs: string[]
  peers: number
}

const ACTIVE_GROUP_KEY = 'activeGroup'
/**
 * Syncs this node runs at once with one peer (its groups take turns): well under the streams a peer
 * serves one peer at once, so an honest node is never refused for opening too many.
 */
const SYNCS_PER_PEER = 2
const JOIN_ANNOUNCE_INTERVAL_MS = 10_000
/** Retry delay for a join request that reached nobody (e.g. the gossipsub stream was still opening). */
const JOIN_ANNOUNCE_RETRY_MS = 250
/** A join request sent to new subscribers is repeated once after this long, past members' repeat filter. */
const JOIN_FOLLOW_UP_MS = 2500
/** A requester that asks again after this long is shown again. */
const JOIN_NOTICE_REPEAT_MS = 5 * 60_000
/** Repeats of one requester's join request closer than this are not forwarded (they announce every 10 s). */
const JOIN_REPEAT_MIN_MS = 2000
/** Requesters remembered per group; the least recent are forgotten first. */
const MAX_JOIN_REQUESTERS = 256
/** New join requests (shown to the user, stored) accepted per group per minute; more are ignored. */
const JOIN_REQUESTS_PER_MINUTE = 30

interface GroupRuntime {
  group: Group
  removeValidator?: () => void
  rekeyTimer?: ReturnType<typeof setTimeout>
  announceRetry?: ReturnType<typeof setTimeout>
  announcedJoinAt: number
  /** Subscribers of the topic when this peer last announced its join request. */
  announcedTo: Set<string>
  /** Recent requesters, least recent first: when they last asked and the name they gave. */
  joinRequestsSeen: Map<string, { at: number; name: string }>
  /** Rate window of new join requests. */
  joinRate: { windowStart: number; count: number }
  /** The invite this peer joined with, if it joined by one. */
  invite?: Invite
  /** Founder and name from the genesis, once it is known. */
  origin?: GroupOrigin
  /** The forged invite last reported (as JSON), so that one is reported once, not at start and join. */
  forgedReported?: string
  /** The bad epoch last reported and rekeyed away from, so one bad epoch causes one rekey. */
  badEpochHandled?: string
}

function newRuntime(group: Group): GroupRuntime {
  return {
    group,
    announcedJoinAt: 0,
    announcedTo: new Set(),
    joinRequestsSeen: new Map(),
    joinRate: { windowStart: 0, count: 0 },
  }
}

/**
 * A p2pchat peer: identity, database, libp2p node, and the groups it takes part in.
 *
 * @example
 * ```ts
 * const node = await createChatNode({ dataDir, name: 'alice' })
 * await node.createGroup('team')
 * node.addEventListener('message:receive', (e) => console.log(e.detail.text))
 * await node.send('hello')
 * await node.stop()
 * ```
 */
export class ChatNode extends TypedEventEmitter<ChatNodeEvents> implements SyncReplica {
  readonly identity: Identity
  readonly name: string
  readonly #init: ChatNodeInit
  readonly #store: ChatStore
  readonly #lock: DataDirLock | undefined
  readonly #groups = new Map<string, GroupRuntime>()
  #active: string | undefined
  #libp2p: TransportNode | undefined
  #syncTimer: ReturnType<typeof setInterval> | undefined
  readonly #life = new Lifecycle(() => new NodeStoppedError())
  readonly #syncing = new Set<string>()
  /** Keys of {@link #syncing} asked for again while running: they sync once more when done. */
  readonly #syncAgain = new Set<string>()
  /** Per peer, the syncs with it waiting for one of its {@link SYNCS_PER_PEER} turns. */
  readonly #syncQueues = new Map<string, Queue<void>>()
  /** Peer ids of the bootstrap list: the relays among them get ciphertext by sync. */
  readonly #bootstrapIds: ReadonlySet<string>
  readonly #abort = new AbortController()
  /** What waits for parents or epochs, over all this node's groups, per sending peer and author. */
  readonly #pendingBudget = new PendingBudget()

  /**
   * @param lock - the data directory lock taken by {@link createChatNode}; released by {@link ChatNode.stop}
   */
  constructor(init: ChatNodeInit, identity: Identity, store: ChatStore, lock?: DataDirLock) {
    super()
    this.#init = init
    this.identity = identity
    this.name = init.name
    this.#store = store
    this.#lock = lock
    this.#bootstrapIds = bootstrapPeerIds(init.bootstrap ?? [])
    this.#loadGroups()
  }

  /** Options every group of this node is opened with. */
  #groupOptions(): GroupOptions {
    return {
      pendingBudget: this.#pendingBudget,
      ...(this.#init.graceMs === undefined ? {} : { graceMs: this.#init.graceMs }),
    }
  }

  /** This peer's id. */
  get peerId(): string {
    return this.identity.memberId
  }

  /** The libp2p node, once started. */
  get libp2p(): TransportNode | undefined {
    return this.#libp2p
  }

  #loadGroups(): void {
    for (const stored of this.#store.groups()) {
      // one unusable stored group must not keep the node from opening
      try {
        const group = new Group({ identity: this.identity, groupId: stored.id, ...this.#groupOptions() })
        if (this.#groups.has(group.id)) continue
        this.#store.restoreGroup(group, (err) =>
          log.error('stored event of %s does not apply: %s', stored.id, err.message),
        )
        const runtime = newRuntime(group)
        if (stored.invite !== null) {
          try {
            runtime.invite = decodeInvite(stored.invite)
          } catch {
            // an invite of an older format: the group still opens, only its inviter is not shown
          }
        }
        this.#groups.set(group.id, runtime)
      } catch (err) {
        log.error('skipping stored group %s: %s', stored.id.slice(0, 80), (err as Error).message)
      }
    }
    const active = this.#store.getMeta(ACTIVE_GROUP_KEY)
    this.#active = active !== undefined && this.#groups.has(active) ? active : [...this.#groups.keys()].at(-1)
  }

  /**
   * Starts networking: listens, discovers peers, subscribes to every group's topic. Idempotent: every
   * call, concurrent ones included, gets the same start. A start that failed can be tried again.
   *
   * @throws {NodeStoppedError} the node was stopped
   */
  start(): Promise<void> {
    return this.#life.start(() => this.#start())
  }

  async #start(): Promise<void> {
    const libp2p = await createTransport({
      privateKey: this.identity.privateKey,
      listen: this.#init.listen ?? ['/ip4/0.0.0.0/tcp/0'],
      bootstrap: this.#init.bootstrap ?? [],
      mdns: this.#init.mdns ?? true,
      ...(this.#init.mdnsServiceTag === undefined ? {} : { mdnsServiceTag: this.#init.mdnsServiceTag }),
      listenViaRelay: this.#init.listenViaRelay ?? (this.#init.bootstrap ?? []).length > 0,
      gossip: { sameHostTest: this.#init.sameHostTest === true },
      ...(this.#init.denyPeer === undefined ? {} : { connectionGater: gaterDenying(this.#init.denyPeer) }),
    })
    this.#libp2p = libp2p
    // stopped meanwhile: stop() waits for this start, then stops the node
    if (this.#life.stopping) return
    try {
      await handleSync(libp2p, this, this.#abort.signal, this.#init.syncLimits)
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
    libp2p.addEventListener('peer:connect', (evt) => {
      const peerId = evt.detail.toString()
      this.#persist('a connected peer', () => this.#store.upsertPeer({ peerId }))
      this.safeDispatchEvent('peer:connect', { detail: peerId })
      for (const id of this.#groups.keys()) this.#syncWith(evt.detail, id)
    })
    libp2p.addEventListener('peer:disconnect', (evt) => {
      this.safeDispatchEvent('peer:disconnect', { detail: evt.detail.toString() })
    })
    libp2p.services.pubsub.addEventListener('subscription-change', () => {
      for (const runtime of this.#groups.values()) this.#announceJoin(runtime)
    })
    for (const runtime of this.#groups.values()) this.#subscribe(runtime)
    const interval = this.#init.syncIntervalMs ?? 30_000
    this.#syncTimer = setInterval(() => this.#antiEntropy(), interval)
    this.#syncTimer.unref()
    for (const runtime of this.#groups.values()) {
      // a rekey that was due when this node stopped is not left for the next event to trigger
      this.#scheduleRekey(runtime)
      this.#checkEpochKey(runtime)
      this.#claimName(runtime).catch((err: unknown) =>
        log.error('renaming in %s failed: %s', runtime.group.id, (err as Error).message),
      )
    }
    // a forged invite found in an earlier session is still one: warn at every start
    for (const runtime of this.#groups.values()) this.#checkInvite(runtime)
  }

  /**
   * Stops networking, closes the database and releases the data directory. Idempotent: every call gets
   * the same stop, which settles once all of it is done. The database is closed even if libp2p fails to
   * stop.
   */
  stop(): Promise<void> {
    return this.#life.stop(() => this.#stop())
  }

  async #stop(): Promise<void> {
    this.#abort.abort()
    try {
      // a start in flight finishes first, so the node it creates is stopped too
      await this.#life.startSettled()
      if (this.#syncTimer !== undefined) clearInterval(this.#syncTimer)
      for (const runtime of this.#groups.values()) {
        if (runtime.rekeyTimer !== undefined) clearTimeout(runtime.rekeyTimer)
        if (runtime.announceRetry !== undefined) clearTimeout(runtime.announceRetry)
        runtime.removeValidator?.()
      }
      await this.#libp2p?.stop()
    } finally {
      try {
        this.#store.close()
      } finally {
        this.#lock?.release()
      }
    }
  }

  /** Runs a store write whose failure must not escape (listeners, background work); logs it instead. */
  #persist(what: string, write: () => void): void {
    try {
      write()
    } catch (err) {
      log.error('could not store %s: %s', what, (err as Error).message)
    }
  }

  /** Multiaddrs others can dial, each ending in `/p2p/<peer id>`. */
  addrs(): string[] {
    return (this.#libp2p?.getMultiaddrs() ?? []).map(String)
  }

  /** Peers connected now, with names where known. */
  peers(): PeerRef[] {
    const ids = (this.#libp2p?.getPeers() ?? []).map(String)
    return ids.map((peerId) => ({ peerId, name: this.#nameOf(peerId) ?? '' }))
  }

  /** Groups this node takes part in. */
  groups(): GroupSummary[] {
    return [...this.#groups.values()].map(({ group }) => ({
      id: group.id,
      name: group.name ?? this.#storedName(group.id),
    }))
  }

  #storedName(groupId: string): string {
    return this.#store.groups().find((g) => g.id === groupId)?.name ?? groupId.slice(-8)
  }

  /** Whether this peer founded the group `groupId`. */
  isFounder(groupId: string): boolean {
    return this.#groups.get(groupId)?.group.founder === this.peerId
  }

  /** The selected group, if any. */
  get activeGroup(): Group | undefined {
    return this.#active === undefined ? undefined : this.#groups.get(this.#active)?.group
  }

  /**
   * Selects the group whose id or name is `ref`.
   *
   * @throws {NotInGroupError} no group matches, or the name matches several
   */
  selectGroup(ref: string): GroupSummary {
    const matches = this.groups().filter((g) => g.id === ref || g.name === ref)
    if (matches.length !== 1) {
      const known = this.groups()
        .map((g) => `${g.name} (${g.id})`)
        .join(', ')
      throw new NotInGroupError(
        matches.length === 0
          ? `no group "${ref}" here; known groups: ${known || 'none'}`
          : `several groups are called "${ref}"; use the id: ${known}`,
      )
    }
    const match = matches[0] as GroupSummary
    this.#active = match.id
    this.#store.setMeta(ACTIVE_GROUP_KEY, match.id)
    return match
  }

  #requireGroup(): GroupRuntime {
    const runtime = this.#active === undefined ? undefined : this.#groups.get(this.#active)
    if (runtime === undefined) throw new NotInGroupError()
    return runtime
  }

  /** Founds a group with this peer as its only member and selects it. */
  async createGroup(name: string): Promise<GroupSummary> {
    const { group, event } = await Group.create({
      identity: this.identity,
      name,
      memberName: this.name,
      ...this.#groupOptions(),
    })
    this.#store.saveGroup({ id: group.id, name })
    this.#store.addEvent(group.id, event.id, event.bytes)
    const runtime = newRuntime(group)
    this.#groups.set(group.id, runtime)
    this.selectGroup(group.id)
    if (this.#libp2p !== undefined) this.#subscribe(runtime)
    this.#emitMembership(group, event)
    return { id: group.id, name }
  }

  /**
   * Joins the group of an invite: subscribes to its topic, dials the inviter's addresses, and announces a
   * join request that members see. The peer becomes a member when one of them adds it.
   *
   * @throws {InvalidInviteError}
   */
  async joinGroup(inviteText: string): Promise<GroupSummary> {
    const invite = decodeInvite(inviteText)
    let runtime = this.#groups.get(invite.groupId)
    if (runtime === undefined) {
      const group = new Group({ identity: this.identity, groupId: invite.groupId, ...this.#groupOptions() })
      runtime = newRuntime(group)
      this.#groups.set(group.id, runtime)
    }
    runtime.invite = invite
    this.#store.saveGroup({ id: invite.groupId, name: invite.groupName, invite: inviteText.trim() })
    this.selectGroup(invite.groupId)
    // joining again a group whose genesis is here already: the new invite is checked now
    this.#checkInvite(runtime)
    if (this.#libp2p !== undefined) {
      this.#subscribe(runtime)
      for (const addr of invite.addrs) {
        this.#libp2p.dial(multiaddr(addr), { signal: this.#abort.signal }).catch((err: unknown) => {
          log('could not dial invite address %s: %s', addr, (err as Error).message)
        })
      }
    }
    return { id: invite.groupId, name: invite.groupName }
  }

  /**
   * An invite to the selected group, signed by this peer, naming the group's founder and carrying this
   * peer's addresses.
   *
   * @throws {NotInGroupError}
   * @throws {GroupNotReadyError} the group's genesis has not arrived yet, so its founder is not known
   */
  invite(): string {
    const runtime = this.#requireGroup()
    const origin = this.#originOf(runtime)
    if (origin === undefined) throw new GroupNotReadyError()
    return encodeInvite(this.identity, {
      groupId: runtime.group.id,
      ...origin,
      inviter: { peerId: this.peerId, name: this.name },
      addrs: this.addrs(),
    })
  }

  /** The group's name and founder as its genesis fixes them; `undefined` until the genesis is here. */
  #originOf(runtime: GroupRuntime): GroupOrigin | undefined {
    if (runtime.origin !== undefined) return runtime.origin
    const genesis = runtime.group.events().find((e) => e.payload.type === 'genesis')
    const { groupName, subjectName } = genesis?.payload ?? {}
    if (genesis === undefined || groupName === undefined || subjectName === undefined) return undefined
    runtime.origin = { groupName, founder: { peerId: genesis.author, name: subjectName } }
    return runtime.origin
  }

  /** Warns when the genesis is here and contradicts the invite this peer joined with. */
  #checkInvite(runtime: GroupRuntime): void {
    const { invite } = runtime
    const actual = this.#originOf(runtime)
    if (invite === undefined || actual === undefined) return
    const claimed = forgedClaim(invite, actual)
    if (claimed === undefined || runtime.forgedReported === JSON.stringify(invite)) return
    runtime.forgedReported = JSON.stringify(invite)
    log.error(
      'forged invite for %s: %s said the founder is %s, the genesis says %s',
      runtime.group.id,
      invite.inviter.peerId,
      claimed.founder.peerId,
      actual.founder.peerId,
    )
    this.safeDispatchEvent('invite:forged', {
      detail: { group: runtime.group.id, inviter: invite.inviter, claimed, actual },
    })
  }

  /** Current members of the selected group. */
  members(): PeerRef[] {
    const { group } = this.#requireGroup()
    return group.members().map((m) => ({ peerId: m.id, name: m.name }))
  }

  /** Status for the JSON interface and `/status`. */
  status(): ChatStatus {
    const runtime = this.#active === undefined ? undefined : this.#groups.get(this.#active)
    const group = runtime?.group
    return {
      peerId: this.peerId,
      name: this.name,
      group: runtime === undefined ? null : this.#groupStatus(runtime),
      member: group?.isMember() ?? false,
      addrs: this.addrs(),
      peers: this.#libp2p?.getPeers().length ?? 0,
    }
  }

  #groupStatus(runtime: GroupRuntime): GroupStatus {
    const { group, invite } = runtime
    const origin = this.#originOf(runtime)
    return {
      id: group.id,
      name: group.name ?? this.#storedName(group.id),
      founder: origin?.founder ?? invite?.founder ?? null,
      inviter: invite?.inviter ?? null,
      inviteForged: invite !== undefined && origin !== undefined && forgedClaim(invite, origin) !== undefined,
    }
  }

  /**
   * The last `limit` readable messages of the selected group to arrive, in the order they arrived here
   * (the order `message:receive` reported them), each with its sender's time.
   */
  history(limit = 50): ChatMessage[] {
    const { group } = this.#requireGroup()
    return this.#store.history(group.id, limit).map((m) => ({
      group: group.id,
      id: m.id,
      from: m.sender,
      name: this.#nameOf(m.sender, group) ?? '',
      text: m.text ?? '',
      // an older p2pchat stored sender times as they came
      ts: m.ts === null ? m.receivedAt : shownTime(m.ts, m.receivedAt),
    }))
  }

  /**
   * Encrypts and sends `text` to the selected group. It is stored before this resolves, so it survives a
   * crash, and sync delivers it to members who connect later.
   *
   * @throws {NotInGroupError | AccessDeniedError | NoCurrentEpochError | TooLargeError}
   */
  async send(text: string): Promise<SendResult> {
    const runtime = this.#requireGroup()
    const { group } = runtime
    this.#requireLog(group, 'send messages')
    const sealed = await group.seal(text)
    this.#store.addMessage({
      groupId: group.id,
      id: sealed.id,
      sender: this.peerId,
      seq: sealed.seq,
      epoch: sealed.epoch,
      receivedAt: Date.now(),
      bytes: sealed.bytes,
      text,
      ts: sealed.ts,
    })
    const recipients = await this.#publish(group.id, { kind: 'message', data: sealed.bytes })
    this.safeDispatchEvent('message:receive', {
      detail: { group: group.id, id: sealed.id, from: this.peerId, name: this.name, text, ts: sealed.ts },
    })
    return { id: sealed.id, ts: sealed.ts, recipients }
  }

  /**
   * Adds a member by peer id, or by a display name the group's signed events give to exactly one peer
   * (a former member). A name known only from join requests adds nobody: anyone can ask to join as
   * "carol", so the error lists who asked, for the caller to add by peer id.
   *
   * @throws {NotInGroupError | AccessDeniedError | UnknownMemberError | AmbiguousMemberError}
   * @throws {UnverifiedNameError} only join requesters (or peers stored from their requests) carry the
   * name; its `candidates` are `[{ peerId, name }]`
   * @throws {InvalidArgumentError} the peer is already a member
   */
  async add(ref: string): Promise<PeerRef[]> {
    const runtime = this.#requireGroup()
    const { group } = runtime
    this.#requireLog(group, 'add members')
    if (!group.isMember()) {
      // the same check the core makes, first, so a non-member learns nothing about who is known
      await group.add(this.peerId, this.name)
    }
    const target = this.#resolvePeer(ref, group)
    if (group.isMember(target.peerId)) throw new InvalidArgumentError(`${target.name} is already a member`)
    const event = await group.add(target.peerId, target.name)
    await this.#commitLocalEvent(runtime, event)
    return this.members()
  }

  /**
   * Removes a member by peer id or display name.
   *
   * @throws {NotInGroupError | AccessDeniedError | UnknownMemberError | AmbiguousMemberError}
   */
  async remove(ref: string): Promise<PeerRef[]> {
    const runtime = this.#requireGroup()
    const { group } = runtime
    this.#requireLog(group, 'remove members')
    if (!group.isMember()) await group.remove(this.peerId)
    const target = this.#resolveMember(ref, group)
    const event = await group.remove(target.id)
    await this.#commitLocalEvent(runtime, event)
    return this.members()
  }

  /**
   * A group whose log has not arrived is one this peer was not added to yet, as far as it knows: members
   * send the log only to members (see `sync-access.ts`). Says so in the words the core uses for a
   * non-member, with the name the invite gave.
   *
   * @throws {AccessDeniedError}
   */
  #requireLog(group: Group, action: string): void {
    if (group.ready) return
    throw new AccessDeniedError(
      `Access denied: you are not a member of ${this.#storedName(group.id)}, so you cannot ${action}`,
    )
  }

  async #commitLocalEvent(runtime: GroupRuntime, event: SignedEvent, renamed?: Rename): Promise<void> {
    this.#store.addEvent(runtime.group.id, event.id, event.bytes)
    if (renamed !== undefined) this.#emitRename(runtime.group, renamed)
    else if (event.payload.type !== 'rekey') this.#emitMembership(runtime.group, event)
    this.#scheduleRekey(runtime)
    await this.#publish(runtime.group.id, { kind: 'event', data: event.bytes })
    this.#welcome(runtime, event)
  }

  /**
   * After adding a peer we are connected to, sync with it at once: it was sent nothing of the group while
   * it was no member (see `sync-access.ts`), and now it is owed the log and its key.
   */
  #welcome(runtime: GroupRuntime, event: SignedEvent): void {
    const { subject } = event
    if (event.payload.type !== 'add' || subject === undefined) return
    const peer = this.#libp2p?.getPeers().find((p) => p.toString() === subject)
    if (peer !== undefined) this.#syncWith(peer, runtime.group.id)
  }

  #resolveMember(ref: string, group: Group): MemberInfo {
    const members = group.members()
    const byId = members.find((m) => m.id === ref)
    if (byId !== undefined) return byId
    const byName = members.filter((m) => m.name === ref)
    if (byName.length === 1) return byName[0] as MemberInfo
    if (byName.length > 1) {
      throw new AmbiguousMemberError(
        `several members are called ${ref}; use a peer id: ${byName.map((m) => m.id).join(', ')}`,
        byName.map((m) => ({ peerId: m.id, name: m.name })),
      )
    }
    throw new UnknownMemberError(`${ref} is not a member of ${group.name}`)
  }

  /**
   * Finds the peer a user means by `ref`: a peer id, or a name. A name resolves on its own only when the
   * group's signed membership events give it to exactly one peer (a former member re-added by name).
   * Names from join requests and the peers table are claims anyone can make, so they only produce
   * candidates for the user to confirm by peer id.
   *
   * @throws {AmbiguousMemberError} the events give the name to several peers, or to one while other
   * peers claim it too
   * @throws {UnverifiedNameError} only join requesters (or stored peers) claim the name
   * @throws {UnknownMemberError} no peer is known by the name
   */
  #resolvePeer(ref: string, group: Group): PeerRef {
    if (isPeerId(ref)) return { peerId: ref, name: this.#nameOf(ref, group) ?? `peer-${ref.slice(-6)}` }
    const verified = new Set<string>()
    for (const event of group.events()) {
      // the last name the events give a peer is the one it goes by
      if (
        event.subject !== undefined &&
        event.payload.subjectName === ref &&
        group.nameOf(event.subject) === ref
      )
        verified.add(event.subject)
    }
    const claimed = new Set<string>()
    // the peers table is read once; requesters carry the name they asked with
    for (const peer of this.#store.peers()) if (peer.name === ref) claimed.add(peer.peerId)
    for (const runtime of this.#groups.values()) {
      for (const [peerId, request] of runtime.joinRequestsSeen) {
        if (request.name === ref && (this.#nameOf(peerId, group, false) ?? ref) === ref) claimed.add(peerId)
      }
    }
    for (const peerId of verified) claimed.delete(peerId)
    const candidates = [...verified, ...claimed].map((peerId) => ({ peerId, name: ref }))
    const [only] = candidates
    if (only !== undefined && candidates.length === 1 && verified.size === 1) return only
    if (verified.size > 0) {
      throw new AmbiguousMemberError(
        `several peers are called ${ref}; use a peer id: ${candidates.map((c) => c.peerId).join(', ')}`,
        candidates,
      )
    }
    if (candidates.length > 0) throw new UnverifiedNameError(ref, candidates)
    throw new UnknownMemberError(
      `no peer called ${ref} is known; ask them for their peer id (shown at start)`,
    )
  }

  /** The name of a peer: from the group's events, any group's, then (unless `stored` is false) the peers table. */
  #nameOf(peerId: string, group?: Group, stored = true): string | undefined {
    if (peerId === this.peerId) return this.name
    const fromGroup = (group ?? this.activeGroup)?.nameOf(peerId)
    if (fromGroup !== undefined) return fromGroup
    for (const runtime of this.#groups.values()) {
      const name = runtime.group.nameOf(peerId)
      if (name !== undefined) return name
    }
    return stored && this.#store.isOpen ? this.#store.peerName(peerId) : undefined
  }

  #subscribe(runtime: GroupRuntime): void {
    const libp2p = this.#libp2p
    if (libp2p === undefined || runtime.removeValidator !== undefined) return
    // peers we are already connected to (a relay, say) learn of the group now, not at the next round
    for (const peer of libp2p.getPeers()) this.#syncWith(peer, runtime.group.id)
    const topic = topicOf(runtime.group.id)
    runtime.removeValidator = setTopicValidator(
      libp2p.services.pubsub,
      topic,
      ({ data, propagationSource }) => this.#onGossip(runtime, data, propagationSource),
    )
    libp2p.services.pubsub.subscribe(topic)
    this.#announceJoin(runtime)
  }

  /** A non-member announces itself (at most every few seconds) so members can add it by name. */
  #announceJoin(runtime: GroupRuntime, followUp = false): void {
    const { group } = runtime
    if (this.#libp2p === undefined || group.isMember()) return
    const now = Date.now()
    const topic = topicOf(group.id)
    const subscribers = this.#libp2p.services.pubsub.getSubscribers(topic).map(String)
    if (subscribers.length === 0) return
    // a subscriber that appeared since the last announcement has not heard it: tell it now
    const fresh = subscribers.some((p) => !runtime.announcedTo.has(p))
    if (!followUp && !fresh && now - runtime.announcedJoinAt < JOIN_ANNOUNCE_INTERVAL_MS) return
    runtime.announcedJoinAt = now
    runtime.announcedTo = new Set(subscribers)
    this.#publish(group.id, {
      kind: 'join',
      data: encodeJoinRequest(this.identity, group.id, this.name),
    })
      .then((recipients) => {
        if (this.#life.stopping || runtime.announceRetry !== undefined) return
        if (recipients === 0) {
          // a subscriber we have just seen may not have its gossipsub stream open yet, so the request went
          // nowhere; nothing else would trigger another announcement, so try again shortly
          runtime.announcedJoinAt = 0
          runtime.announcedTo = new Set()
          this.#retryAnnounce(runtime, JOIN_ANNOUNCE_RETRY_MS, false)
        } else if (fresh && !followUp) {
          // "sent" is not "received": the first frame on a stream that is still opening can be lost, so
          // new subscribers hear it once more, after the members' duplicate filter has let the first pass
          this.#retryAnnounce(runtime, JOIN_FOLLOW_UP_MS, true)
        }
      })
      .catch((err: unknown) =>
        log.error('join announcement for %s failed: %s', group.id, (err as Error).message),
      )
  }

  #retryAnnounce(runtime: GroupRuntime, delay: number, followUp: boolean): void {
    runtime.announceRetry = setTimeout(() => {
      runtime.announceRetry = undefined
      this.#announceJoin(runtime, followUp)
    }, delay)
    runtime.announceRetry.unref?.()
  }

  async #publish(groupId: string, frame: GossipFrame): Promise<number> {
    const libp2p = this.#libp2p
    if (libp2p === undefined || this.#life.stopping) return 0
    try {
      const result = await libp2p.services.pubsub.publish(topicOf(groupId), encodeGossip(frame))
      return result.recipients.length
    } catch (err) {
      log('publish to %s failed: %s', groupId, (err as Error).message)
      return 0
    }
  }

  async #onGossip(runtime: GroupRuntime, data: Uint8Array, from: PeerId): Promise<TopicValidationResult> {
    let frame: GossipFrame
    try {
      frame = decodeGossip(data)
    } catch (err) {
      this.#reject(runtime.group, from.toString(), err as Error)
      return 'reject'
    }
    switch (frame.kind) {
      case 'event':
        return this.#onEvent(runtime, frame.data, from)
      case 'message':
        return this.#onMessage(runtime, frame.data, from.toString())
      case 'join':
        return this.#onJoinRequest(runtime, frame.data, from.toString())
    }
  }

  #onEvent(runtime: GroupRuntime, bytes: Uint8Array, from: PeerId): TopicValidationResult {
    const verdict = this.#applyEvent(runtime, bytes, from.toString())
    if (verdict === 'pending') {
      // parents unknown: ask the peer that sent it for what we lack
      this.#syncWith(from, runtime.group.id)
      return 'ignore'
    }
    return verdict
  }

  /** Applies an event from gossip or sync; stores, notifies, releases waiting messages. */
  #applyEvent(runtime: GroupRuntime, bytes: Uint8Array, from: string): TopicValidationResult | 'pending' {
    const { group } = runtime
    let result: ReceiveEventResult
    try {
      result = group.receiveEvent(bytes, { from })
    } catch (err) {
      const error = err as Error
      if (error.name === ReplayError.name) return 'ignore'
      this.#reject(group, from, error)
      // no room to wait: nothing is wrong with the event, sync brings it again
      return error.name === PendingLimitError.name ? 'ignore' : 'reject'
    }
    for (const event of result.applied) {
      this.#persist('an event', () => {
        this.#store.addEvent(group.id, event.id, event.bytes)
        if (event.payload.type === 'genesis')
          this.#store.saveGroup({ id: group.id, name: group.name ?? null })
      })
      if (event.payload.type === 'genesis') this.#checkInvite(runtime)
    }
    for (const { error } of result.rejected) this.#reject(group, from, error)
    if (result.membersChanged) {
      this.#emitMembership(
        group,
        result.applied.findLast((e) => e.payload.type !== 'rename'),
      )
    }
    for (const rename of result.renamed) this.#emitRename(group, rename)
    if (result.applied.length > 0) {
      this.#scheduleRekey(runtime)
      this.#checkEpochKey(runtime)
    }
    for (const envelope of result.released) {
      this.#onMessage(runtime, envelope, from).catch((err: unknown) =>
        log.error('released message of %s failed: %s', group.id, (err as Error).message),
      )
    }
    return result.pending ? 'pending' : 'accept'
  }

  async #onMessage(runtime: GroupRuntime, bytes: Uint8Array, from: string): Promise<TopicValidationResult> {
    const { group } = runtime
    let opened: OpenedMessage
    try {
      opened = await group.open(bytes, { from })
    } catch (err) {
      const error = err as Error
      switch (error.name) {
        case ReplayError.name:
          return 'ignore'
        case UnknownEpochError.name:
          this.#syncWith(peerIdFromString(from), group.id)
          return 'ignore'
        case UnknownAuthorError.name:
          // this node may lag behind the sender's add: judge it again after a sync
          this.#reject(group, from, error)
          this.#syncWith(peerIdFromString(from), group.id)
          return 'ignore'
        case StaleEpochError.name:
        case PendingLimitError.name:
          this.#reject(group, from, error)
          return 'ignore'
        default:
          this.#reject(group, from, error)
          return 'reject'
      }
    }
    const name = this.#nameOf(opened.sender, group) ?? ''
    const receivedAt = Date.now()
    let ts: number | null = null
    if (opened.kind === 'message') {
      // stored as shown, so history later shows the time this notification does
      ts = shownTime(opened.ts, receivedAt)
      if (ts !== opened.ts) {
        log(
          'clamped the time of message %s of %s from %s: %d ms ahead of ours, shown at its arrival instead',
          opened.id,
          group.id,
          opened.sender,
          opened.ts - receivedAt,
        )
      }
    }
    const stored = {
      groupId: group.id,
      id: opened.id,
      sender: opened.sender,
      seq: opened.seq,
      epoch: opened.epoch,
      receivedAt,
      bytes,
      text: opened.kind === 'message' ? opened.text : null,
      ts,
    }
    let added: boolean
    try {
      added = this.#store.addMessage(stored)
    } catch (err) {
      // not stored, so not shown; it counts as seen until a restart, when sync brings it again
      log.error('could not store message %s of %s: %s', opened.id, group.id, (err as Error).message)
      return 'ignore'
    }
    if (!added) return 'ignore'
    if (opened.kind === 'message') {
      this.safeDispatchEvent('message:receive', {
        detail: {
          group: group.id,
          id: opened.id,
          from: opened.sender,
          name,
          text: opened.text,
          ts: ts ?? receivedAt,
        },
      })
    } else {
      this.safeDispatchEvent('message:encrypted', {
        detail: {
          group: group.id,
          id: opened.id,
          from: opened.sender,
          name,
          bytes: opened.bytes,
          preview: opened.preview,
        },
      })
    }
    return 'accept'
  }

  /**
   * A non-member's signed join request. Requesters repeat theirs every few seconds until added: a repeat
   * is forwarded but neither stored nor shown again. New requests are rate limited per group, and only the
   * most recent requesters are remembered, so a flood of fresh identities cannot fill memory or the disk.
   */
  #onJoinRequest(runtime: GroupRuntime, bytes: Uint8Array, from: string): TopicValidationResult {
    const { group } = runtime
    let request: ReturnType<typeof decodeJoinRequest>
    try {
      request = decodeJoinRequest(bytes)
    } catch (err) {
      this.#reject(group, from, err as Error)
      return 'reject'
    }
    if (request.group !== group.id) {
      this.#reject(group, from, new WrongGroupError(`join request is for group ${request.group}`))
      return 'reject'
    }
    if (group.isMember(request.peerId)) return 'ignore'
    const now = Date.now()
    const seen = runtime.joinRequestsSeen.get(request.peerId)
    if (seen !== undefined && seen.name === request.name && now - seen.at <= JOIN_NOTICE_REPEAT_MS) {
      if (now - seen.at < JOIN_REPEAT_MIN_MS) return 'ignore'
      runtime.joinRequestsSeen.delete(request.peerId)
      runtime.joinRequestsSeen.set(request.peerId, { at: now, name: request.name })
      return 'accept'
    }
    const rate = runtime.joinRate
    if (now - rate.windowStart >= 60_000) {
      rate.windowStart = now
      rate.count = 0
    }
    if (rate.count >= JOIN_REQUESTS_PER_MINUTE) {
      log(
        'more than %d join requests a minute for %s: ignoring the one from %s',
        JOIN_REQUESTS_PER_MINUTE,
        group.id,
        request.peerId,
      )
      return 'ignore'
    }
    rate.count++
    runtime.joinRequestsSeen.delete(request.peerId)
    runtime.joinRequestsSeen.set(request.peerId, { at: now, name: request.name })
    for (const peerId of runtime.joinRequestsSeen.keys()) {
      if (runtime.joinRequestsSeen.size <= MAX_JOIN_REQUESTERS) break
      runtime.joinRequestsSeen.delete(peerId)
    }
    this.#persist('a join request', () =>
      this.#store.upsertPeer({ peerId: request.peerId, name: request.name }),
    )
    this.safeDispatchEvent('join:request', {
      detail: { group: group.id, peerId: request.peerId, name: request.name },
    })
    return 'accept'
  }

  #reject(group: Group, from: string, error: Error): void {
    log('rejected input for %s from %s: %s: %s', group.id, from, error.name, error.message)
    this.safeDispatchEvent('message:reject', {
      detail: { group: group.id, from, reason: `${error.name}: ${error.message}` },
    })
  }

  #emitMembership(group: Group, event: SignedEvent | undefined): void {
    const change = event === undefined ? undefined : group.describe(event)
    const ref = (peerId: string): PeerRef => ({ peerId, name: this.#nameOf(peerId, group) ?? '' })
    this.safeDispatchEvent('membership:change', {
      detail: {
        group: group.id,
        members: group.members().map((m) => ({ peerId: m.id, name: m.name })),
        change:
          change === undefined
            ? null
            : { action: change.action, by: ref(change.by), member: ref(change.member) },
      },
    })
  }

  #emitRename(group: Group, rename: Rename): void {
    const member = { peerId: rename.member, name: rename.to }
    this.safeDispatchEvent('membership:change', {
      detail: {
        group: group.id,
        members: group.members().map((m) => ({ peerId: m.id, name: m.name })),
        change: { action: 'rename', by: member, member, from: rename.from },
      },
    })
  }

  /**
   * Checks the key this member holds in the current epoch. One that does not open, or is not the key its
   * author committed to, makes the epoch unusable here: the user is told who chose it, and this member
   * rekeys at once rather than waiting for its turn, since nobody else can tell.
   */
  #checkEpochKey(runtime: GroupRuntime): void {
    const { group } = runtime
    if (!group.isMember() || this.#life.stopping) return
    group
      .currentKeyProblem()
      .then(async (problem) => {
        if (problem === undefined || runtime.badEpochHandled === problem.epoch || this.#life.stopping) return
        runtime.badEpochHandled = problem.epoch
        log.error(
          'group %s: epoch %s by %s is unusable: %s',
          group.id,
          problem.epoch,
          problem.author,
          problem.reason,
        )
        this.safeDispatchEvent('epoch:bad-key', {
          detail: {
            group: group.id,
            epoch: problem.epoch,
            author: { peerId: problem.author, name: this.#nameOf(problem.author, group) ?? '' },
            reason: problem.reason,
          },
        })
        if (!group.isMember()) return
        await this.#commitLocalEvent(runtime, await group.rekey())
      })
      .catch((err: unknown) =>
        log.error('checking the epoch key of %s failed: %s', group.id, (err as Error).message),
      )
  }

  /**
   * Takes up this node's display name in every group it is a member of where it is known by another one:
   * `--name` given with an existing data directory is a rename, signed and shown to everyone.
   */
  async #claimName(runtime: GroupRuntime): Promise<void> {
    const { group } = runtime
    const current = group.memberMap().get(this.peerId)?.name
    if (current === undefined || current === this.name || this.#life.stopping) return
    const event = await group.rename(this.name)
    await this.#commitLocalEvent(runtime, event, { member: this.peerId, from: current, to: this.name })
  }

  /**
   * When concurrent changes left the epoch key with a non-member or without a member, one member rekeys:
   * the first in the deterministic order at once, the k-th only after k delays if still needed.
   */
  #scheduleRekey(runtime: GroupRuntime): void {
    const { group } = runtime
    if (runtime.rekeyTimer !== undefined || this.#life.stopping || !group.needsRekey()) return
    const rank = group.rekeyRank()
    if (rank < 0) return
    const delay = rank * (this.#init.rekeyDelayMs ?? 3000) + 50
    runtime.rekeyTimer = setTimeout(() => {
      runtime.rekeyTimer = undefined
      if (this.#life.stopping || !group.needsRekey() || !group.isMember()) return
      group
        .rekey()
        .then((event) => this.#commitLocalEvent(runtime, event))
        .catch((err: unknown) => log.error('rekey of %s failed: %s', group.id, (err as Error).message))
    }, delay)
    runtime.rekeyTimer.unref?.()
  }

  /**
   * Dials again the bootstrap peers (relays) we are not connected to: libp2p announces the list only
   * once at start, so a relay that restarted would otherwise never be reached again.
   */
  #redialBootstrap(): void {
    const libp2p = this.#libp2p
    if (libp2p === undefined || this.#life.stopping) return
    for (const addr of this.#init.bootstrap ?? []) {
      let target: ReturnType<typeof multiaddr>
      try {
        target = multiaddr(addr)
      } catch {
        continue
      }
      const peer = target.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (peer === undefined || libp2p.getPeers().some((p) => p.toString() === peer)) continue
      libp2p.dial(target, { signal: this.#abort.signal }).catch((err: unknown) => {
        log('bootstrap peer %s still unreachable: %s', addr, (err as Error).message)
      })
    }
  }

  #antiEntropy(): void {
    try {
      // what waited too long for parents or epochs goes, even when nothing new arrives to push it out
      this.#pendingBudget.expire()
      // a join request lost on the way (a relay not yet forwarding, say) is repeated until someone adds us
      for (const runtime of this.#groups.values()) this.#announceJoin(runtime)
      this.#redialBootstrap()
      const peers = this.#libp2p?.getPeers() ?? []
      if (peers.length === 0) return
      const peer = peers[Math.floor(Math.random() * peers.length)] as PeerId
      for (const id of this.#groups.keys()) this.#syncWith(peer, id)
    } catch (err) {
      log.error('anti-entropy round failed: %s', (err as Error).message)
    }
  }

  /**
   * Syncs one group with one peer in the background; one sync per (peer, group) at a time, and at most
   * {@link SYNCS_PER_PEER} per peer. A sync that stopped at the peer's budget is followed by another at
   * once, up to {@link MAX_SYNC_ROUNDS}.
   */
  #syncWith(peer: PeerId, groupId: string): void {
    const libp2p = this.#libp2p
    const runtime = this.#groups.get(groupId)
    if (libp2p === undefined || runtime === undefined || this.#life.stopping) return
    const key = `${peer.toString()}|${groupId}`
    if (this.#syncing.has(key)) {
      // the running sync may have judged or read too early for what asked for this one (e.g. the peer
      // was sent nothing before our add of it arrived): run once more after it
      this.#syncAgain.add(key)
      return
    }
    this.#syncing.add(key)
    const rounds = async (): Promise<void> => {
      for (let round = 1; !this.#life.stopping; round++) {
        const result = await syncWithPeer(
          libp2p,
          peer,
          this,
          runtime.group,
          this.#abort.signal,
          this.#init.syncLimits,
        )
        log('synced %s with %p: %d messages', groupId, peer, result.messagesReceived)
        if (!result.known || !(result.more || result.messagesReceived >= MAX_SYNC_MESSAGES)) return
        if (round >= MAX_SYNC_ROUNDS) {
          log('%s: %d full syncs with %p in a row; the rest waits for the next round', groupId, round, peer)
          return
        }
      }
    }
    this.#syncQueue(peer.toString())
      .add(rounds)
      .catch((err: unknown) => {
        if (!this.#life.stopping) log('sync of %s with %p failed: %s', groupId, peer, (err as Error).message)
      })
      .finally(() => {
        this.#syncing.delete(key)
        if (this.#syncAgain.delete(key)) this.#syncWith(peer, groupId)
      })
  }

  /** The queue of syncs with `peer`, dropped once it runs empty. */
  #syncQueue(peer: string): Queue<void> {
    let queue = this.#syncQueues.get(peer)
    if (queue === undefined) {
      const created = new Queue<void>({ concurrency: SYNCS_PER_PEER })
      created.addEventListener('idle', () => {
        if (this.#syncQueues.get(peer) === created) this.#syncQueues.delete(peer)
      })
      this.#syncQueues.set(peer, created)
      queue = created
    }
    return queue
  }

  // SyncReplica

  /** @internal */
  group(groupId: string): Group | undefined {
    const runtime = this.#groups.get(groupId)
    if (runtime !== undefined) return runtime.group
    // another spelling of the same CID
    const canonical = canonicalGroupId(groupId)
    return canonical === undefined ? undefined : this.#groups.get(canonical)?.group
  }

  /** @internal What `remote` may be sent of `group`: see `sync-access.ts`. */
  access(group: Group, remote: string): Promise<SyncAccess> {
    return accessOf(group, remote, {
      libp2p: this.#libp2p,
      configured: this.#bootstrapIds,
      signal: this.#abort.signal,
    })
  }

  /** @internal A member of one of this node's groups, or a bootstrap peer. */
  isKnownPeer(remote: string): boolean {
    return isKnownPeer(
      [...this.#groups.values()].map((runtime) => runtime.group),
      this.#bootstrapIds,
      remote,
    )
  }

  /** @internal */
  wantedEpochs(group: Group): string[] {
    // only epochs this member holds keys for: older ciphertext would be noise to it
    return [...epochsSealedTo(group, this.peerId)]
  }

  /** @internal The store, as the source of envelopes for sync. */
  get messageSource(): ChatStore {
    return this.#store
  }

  /** @internal Peer exchange: the group's other subscribers this node knows that are members. */
  async peersOf(group: Group, remote: string): Promise<PeerHint[]> {
    return this.#libp2p === undefined
      ? []
      : subscriberHints(this.#libp2p, topicOf(group.id), remote, (id) => group.isMember(id))
  }

  /** @internal Dials the members a member or configured relay named (sync has checked both). */
  acceptPeers(_group: Group, peers: PeerHint[], _remote: string): void {
    if (this.#libp2p !== undefined && !this.#life.stopping) dialHints(this.#libp2p, peers, this.#abort.signal)
  }

  /** @internal Never throws: a failure is logged. */
  acceptEvent(group: Group, bytes: Uint8Array, remote: string): void {
    const runtime = this.#groups.get(group.id)
    if (runtime === undefined) return
    try {
      this.#applyEvent(runtime, bytes, remote)
    } catch (err) {
      log.error('event of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }

  /** @internal Never rejects: a failure is logged. */
  async acceptMessage(group: Group, bytes: Uint8Array, remote: string): Promise<void> {
    const runtime = this.#groups.get(group.id)
    if (runtime === undefined) return
    try {
      await this.#onMessage(runtime, bytes, remote)
    } catch (err) {
      log.error('message of %s from %s failed: %s', group.id, remote, (err as Error).message)
    }
  }
}

/** A connection gater that refuses outbound dials to, and connections in either direction with, `deny`. */
function gaterDenying(deny: (peerId: string) => boolean): ConnectionGater {
  return {
    denyDialPeer: (peerId) => deny(peerId.toString()),
    denyInboundEncryptedConnection: (peerId) => deny(peerId.toString()),
    denyOutboundEncryptedConnection: (peerId) => deny(peerId.toString()),
  }
}

function isPeerId(ref: string): boolean {
  try {
    peerIdFromString(ref)
    return true
  } catch {
    return false
  }
}

/**
 * Locks `init.dataDir` for this process, opens (creating on first use) the identity and database in it,
 * and returns a node that is not yet networking; call {@link ChatNode.start}.
 *
 * @throws {DataDirLockedError} another running p2pchat process uses the data directory
 * @throws {InsecureIdentityKeyError} `identity.key` is readable or writable by other users
 */
export async function createChatNode(init: ChatNodeInit): Promise<ChatNode> {
  const lock = lockDataDir(init.dataDir)
  let store: ChatStore | undefined
  try {
    const identity = await loadOrCreateIdentity(init.dataDir)
    store = ChatStore.open(init.dataDir)
    return new ChatNode(init, identity, store, lock)
  } catch (err) {
    store?.close()
    lock.release()
    throw err
  }
}
