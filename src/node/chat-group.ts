import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { TypedEventEmitter } from 'main-event'
import {
  AccessDeniedError,
  type Envelope,
  type Group,
  InvalidArgumentError,
  type OpenedMessage,
  type ReceiveEventResult,
  type Rename,
  type SignedEvent,
} from '../membership/index.js'
import type {
  ChatMessage,
  ChatNodeEvents,
  GroupStanding,
  GroupStatus,
  PeerRef,
  SendResult,
} from './chat-events.js'
import type { Clock } from './components.js'
import { GroupTopic, type GroupTopicHooks, type Pubsub } from './group-topic.js'
import { GroupUpkeep } from './group-upkeep.js'
import type { Invite } from './invite.js'
import { InviteAdmission, inviteUseFor } from './invite-admission.js'
import { InviteCheck, type InviteOptions } from './invite-check.js'
import { JoinAnnouncer, JoinInbox } from './join-requests.js'
import { MessageInbox, type OpenedEnvelope } from './message-inbox.js'
import type { PeerDirectory } from './peer-directory.js'
import { SelfStanding } from './self-standing.js'
import { shownTime } from './sender-time.js'
import { type ChatStore, persist } from './store.js'
import type { TopicValidationResult } from './transport.js'
import { UnreadableMessages } from './unreadable.js'
import type { JoinRequest } from './wire.js'

/** A requester that asks again after this long is shown again. */
const JOIN_NOTICE_REPEAT_MS = 5 * 60_000

/** What a {@link ChatGroup} is built from: its node's parts. */
export interface ChatGroupComponents {
  self: PeerRef
  identity: Group['identity']
  store: ChatStore
  clock: Clock
  logger: ComponentLogger
  directory: PeerDirectory
  /** The node, which tells its listeners. */
  events: Pick<TypedEventEmitter<ChatNodeEvents>, 'safeDispatchEvent'>
  /** Whether the node is stopping: background work checks it before doing more. */
  stopping(): boolean
  /** Syncs this group with `peerId` in the background (when `connectedOnly`, only if connected now). */
  sync(peerId: string, groupId: string, connectedOnly?: boolean): void
  /** Syncs this group with every peer connected now, in the background. */
  syncConnected(groupId: string): void
}

/** Options of a {@link ChatGroup}. */
export interface ChatGroupInit {
  group: Group
  /** The invite this peer joined with, if it joined by one. */
  invite?: Invite
  /** Delay per rank before a member not first in line issues a due rekey, in ms. Default 3000. */
  rekeyDelayMs?: number
  /** See `JoinAnnouncerInit.unansweredMs`. */
  joinUnansweredMs?: number
}

/**
 * One group as a chat node takes part in it: what the core accepted on its topic is stored, then told
 * to the node's listeners; local changes are signed, stored, published; due rekeys are issued; a join
 * request is announced while this peer is no member, and others' are taken in.
 */
export class ChatGroup implements GroupTopicHooks {
  readonly group: Group
  readonly topic: GroupTopic
  readonly joins: JoinInbox
  invite: Invite | undefined
  readonly #c: ChatGroupComponents
  readonly #log: Logger
  readonly #announcer: JoinAnnouncer
  readonly #standing: SelfStanding
  readonly #upkeep: GroupUpkeep
  readonly #invites: InviteCheck
  readonly #admission: InviteAdmission
  readonly #unreadable = new UnreadableMessages()
  readonly #inbox: MessageInbox
  /** Set once the node forgot the group: nothing more is stored for it. */
  #forgotten = false

  constructor(components: ChatGroupComponents, init: ChatGroupInit) {
    this.#c = components
    this.#log = components.logger.forComponent('p2pchat:node')
    this.group = init.group
    this.invite = init.invite
    this.topic = new GroupTopic(components, { group: init.group, hooks: this })
    this.joins = new JoinInbox(components, { renewAfterMs: JOIN_NOTICE_REPEAT_MS, nameChangeIsNew: true })
    const invite = () => inviteUseFor(components.identity, this.invite)
    this.#announcer = new JoinAnnouncer(
      { ...components, topic: this.topic },
      {
        name: components.self.name,
        invite,
        onUnanswered: (waitedMs) => this.#unanswered(waitedMs),
        ...(init.joinUnansweredMs === undefined ? {} : { unansweredMs: init.joinUnansweredMs }),
      },
    )
    const parts = { ...components, group: init.group, log: this.#log }
    this.#admission = new InviteAdmission({ ...parts, topic: this.topic, commit: (e) => this.#commit(e) })
    this.#standing = new SelfStanding(parts)
    this.#inbox = new MessageInbox(parts)
    this.#invites = new InviteCheck(parts)
    this.#upkeep = new GroupUpkeep(
      { ...parts, commit: (event, renamed) => this.#commit(event, renamed) },
      init.rekeyDelayMs === undefined ? {} : { rekeyDelayMs: init.rekeyDelayMs },
    )
  }

