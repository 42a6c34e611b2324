import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import type { Identity } from '../crypto/index.js'
import { dutyRank } from './duty.js'
import { commitToKey, EpochKeyring, sealDerivedAddKey, sealEpochKey } from './epoch-keys.js'
import { AccessDeniedError, InvalidArgumentError } from './errors.js'
import {
  compareBytes,
  EVENT_VERSION,
  type EventPayload,
  type EventType,
  isValidName,
  memberIdFromString,
  readEventHead,
  type SignedEvent,
  signEvent,
} from './event.js'
import { GroupMessages } from './group-messages.js'
import {
  type CreateGroupInit,
  DEFAULT_GRACE_MS,
  type EpochKeyProblem,
  type GroupInit,
  type MembershipChange,
  type OpenedMessage,
  type ReceiveEventOptions,
  type ReceiveEventResult,
  type ReceiveOptions,
  type SealedMessage,
} from './group-types.js'
import { decodeInviteUse } from './invite-token.js'
import { isEpoch, type LogEntry, type MemberInfo, type MemberMap, MembershipLog } from './log.js'
import { sharedPendingBudget } from './pending.js'
import { describeChange, renamesBetween, sameMembers } from './resolution.js'

export * from './group-types.js'
/** Kept here, where tests and fixtures import it from. */
export { commitToKey }

/**
 * One group as seen by one identity: the membership log, the epoch keys this identity holds, and the
 * sealing and opening of message envelopes.
 *
 * @example
 * ```ts
 * const { group: team } = await Group.create({ identity: alice, name: 'team', memberName: 'alice' })
 * const addBob = await team.add(bob.memberId, 'bob')
 * const bobsView = new Group({ identity: bob, groupId: team.id })
 * for (const e of team.events()) bobsView.receiveEvent(e.bytes)
 * const sealed = await team.seal('hello')
 * const opened = await bobsView.open(sealed.bytes) // { kind: 'message', text: 'hello', ... }
 * ```
 */
export class Group {
  readonly id: string
  readonly identity: Identity
  readonly #cid: CID
  readonly #log: MembershipLog
  readonly #keys: EpochKeyring
  readonly #messages: GroupMessages
  readonly #ciphertextOnly: boolean

