import type { AbortOptions, Logger } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import type { Identity } from '../crypto/index.js'
import { type Group, PendingBudget } from '../membership/index.js'
import type {
  ChatMessage,
  ChatNodeEvents,
  ChatNodeInit,
  ChatStatus,
  GroupStanding,
  GroupSummary,
  PeerRef,
  SendResult,
} from './chat-events.js'
import type { ChatGroup } from './chat-group.js'
import { ChatReplica } from './chat-replica.js'
import type { ChatNodeComponents } from './components.js'
import { Connections } from './connections.js'
import { NodeStoppedError } from './errors.js'
import { GroupRegistry } from './group-registry.js'
import { decodeInvite } from './invite.js'
import type { InviteOptions } from './invite-check.js'
import { Lifecycle, openNode } from './lifecycle.js'
import type { DataDirLock } from './lock.js'
import { type WiredNode, wireNode } from './node-wiring.js'
import { isWorthKeeping, rememberListenPort, stableListen, worthRedialling } from './peer-addresses.js'
import { PeerDirectory } from './peer-directory.js'
import { groupStatus, saveStatusSnapshots } from './status-snapshot.js'
import { type ChatStore, persist } from './store.js'
import { handleSync } from './sync.js'
import { bootstrapPeerIds } from './sync-access.js'
import type { TransportNode } from './transport.js'

/**
 * A p2pchat peer: identity, database, libp2p node, and the groups it takes part in. A facade: each group
 * is a {@link ChatGroup} over its {@link GroupTopic}; a {@link SyncScheduler} decides when to sync and a
 * {@link PeerDirectory} who is who. Which group a user looks at is the user interface's business: every
 * method names its group.
 *
 * @example
 * ```ts
 * const node = await createChatNode({ dataDir, name: 'alice' })
 * await node.start()
 * const { id } = await node.createGroup('team')
 * node.addEventListener('message:receive', (e) => console.log(e.detail.text))
 * await node.send(id, 'hello')
 * await node.stop()
 * ```
 */
export class ChatNode extends TypedEventEmitter<ChatNodeEvents> {
  readonly identity: Identity
  readonly name: string
  readonly #init: ChatNodeInit
  readonly #components: ChatNodeComponents
  readonly #log: Logger
  readonly #lock: DataDirLock | undefined
  readonly #groups: GroupRegistry
  readonly #directory: PeerDirectory
  readonly #life = new Lifecycle(() => new NodeStoppedError())
  readonly #abort = new AbortController()
  /** What waits for parents or epochs, over all this node's groups, per sending peer and author. */
  readonly #pendingBudget = new PendingBudget()
  readonly #replica: ChatReplica
  #libp2p: TransportNode | undefined
  #wired: WiredNode | undefined
  /** `init.bootstrap` and the relays remembered from earlier runs' bootstrap lists. */
  readonly #bootstrap: string[]
  /** Dialling by hand, and the relays remembered from `--bootstrap`. */
  readonly connections: Connections