  #unanswered(waitedMs: number): void {
    const { invite } = this
    const detail = { group: this.group.id, waitedMs, admits: invite?.admits !== undefined }
    this.#c.events.safeDispatchEvent('join:unanswered', {
      detail: { ...detail, inviter: invite?.inviter ?? null },
    })
  }

  /** Subscribes to the topic and announces the join request (if this peer is no member). */
  subscribe(pubsub: Pubsub): void {
    if (this.topic.subscribed) return
    this.topic.subscribe(pubsub)
    this.announce()
  }

  /**
   * Announces this peer's join request, if it is due; see {@link JoinAnnouncer}. A former member (removed,
   * or left) announces nothing unless it asked to come back ({@link ChatGroup.rejoin}): being removed is
   * no request to be added again.
   */
  announce(): void {
    if (this.#forgotten || (this.#standing.formerMember() && !this.#standing.rejoining())) return
    void this.#announcer.announce()
  }

  /** Where this peer stands; see {@link SelfStanding}. */
  standing(): GroupStanding {
    return this.#standing.current()
  }

  /**
   * Leaves the group: signs and publishes this peer's own removal. The others rekey without it, so it
   * reads nothing sent after this; it announces no join request unless it {@link ChatGroup.rejoin}s.
   *
   * @throws {AccessDeniedError} this peer is no member
   * @throws {InvalidArgumentError} it is the last member
   */
  async leave(): Promise<void> {
    this.#requireLog('leave it')
    await this.#commit(await this.group.remove(this.#c.self.peerId))
  }

  /**
   * Asks again to be added, as a former member: announces the join request from now on (across
   * restarts) until a member adds this peer.
   *
   * @throws {InvalidArgumentError} this peer is a member, or was never one (it is asking already)
   */
  rejoin(): void {
    this.#standing.rejoin()
    this.announce()
  }

  /**
   * Stops the group for good, as the node forgets it: leaves its topic, drops what waits for it, and
   * stores nothing more of it (a sync still running may deliver more).
   */
  forget(): void {
    this.#forgotten = true
    this.stop({ unsubscribe: true })
    this.group.clearPending()
    this.#standing.forget()
  }

  /** What waits from the last session: a due rekey, a bad key, a name to take up, a forged invite. */
  resume(): void {
    // a rekey that was due when this node stopped is not left for the next event to trigger
    this.#upkeep.scheduleRekey()
    this.#upkeep.checkEpochKey()
    this.#upkeep
      .claimName()
      .catch((err: unknown) =>
        this.#log.error('renaming in %s failed: %s', this.group.id, (err as Error).message),
      )
    this.checkInvite()
  }

  /** Stops the topic (with `unsubscribe`, leaves it too), the announcements and a rekey waiting. */
  stop(options: { unsubscribe?: boolean } = {}): void {
    this.#upkeep.stop()
    this.#announcer.stop()
    this.#admission.stop()
    this.topic.stop(options)
  }

  // what the core accepted on the topic (GroupTopicHooks)

  /** @internal Stores and notifies applied events; rekeys if due. */
  eventsApplied(result: ReceiveEventResult, _from: string): void {
    if (this.#forgotten) return
    const { group } = this
    const { store } = this.#c
    for (const event of result.applied) {
      persist(this.#log, 'an event', () => {
        store.addEvent(group.id, event.id, event.bytes)
        if (event.payload.type === 'genesis') store.saveGroup({ id: group.id, name: group.name ?? null })
      })
      if (event.payload.type === 'genesis') this.checkInvite()
      if (event.payload.type === 'add' && event.subject !== undefined) this.joins.answered(event.subject)
    }
    this.#standing.note()
    if (result.membersChanged)
      this.emitMembership(result.applied.findLast((e) => e.payload.type !== 'rename'))
    for (const rename of result.renamed) this.#emitRename(rename)
    if (result.applied.length > 0) {
      this.#upkeep.scheduleRekey()
      this.#upkeep.checkEpochKey()
    }
  }

  /** @internal Stores an opened message, then shows it (see {@link MessageInbox}). */
  messageOpened(opened: OpenedMessage, bytes: Uint8Array, _from: string): TopicValidationResult {
    if (this.#forgotten) return 'ignore'
    return this.#inbox.keep([{ opened, bytes }])[0] === true ? 'accept' : 'ignore'
  }

  /**
   * Envelopes sync brought in one frame: each judged as gossip's are, then those opened stored with one
   * commit and only then shown. A bad one is refused alone; the others are kept. `pace` is awaited
   * between envelopes (sync's, which lets the event loop turn).
   */
  async receiveMessages(
    items: readonly Uint8Array[],
    from: string,
    pace: () => Promise<void> = async () => {},
  ): Promise<void> {
    const opened: OpenedEnvelope[] = []
    for (const bytes of items) {
      const result = await this.topic.openMessage(bytes, from)
      if (typeof result !== 'string') opened.push({ opened: result, bytes })
      await pace()
    }
    if (!this.#forgotten) this.#inbox.keep(opened)
  }

  /** @internal Ciphertext of the group while this peer holds no log of it: shown, once, as such. */
  unreadable(envelope: Envelope): void {
    const notice = this.#unreadable.notice(this.group.id, envelope)
    if (notice !== undefined) this.#c.events.safeDispatchEvent('message:encrypted', { detail: notice })
  }

  /** @internal A new requester is stored and shown; a repeat is forwarded only (see {@link JoinInbox}). */
  joinRequested(request: JoinRequest, _from: string): TopicValidationResult {
    const verdict = this.joins.receive(request)
    if (verdict === 'too-soon') return 'ignore'
    if (verdict === 'rate-limited') {
      this.#log(
        'too many join requests a minute for %s: ignoring the one from %s',
        this.group.id,
        request.peerId,
      )
      return 'ignore'
    }
    // a joiner with an invite this member admits by is no request for the user to answer
    if (this.#admission.offer(request) || verdict !== 'new') return 'accept'
    const { peerId, name } = request
    persist(this.#log, 'a join request', () => this.#c.store.upsertPeer({ peerId, name }))
    this.#c.events.safeDispatchEvent('join:request', { detail: { group: this.group.id, peerId, name } })
    return 'accept'
  }

  /** @internal */
  lagging(from: string): void {
    this.#c.sync(from, this.group.id)
  }

  /** @internal */
  rejected(from: string, error: Error): void {
    this.#log('rejected input for %s from %s: %s: %s', this.group.id, from, error.name, error.message)
    this.#c.events.safeDispatchEvent('message:reject', {
      detail: { group: this.group.id, from, reason: `${error.name}: ${error.message}` },
    })
  }

  // the public API's work on this group

  /**
   * Encrypts, stores (before this resolves, so it survives a crash), publishes and shows `text`.
   *
   * @throws {AccessDeniedError | NoCurrentEpochError | TooLargeError}
   */
  async send(text: string): Promise<SendResult> {
    const { group } = this
    this.#requireLog('send messages')
    const sealed = await group.seal(text)
    const { self } = this.#c
    this.#c.store.addMessage({
      groupId: group.id,
      id: sealed.id,
      sender: self.peerId,
      seq: sealed.seq,
      epoch: sealed.epoch,
      receivedAt: this.#c.clock.now(),
      bytes: sealed.bytes,
      text,
      ts: sealed.ts,
    })
    const recipients = await this.#publish({ kind: 'message', data: sealed.bytes })
    if (recipients === 0) this.#c.syncConnected(group.id)
    this.#c.events.safeDispatchEvent('message:receive', {
      detail: { group: group.id, id: sealed.id, from: self.peerId, name: self.name, text, ts: sealed.ts },
    })
    return { id: sealed.id, ts: sealed.ts, recipients }
  }

  /** @throws see {@link ChatNode.add} */
  async add(ref: string): Promise<PeerRef[]> {
    const { group } = this
    const { self } = this.#c
    this.#requireLog('add members')
    // the same check the core makes, first, so a non-member learns nothing about who is known
    if (!group.isMember()) await group.add(self.peerId, self.name)
    const target = this.#c.directory.resolvePeer(ref, group)
    if (group.isMember(target.peerId)) throw new InvalidArgumentError(`${target.name} is already a member`)
    await this.#commit(await group.add(target.peerId, target.name))
    return this.members()
  }

  /** @throws see {@link ChatNode.remove} */
  async remove(ref: string): Promise<PeerRef[]> {
    const { group } = this
    this.#requireLog('remove members')
    if (!group.isMember()) await group.remove(this.#c.self.peerId)
    const target = this.#c.directory.resolveMember(ref, group)
    await this.#commit(await group.remove(target.id))
    return this.members()
  }

  members(): PeerRef[] {
    return this.group.members().map((m) => ({ peerId: m.id, name: m.name }))
  }

  history(limit: number): ChatMessage[] {
    const { group } = this
    return this.#c.store.history(group.id, limit).map((m) => ({
      group: group.id,
      id: m.id,
      from: m.sender,
      name: this.#c.directory.nameOf(m.sender, group) ?? '',
      text: m.text ?? '',
      // an older p2pchat stored sender times as they came
      ts: m.ts === null ? m.receivedAt : shownTime(m.ts, m.receivedAt),
    }))
  }

  /** @throws {GroupNotReadyError} the genesis has not arrived yet, so the founder is not known */
  inviteText(addrs: string[], options: InviteOptions = {}): string {
    return this.#invites.inviteText(addrs, options)
  }

  /** The group as `status` shows it; `storedName` stands in for the name until the genesis is here. */
  status(storedName: string): GroupStatus {
    return { id: this.group.id, name: this.group.name ?? storedName, ...this.#invites.status(this.invite) }
  }

  /** Warns when the genesis is here and contradicts the invite this peer joined with. */
  checkInvite(): void {
    this.#invites.check(this.invite)
  }

  /** Tells listeners of a change of members; `event` explains it, when one does. */
  emitMembership(event: SignedEvent | undefined): void {
    const { group } = this
    const change = event === undefined ? undefined : group.describe(event)
    const ref = (peerId: string): PeerRef => this.#c.directory.ref(peerId, group)
    this.#c.events.safeDispatchEvent('membership:change', {
      detail: {
        group: group.id,
        members: this.members(),
        change:
          change === undefined
            ? null
            : { action: change.action, by: ref(change.by), member: ref(change.member) },
      },
    })
  }

  #emitRename(rename: Rename): void {
    const member = { peerId: rename.member, name: rename.to }
    this.#c.events.safeDispatchEvent('membership:change', {
      detail: {
        group: this.group.id,
        members: this.members(),
        change: { action: 'rename', by: member, member, from: rename.from },
      },
    })
  }

  /**
   * A group whose log has not arrived is one this peer was not added to yet, as far as it knows: members
   * send the log only to members (see `sync-access.ts`). Says so in the words the core uses for a
   * non-member, with the name the invite gave.
   */
  #requireLog(action: string): void {
    if (this.group.ready) return
    const name = this.#c.store.groups().find((g) => g.id === this.group.id)?.name ?? this.group.id.slice(-8)
    throw new AccessDeniedError(`Access denied: you are not a member of ${name}, so you cannot ${action}`)
  }

  async #publish(frame: Parameters<GroupTopic['publish']>[0]): Promise<number> {
    return this.#c.stopping() ? 0 : this.topic.publish(frame)
  }

  /** Stores, notifies and publishes an event this peer signed. */
  async #commit(event: SignedEvent, renamed?: Rename): Promise<void> {
    this.#c.store.addEvent(this.group.id, event.id, event.bytes)
    this.#standing.note()
    if (renamed !== undefined) this.#emitRename(renamed)
    else if (event.payload.type !== 'rekey') this.emitMembership(event)
    this.#upkeep.scheduleRekey()
    // gossip reached nobody (no subscriber seen yet, e.g. just connected): sync carries it instead
    if ((await this.#publish({ kind: 'event', data: event.bytes })) === 0)
      this.#c.syncConnected(this.group.id)
    // the peer just added was sent nothing of the group while it was no member: it is owed the log now
    if (event.payload.type === 'add' && event.subject !== undefined) {
      this.joins.answered(event.subject)
      this.#c.sync(event.subject, this.group.id, true)
    }
  }
}