  constructor(init: GroupInit) {
    this.identity = init.identity
    try {
      this.#cid = CID.parse(init.groupId)
    } catch {
      throw new InvalidArgumentError(`not a group id: ${init.groupId.slice(0, 80)}`)
    }
    this.id = this.#cid.toString()
    this.#log = new MembershipLog({
      groupId: this.id,
      ...(init.maxPendingEvents === undefined ? {} : { maxPending: init.maxPendingEvents }),
      ...(init.maxPendingBytes === undefined ? {} : { maxPendingBytes: init.maxPendingBytes }),
      ...(init.pendingBudget === undefined ? {} : { pendingBudget: init.pendingBudget }),
    })
    this.#ciphertextOnly = init.ciphertextOnly === true
    this.#keys = new EpochKeyring(this.identity, this.#ciphertextOnly)
    this.#messages = new GroupMessages({
      groupId: this.id,
      cid: this.#cid,
      identity: this.identity,
      log: this.#log,
      keys: this.#keys,
      now: init.now ?? Date.now,
      graceMs: init.graceMs ?? DEFAULT_GRACE_MS,
      budget: init.pendingBudget ?? sharedPendingBudget(),
      maxPending: init.maxPendingMessages ?? 1024,
    })
  }

  /** Founds a new group with `identity` as its only member. */
  static async create(init: CreateGroupInit): Promise<{ group: Group; event: SignedEvent }> {
    if (!isValidName(init.name))
      throw new InvalidArgumentError('group name must be 1-64 printable characters')
    if (!isValidName(init.memberName))
      throw new InvalidArgumentError('display name must be 1-64 printable characters')
    const base = {
      v: EVENT_VERSION,
      type: 'genesis' as const,
      group: null,
      author: init.identity.memberIdBytes,
      parents: [],
      subject: init.identity.memberIdBytes,
      subjectName: init.memberName,
      groupName: init.name,
      nonce: new Uint8Array(randomBytes(16)),
    }
    const sealed = await sealEpochKey(base, [init.identity.memberIdBytes])
    const event = signEvent(init.identity, { ...base, ...sealed })
    const group = new Group({ ...init, groupId: event.id })
    group.receiveEvent(event.bytes)
    return { group, event }
  }

  /** True once the genesis is known. */
  get ready(): boolean {
    return this.#log.genesis !== undefined
  }

  /** The group's name, once the genesis is known. */
  get name(): string | undefined {
    return this.#log.genesis?.event.payload.groupName
  }

  /** The founder's member id, once the genesis is known. */
  get founder(): string | undefined {
    return this.#log.genesis?.event.author
  }

  /** Current members, sorted by name then id. */
  members(): MemberInfo[] {
    return [...this.#log.members().values()].sort((a, b) =>
      a.name === b.name ? (a.id < b.id ? -1 : 1) : a.name < b.name ? -1 : 1,
    )
  }

  /** The resolved member map, keyed by peer id. */
  memberMap(): MemberMap {
    return this.#log.members()
  }

  /** Whether `memberId` (default: this identity) is a current member. */
  isMember(memberId: string = this.identity.memberId): boolean {
    return this.#log.members().has(memberId)
  }

  /** The last display name any event gave `memberId`, member or not. */
  nameOf(memberId: string): string | undefined {
    const current = this.#log.members().get(memberId)
    if (current !== undefined) return current.name
    const entries = this.#log.entries()
    for (let i = entries.length - 1; i >= 0; i--) {
      const { event } = entries[i] as LogEntry
      if (event.subject === memberId && event.payload.subjectName !== undefined)
        return event.payload.subjectName
    }
    return undefined
  }

  /** Ids of the current heads of the membership DAG. */
  heads(): string[] {
    return this.#log.heads().map((h) => h.event.id)
  }

  /** Whether the event is in the log. */
  hasEvent(id: string): boolean {
    return this.#log.has(id)
  }

  /** Whether the event waits for its parents. */
  hasPendingEvent(id: string): boolean {
    return this.#log.hasPending(id)
  }

  /** The event with this id, if in the log. */
  getEvent(id: string): SignedEvent | undefined {
    return this.#log.get(id)?.event
  }

  /** All events, parents before children: the order to store and to send them in. */
  events(): SignedEvent[] {
    return this.#log.entries().map((e) => e.event)
  }

  /**
   * Ids of the epochs whose key is sealed to `memberId`: the epochs it can read. The log checked that each
   * epoch's keys go to exactly the members after it, so this reads those, not the sealed keys.
   */
  epochsSealedTo(memberId: string): Set<string> {
    const epochs = new Set<string>()
    for (const entry of this.#log.entries()) {
      if (isEpoch(entry) && entry.membersAfter.has(memberId)) epochs.add(entry.event.id)
    }
    return epochs
  }

  /** Parents that buffered events wait for; sync asks peers for these. */
  missingEvents(): string[] {
    return this.#log.missingParents()
  }

  /** The current epoch, or `undefined` when a rekey is needed before anyone can send. */
  currentEpoch(): { id: string; members: string[] } | undefined {
    const entry = this.#log.currentEpoch()
    if (entry === undefined) return undefined
    return { id: entry.event.id, members: [...entry.membersAfter.keys()] }
  }

  /** Whether the current epoch key misses a member or reaches a non-member, so a rekey is due. */
  needsRekey(): boolean {
    return this.#log.needsRekey()
  }

  /**
   * This member's place in the deterministic rekey order for the current heads: 0 means "rekey now",
   * k means "rekey only if nobody has after k turns". -1 for non-members. The order is a hash of each
   * member id with the heads, so the duty rotates and all replicas agree on it.
   */
  rekeyRank(memberId: string = this.identity.memberId): number {
    return dutyRank(this.#log.members().keys(), this.heads().join(','), memberId)
  }

  /**
   * Adds `memberId` with display name `name`. Works while they are offline: the new epoch key is sealed
   * to their identity key. `options.invite`: the invite token use (invite-token.ts) it is admitted by.
   *
   * @throws {AccessDeniedError} this identity is not a member
   * @throws {InvalidArgumentError} bad id or name, or already a member
   * @throws {InvalidInviteTokenError} `options.invite` is not a token of this group proved for `memberId`
   */
  async add(memberId: string, name: string, options: { invite?: Uint8Array } = {}): Promise<SignedEvent> {
    this.#requireMember('add members')
    const subject = memberIdFromString(memberId)
    if (!isValidName(name)) throw new InvalidArgumentError('display name must be 1-64 printable characters')
    if (this.isMember(memberId)) throw new InvalidArgumentError(`${name} is already a member`)
    const after = [...this.#log.members().keys(), memberId]
    const { invite } = options
    // checked here, as decoding checks it at every other replica: this node applies its own event as
    // it made it, without decoding it again
    if (invite !== undefined) decodeInviteUse(invite, { group: this.id, joiner: subject })
    return this.#author('add', after, { subject, subjectName: name, ...(invite ? { invite } : {}) })
  }

  /** Whether an add of this group's log used the invite token `tokenId` (invite-token.ts). */
  inviteTokenUsed(tokenId: string): boolean {
    return this.#log.inviteTokenUsed(tokenId)
  }

  /**
   * Removes `memberId`. The new epoch key is sealed to everyone else, so they read nothing after this.
   *
   * @throws {AccessDeniedError} this identity is not a member
   * @throws {InvalidArgumentError} `memberId` is not a member
   */
  async remove(memberId: string): Promise<SignedEvent> {
    this.#requireMember('remove members')
    const subject = memberIdFromString(memberId)
    if (!this.isMember(memberId)) throw new InvalidArgumentError(`${memberId} is not a member`)
    const after = [...this.#log.members().keys()].filter((id) => id !== memberId)
    if (after.length === 0) {
      throw new InvalidArgumentError(
        'you are the last member: removing yourself would leave the group with nobody',
      )
    }
    return this.#author('remove', after, { subject })
  }

  /**
   * Starts a new epoch for the current members without changing them; merges all current heads.
   *
   * @throws {AccessDeniedError} this identity is not a member
   */
  async rekey(): Promise<SignedEvent> {
    this.#requireMember('rekey the group')
    return this.#author('rekey', [...this.#log.members().keys()], {})
  }

  /**
   * Changes this member's own display name, with a signed event every replica shows. Nobody can rename
   * someone else: an add of an existing member is refused everywhere.
   *
   * @throws {AccessDeniedError} this identity is not a member
   * @throws {InvalidArgumentError} a bad name, or the name it already has
   */
  async rename(name: string): Promise<SignedEvent> {
    this.#requireMember('change your name')
    if (!isValidName(name)) throw new InvalidArgumentError('display name must be 1-64 printable characters')
    if (this.#log.members().get(this.identity.memberId)?.name === name)
      throw new InvalidArgumentError(`your name is already ${name}`)
    return this.#author('rename', [], { subjectName: name })
  }

  #requireMember(action: string): void {
    if (!this.ready) throw new AccessDeniedError(`Access denied: the group ${this.id} is not known yet`)
    if (!this.isMember()) {
      throw new AccessDeniedError(
        `Access denied: you are not a member of ${this.name}, so you cannot ${action}`,
      )
    }
  }

  async #author(
    type: Exclude<EventType, 'genesis'>,
    recipients: string[],
    fields: Partial<Pick<EventPayload, 'subject' | 'subjectName' | 'invite'>>,
  ): Promise<SignedEvent> {
    const base = {
      v: EVENT_VERSION,
      type,
      group: this.#cid,
      author: this.identity.memberIdBytes,
      parents: this.#log
        .heads()
        .map((h) => h.event.cid)
        .sort((a, b) => compareBytes(a.bytes, b.bytes)),
      ...fields,
    }
    const sealed = type === 'rename' ? { keys: [] } : await this.#sealKey(base, recipients)
    const event = signEvent(this.identity, { ...base, ...sealed })
    // signed and encoded here just now: no signature or canonical-form check (a tenth of a removal)
    this.receiveEvent(event.bytes, { stored: true, decoded: event })
    return event
  }

  /**
   * A fresh key sealed to every recipient; for an add, when no rekey is due (exactly the members hold the
   * current epoch's key) and this identity has that key, one derived from it, sealed to the newcomer only.
   */
  async #sealKey(payload: Omit<EventPayload, 'keys' | 'keyCommitment'>, recipients: string[]) {
    const current = this.#log.needsRekey() ? undefined : this.#log.currentEpoch()
    const key = payload.type === 'add' && current !== undefined ? this.#keys.groupKey(current) : null
    if (current !== undefined && key !== null) return sealDerivedAddKey(payload, current.event.cid, key)
    // the log has the members' id bytes: base58-decoding 1,000 peer ids cost as much as 250 seals
    const to = recipients.map((id) => this.#log.memberIdBytes(id) ?? memberIdFromString(id))
    return sealEpochKey(payload, to)
  }

  /**
   * Receives an event from the network, sync or storage: checks its size and signature (not those of an
   * event from this node's own store, `options.stored`, checked before it was written), and inserts it
   * into the log, or keeps it until its parents arrive (accounted against `options.from` and its author in
   * the pending budget). Its body is parsed only once it can apply.
   *
   * @throws {TooLargeError | MalformedError | InvalidSignatureError | WrongGroupError | ReplayError |
   *   NotAMemberError | InvalidEpochError | PendingLimitError}
   */
  receiveEvent(bytes: Uint8Array, options: ReceiveEventOptions = {}): ReceiveEventResult {
    const head = readEventHead(bytes, { stored: options.stored === true })
    const before = this.#log.members()
    const result = this.#log.insert(head, options)
    const after = this.#log.members()
    const renamed = renamesBetween(before, after)
    const membersChanged = !sameMembers(before, after)
    const released = result.applied.length > 0 ? this.#messages.eventsApplied(result.applied) : []
    return { ...result, membersChanged, renamed, released }
  }

  /**
   * What a membership event changed, in words: who added or removed whom, or who created the group.
   * `undefined` for rekeys.
   */
  describe(event: SignedEvent): MembershipChange | undefined {
    return describeChange(event)
  }

  /**
   * Encrypts `text` under the current epoch and signs it.
   *
   * @throws {AccessDeniedError} this identity is not a member
   * @throws {NoCurrentEpochError} no epoch key reaches only members; wait for a rekey
   * @throws {TooLargeError} the text is over 64 KiB
   */
  seal(text: string, ts?: number): Promise<SealedMessage> {
    // not async: one settled promise per message, not a chain of them (see GroupMessages.seal)
    try {
      this.#requireMember('send messages')
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#messages.seal(text, ts)
  }

  /**
   * Checks and, where this identity holds the epoch key, decrypts a message envelope.
   *
   * Rejections, in order of checking: too large; bad signature; malformed; wrong group; a replay (an id
   * or a sender's sequence number already seen); an unknown epoch (kept, accounted against `options.from`
   * and its sender in the pending budget, and returned later by {@link receiveEvent} as `released`; not
   * kept when the sender was never added in the known log, or there is no room); a sender who is not a
   * member of that epoch; from a sender who is no longer a member, a voided epoch or a superseded epoch
   * past the grace window; ciphertext that does not authenticate.
   *
   * @returns the decrypted message, or `kind: 'encrypted'` when this identity has no key for the epoch
   * @throws {TooLargeError | MalformedError | WrongGroupError | InvalidSignatureError | ReplayError |
   *   UnknownEpochError | UnknownAuthorError | NotAMemberError | StaleEpochError | DecryptionError |
   *   PendingLimitError}
   */
  open(bytes: Uint8Array, options: ReceiveOptions = {}): Promise<OpenedMessage> {
    return this.#messages.open(bytes, options)
  }

  /** How many events wait for parents, and messages for their epoch. */
  pendingCount(): { events: number; messages: number } {
    return { events: this.#log.pendingCount, messages: this.#messages.pendingCount }
  }

  /**
   * Drops every waiting event and message and gives their room back to the pending budget. For a group the
   * process forgets (a relay dropping a group that never got its genesis); the group still works after.
   */
  clearPending(): void {
    this.#log.clearPending()
    this.#messages.clearPending()
  }

  /**
   * Checks the key sealed to this identity in the current epoch: undefined when it opens to the key its
   * author committed to (or this identity holds none, or there is no current epoch), else what is wrong.
   * A member that finds a problem cannot use the epoch and should rekey at once.
   */
  async currentKeyProblem(): Promise<EpochKeyProblem | undefined> {
    const epoch = this.#log.currentEpoch()
    if (epoch === undefined || this.#ciphertextOnly) return undefined
    await this.#keys.messageKey(epoch)
    return this.#keys.problem(epoch.event.id)
  }

  /**
   * Ends the grace window of every epoch that is not current. Call after replaying stored events on
   * restart: the window counts from when this replica learned of a change, and a restart must not
   * reopen it for a removed member's posts.
   */
  expireGraceWindows(): void {
    this.#messages.expireGraceWindows()
  }

  /**
   * Records a message accepted in an earlier run (from storage), so replays of it are refused, and so
   * this identity's own sequence numbers continue after it.
   */
  markSeen(sender: string, seq: number): void {
    this.#messages.markSeen(sender, seq)
  }

  /** Next sequence number this identity will use. */
  get nextSeq(): number {
    return this.#messages.nextSeq
  }
}