  /**
   * @param lock - the data directory lock taken by {@link createChatNode}; released by {@link ChatNode.stop}
   */
  constructor(init: ChatNodeInit, identity: Identity, components: ChatNodeComponents, lock?: DataDirLock) {
    super()
    this.#init = init
    this.identity = identity
    this.name = init.name
    this.#components = components
    this.#log = components.logger.forComponent('p2pchat:node')
    this.#lock = lock
    this.connections = new Connections({
      store: components.store,
      log: this.#log,
      running: () => (this.#life.stopping ? undefined : this.#libp2p),
      keeper: () => this.#wired?.keeper,
      shutdown: this.#abort.signal,
      ref: (peerId) => this.#directory.ref(peerId),
    })
    this.#bootstrap = this.connections.startRelays(init.bootstrap ?? [], init.forgetRelays)
    const self = { peerId: this.peerId, name: this.name }
    this.#directory = new PeerDirectory({
      self,
      store: components.store,
      chatGroups: () => this.#groups.byId.values(),
    })
    this.#groups = new GroupRegistry(
      {
        ...components,
        identity,
        log: this.#log,
        pendingBudget: this.#pendingBudget,
        chatGroup: {
          ...components,
          self,
          identity,
          directory: this.#directory,
          events: this,
          stopping: () => this.#life.stopping,
          sync: (peerId, groupId, connectedOnly) =>
            this.#wired?.scheduler.syncWith(peerId, groupId, connectedOnly),
          syncConnected: (groupId) => this.#wired?.scheduler.syncConnected(groupId),
        },
      },
      { graceMs: init.graceMs, rekeyDelayMs: init.rekeyDelayMs, joinUnansweredMs: init.joinUnansweredMs },
    )
    this.#replica = new ChatReplica({
      ...components,
      peerId: this.peerId,
      groups: () => this.#groups.byId,
      libp2p: () => this.#libp2p,
      configured: bootstrapPeerIds(this.#bootstrap),
      shutdown: this.#abort.signal,
    })
    this.#groups.load()
  }

  /** This peer's id. */
  get peerId(): string {
    return this.identity.memberId
  }

  /** The libp2p node, once started. */
  get libp2p(): TransportNode | undefined {
    return this.#libp2p
  }

  /** The database; a user interface may keep its own state in its meta table (`getMeta`, `setMeta`). */
  get store(): ChatStore {
    return this.#components.store
  }

  /**
   * Starts networking: listens, discovers peers, subscribes to every group's topic. Idempotent: every
   * call, concurrent ones included, gets the same start. A start that failed can be tried again.
   *
   * @throws {NodeStoppedError} the node was stopped
   */
  start(options: AbortOptions = {}): Promise<void> {
    return this.#life.start(() => this.#start(options))
  }

  async #start(options: AbortOptions): Promise<void> {
    const init = this.#init
    const bootstrap = this.#bootstrap
    const store = this.#components.store
    // without --listen, the port of the last run, so invites given out before this restart still work
    const listen = init.listen ?? (await stableListen(store))
    const transportInit = {
      privateKey: this.identity.privateKey,
      listen,
      bootstrap,
      mdns: init.mdns ?? true,
      listenViaRelay: init.listenViaRelay ?? bootstrap.length > 0,
    }
    const libp2p = await this.#life.startNode(
      () => this.#components.transport(transportInit, options),
      (created) => {
        this.#libp2p = created
      },
      (created) => handleSync(created, this.#replica, this.#abort.signal, init.syncLimits),
    )
    if (libp2p === undefined) return
    persist(this.#log, 'the listen port', () => rememberListenPort(store, this.addrs()))
    // the groups are looked up when used: the first look replays the stored logs (after start resolves)
    const wired = wireNode(libp2p, {
      ...this.#components,
      log: this.#log,
      events: this,
      replica: this.#replica,
      pendingBudget: this.#pendingBudget,
      groups: () => this.#groups.byId.values(),
      bootstrap,
      remembered: () => worthRedialling(store, this.#groups.byId.values(), this.peerId),
      wanted: (peerId) => isWorthKeeping(this.#groups.byId.values(), this.peerId, peerId),
      ref: (peerId) => this.#directory.claimedRef(peerId),
      intervalMs: init.syncIntervalMs,
      limits: init.syncLimits,
      reachabilityGraceMs: init.reachabilityGraceMs,
    })
    this.#wired = wired
    // stored logs replay after start resolves, for `ready` not to wait (see GroupRegistry.restore)
    if (this.#groups.restored) this.#resume(wired)
    else setImmediate(() => this.#resume(wired))
  }

  /** Subscribes to every group's topic (the logs replayed first), starts the sync rounds and the keeper. */
  #resume({ scheduler, keeper }: WiredNode): void {
    if (this.#life.stopping) return
    const groups = [...this.#groups.byId.values()]
    for (const group of groups) this.#subscribe(group)
    scheduler.start()
    keeper.start()
    for (const group of groups) group.resume()
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
    saveStatusSnapshots(this.#groups, this.store, this.#log)
    await this.#life.stopNode(this.#abort, async () => {
      this.#wired?.scheduler.stop()
      this.#wired?.keeper.stop()
      for (const group of this.#groups.opened()) group.stop()
      await this.#libp2p?.stop()
    }, [this.#components.store, this.#lock])
  }

  /** Multiaddrs others can dial, each ending in `/p2p/<peer id>`. */
  addrs(): string[] {
    return (this.#libp2p?.getMultiaddrs() ?? []).map(String)
  }

  /** Peers connected now, with names where known. */
  peers(): PeerRef[] {
    return (this.#libp2p?.getPeers() ?? []).map((peer) => this.#directory.ref(peer.toString()))
  }

  /** Groups this node takes part in, oldest first. */
  groups(): GroupSummary[] {
    return this.#groups.summaries()
  }

  /** Whether this peer founded the group `groupId`. */
  isFounder(groupId: string): boolean {
    return this.#groups.byId.get(groupId)?.group.founder === this.peerId
  }

  /**
   * The group whose id or name is `ref`.
   *
   * @throws {NotInGroupError} no group matches, or the name matches several
   */
  findGroup(ref: string): GroupSummary {
    return this.#groups.find(ref)
  }

  /** Founds a group with this peer as its only member. */
  async createGroup(name: string, options: AbortOptions = {}): Promise<GroupSummary> {
    options.signal?.throwIfAborted()
    const { created, event } = await this.#groups.create(name, this.name)
    this.#subscribe(created)
    created.emitMembership(event)
    return { id: created.group.id, name }
  }

  /**
   * Joins the group of an invite: subscribes to its topic, dials the inviter's addresses, and announces a
   * join request that members see. The peer becomes a member when one of them adds it.
   *
   * @throws {InvalidInviteError}
   */
  async joinGroup(inviteText: string, options: AbortOptions = {}): Promise<GroupSummary> {
    options.signal?.throwIfAborted()
    const invite = decodeInvite(inviteText)
    const joined = this.#groups.join(invite, inviteText)
    this.#subscribe(joined)
    this.connections.reachInviter(invite)
    return { id: invite.groupId, name: invite.groupName }
  }

  /**
   * Dials `addr` (a multiaddr, `/p2p/<peer id>` optional) and remembers it for later starts; see
   * {@link Connections.connect}.
   */
  connect(addr: string, options: AbortOptions = {}): Promise<PeerRef> {
    return this.connections.connect(addr, options)
  }

  /**
   * An invite to the group, signed by this peer, naming the group's founder and carrying this peer's
   * addresses. It admits on its own, once, within `validForMs` (7 days), unless `ask`: see InviteOptions.
   *
   * @throws {NotInGroupError}
   * @throws {GroupNotReadyError} the group's genesis has not arrived yet, so its founder is not known
   */
  invite(groupId: string, options: InviteOptions = {}): string {
    return this.#groups.require(groupId).inviteText(this.addrs(), options)
  }

  /** Current members of the group. @throws {NotInGroupError} */
  members(groupId: string): PeerRef[] {
    return this.#groups.require(groupId).members()
  }

  /** Status for the JSON interface and `/status`, with the group `groupId` (none if undefined). */
  status(groupId?: string): ChatStatus {
    return {
      peerId: this.peerId,
      name: this.name,
      ...groupStatus(this.#groups, this.store, groupId),
      addrs: this.addrs(),
      peers: this.#libp2p?.getPeers().length ?? 0,
    }
  }

  /**
   * The last `limit` readable messages of the group to arrive, in the order they arrived here (the order
   * `message:receive` reported them), each with its sender's time.
   *
   * @throws {NotInGroupError}
   */
  history(groupId: string, limit = 50): ChatMessage[] {
    return this.#groups.require(groupId).history(limit)
  }

  /**
   * Encrypts and sends `text` to the group. It is stored before this resolves, so it survives a crash,
   * and sync delivers it to members who connect later.
   *
   * @throws {NotInGroupError | AccessDeniedError | NoCurrentEpochError | TooLargeError}
   */
  async send(groupId: string, text: string, options: AbortOptions = {}): Promise<SendResult> {
    options.signal?.throwIfAborted()
    return this.#groups.require(groupId).send(text)
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
  async add(groupId: string, ref: string, options: AbortOptions = {}): Promise<PeerRef[]> {
    options.signal?.throwIfAborted()
    return this.#groups.require(groupId).add(ref)
  }

  /**
   * Removes a member by peer id or display name.
   *
   * @throws {NotInGroupError | AccessDeniedError | UnknownMemberError | AmbiguousMemberError}
   */
  async remove(groupId: string, ref: string, options: AbortOptions = {}): Promise<PeerRef[]> {
    options.signal?.throwIfAborted()
    return this.#groups.require(groupId).remove(ref)
  }

  /**
   * Where this peer stands in the group: a member, a joiner not added yet, or a former member (with who
   * removed it and when).
   *
   * @throws {NotInGroupError}
   */
  standing(groupId: string): GroupStanding {
    return this.#groups.require(groupId).standing()
  }

  /**
   * Leaves the group: this peer signs its own removal, and the others rekey without it. It stays in
   * {@link ChatNode.groups}, as a former member, until {@link ChatNode.forget}; it announces no join
   * request unless it {@link ChatNode.rejoin}s.
   *
   * @throws {NotInGroupError | AccessDeniedError}
   * @throws {InvalidArgumentError} this peer is the last member
   */
  async leave(groupId: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.#groups.require(groupId).leave()
  }

  /**
   * Asks to be added again to a group this peer was removed from (or left): its join request is
   * announced from now on, across restarts, until a member adds it. A former member asks nothing
   * without this.
   *
   * @throws {NotInGroupError}
   * @throws {InvalidArgumentError} this peer is a member, or a joiner asking already
   */
  rejoin(groupId: string): void {
    this.#groups.require(groupId).rejoin()
  }

  /**
   * Deletes a group this peer is no member of (removed, left, or never added) from this device: its
   * topic, its stored events and messages.
   *
   * @throws {NotInGroupError}
   * @throws {InvalidArgumentError} this peer is a member: leave first
   */
  forget(groupId: string): void {
    this.#groups.forget(groupId)
  }

  #subscribe(chatGroup: ChatGroup): void {
    const libp2p = this.#libp2p
    if (libp2p === undefined || chatGroup.topic.subscribed) return
    // peers we are already connected to (a relay, say) learn of the group now, not at the next round
    for (const peer of libp2p.getPeers()) this.#wired?.scheduler.sync(peer, chatGroup.group.id)
    chatGroup.subscribe(libp2p.services.pubsub)
  }

  /** A group of this node by id (any spelling of it), from the genesis on or waiting for it. */
  group(groupId: string): Group | undefined {
    return this.#replica.group(groupId)
  }

  /** @internal This node as the sync protocol sees it. */
  get replica(): ChatReplica {
    return this.#replica
  }
}

/**
 * Locks `init.dataDir` for this process, opens (creating on first use) the identity and database in it,
 * and returns a node that is not yet networking; call {@link ChatNode.start}.
 *
 * @param components - parts to use instead of the defaults (see `NodeComponents`); a `store` given
 * here is used instead of the database in `dataDir`, and closed by {@link ChatNode.stop}
 * @throws {DataDirLockedError} another running p2pchat process uses the data directory
 * @throws {InsecureIdentityKeyError} `identity.key` is readable or writable by other users
 */
export async function createChatNode(
  init: ChatNodeInit,
  components: Partial<ChatNodeComponents> = {},
): Promise<ChatNode> {
  return openNode(
    init.dataDir,
    components,
    (identity, parts, lock) => new ChatNode(init, identity, parts, lock),
  )
}
