import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import {
  cidOf,
  DecryptionError,
  hkdf,
  type Identity,
  openKey,
  randomKey,
  randomNonce,
  sealKey,
  sha256,
} from '../crypto/index.js'
import { decodeEnvelope, type Envelope, MAX_TEXT_BYTES, openEnvelope, sealEnvelope } from './envelope.js'
import {
  AccessDeniedError,
  BadEpochKeyError,
  InvalidArgumentError,
  NoCurrentEpochError,
  NotAMemberError,
  ReplayError,
  StaleEpochError,
  TooLargeError,
  UnknownAuthorError,
  UnknownEpochError,
  WrongGroupError,
} from './errors.js'
import {
  compareBytes,
  EVENT_VERSION,
  type EventHead,
  type EventKey,
  type EventPayload,
  type EventType,
  isValidName,
  keyContext,
  memberIdFromString,
  readEventHead,
  type SignedEvent,
  signEvent,
} from './event.js'
import { isEpoch, type LogEntry, type MemberInfo, type MemberMap, MembershipLog } from './log.js'
import {
  PENDING_ITEM_OVERHEAD,
  type PendingBudget,
  type PendingTicket,
  sharedPendingBudget,
} from './pending.js'

const log = logger('p2pchat:group')
const EPOCH_KEY_INFO = new TextEncoder().encode('p2pchat/v1/epoch-key')
const MESSAGE_KEY_INFO = 'p2pchat/v1/message-key'
const KEY_COMMITMENT_INFO = 'p2pchat/v1/epoch-key-commitment'

/** Default grace window in which a superseded epoch is still accepted. */
export const DEFAULT_GRACE_MS = 60_000

/** Options shared by every way of opening a {@link Group}. */
export interface GroupOptions {
  /** Clock, in ms; injected so tests control the grace window. Default `Date.now`. */
  now?: () => number
  /** How long a superseded epoch stays acceptable, in ms. Default {@link DEFAULT_GRACE_MS}. */
  graceMs?: number
  /**
   * Bound on the events waiting for parents in this group, for members' and strangers' apart (see
   * {@link PendingBudget}). Default 4096.
   */
  maxPendingEvents?: number
  /** Bound on the bytes (bookkeeping included) of events waiting for parents, likewise. Default 16 MiB. */
  maxPendingBytes?: number
  /** Bound on the messages waiting for their epoch in this group, likewise. Default 1024. */
  maxPendingMessages?: number
  /**
   * Where this group's waiting events and messages are accounted, per sending peer and per author, with
   * those of every other group given the same budget (see {@link PendingBudget}). A node or relay gives
   * all its groups one. Default: one budget shared by every group of the process given none.
   */
  pendingBudget?: PendingBudget
  /**
   * Never open an epoch key, even one sealed to this identity: for relays, which store and forward
   * ciphertext and must not be able to read it even if someone adds them as a member.
   */
  ciphertextOnly?: boolean
}

/** Options for the {@link Group} constructor: a group known by id, whose events arrive later. */
export interface GroupInit extends GroupOptions {
  identity: Identity
  /** The group id (genesis CID string). */
  groupId: string
}

/** Options for {@link Group.create}. */
export interface CreateGroupInit extends GroupOptions {
  identity: Identity
  /** Group name, e.g. `team`. */
  name: string
  /** The founder's display name. */
  memberName: string
}

/** A membership change caused by one event, for "alice added bob" lines. */
export interface MembershipChange {
  action: 'create' | 'add' | 'remove' | 'rename'
  by: string
  member: string
  event: string
}

/** A member whose resolved display name changed. */
export interface Rename {
  member: string
  from: string
  to: string
}

/**
 * The key sealed to this identity in an epoch is unusable: it does not open, or it opens to a key other
 * than the one its author committed to, so this member cannot read or write under it.
 */
export interface EpochKeyProblem {
  epoch: string
  /** Who chose (and sealed) the bad key. */
  author: string
  reason: string
}

/** Options for {@link Group.receiveEvent} and {@link Group.open}. */
export interface ReceiveOptions {
  /**
   * The libp2p peer that delivered the input (the gossip propagation source, the sync partner). What has
   * to wait is accounted against it. Leave it out only for local input (storage, this identity's own),
   * which waits as a member's would: network input without it would escape the per-peer accounting.
   */
  from?: string
}

/** What receiving one event did. */
export interface ReceiveEventResult {
  /** Events applied (the one received and any it unblocked), in order. */
  applied: SignedEvent[]
  /** Buffered events refused once their parents arrived. */
  rejected: Array<{ event: EventHead; error: Error }>
  /** True when the event waits for parents. */
  pending: boolean
  /** Whether the set of resolved members changed (who is in, not what they are called). */
  membersChanged: boolean
  /** Members whose resolved display name changed (members before and after). */
  renamed: Rename[]
  /** Buffered envelopes whose epoch is now known; pass each to {@link Group.open} again. */
  released: Uint8Array[]
}

/** A message this member decrypted. */
export interface DecryptedMessage {
  kind: 'message'
  id: string
  sender: string
  seq: number
  epoch: string
  text: string
  ts: number
}

/** An authentic message under an epoch whose key this identity was not given: shown as ciphertext. */
export interface EncryptedMessage {
  kind: 'encrypted'
  id: string
  sender: string
  seq: number
  epoch: string
  /** Size of the ciphertext in bytes. */
  bytes: number
  /** Hex of the first ciphertext bytes. */
  preview: string
}

/** Result of {@link Group.open}. */
export type OpenedMessage = DecryptedMessage | EncryptedMessage

/** A message this member sealed. */
export interface SealedMessage {
  bytes: Uint8Array
  id: string
  seq: number
  ts: number
  epoch: string
}

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
  readonly #now: () => number
  readonly #graceMs: number
  readonly #maxPendingMessages: number
  readonly #ciphertextOnly: boolean
  /** epoch id → message key, or null when this identity is not a recipient or its key is bad */
  readonly #messageKeys = new Map<string, Promise<Uint8Array | null>>()
  /** epoch id → why the key sealed to this identity is unusable */
  readonly #badKeys = new Map<string, EpochKeyProblem>()
  /** epoch id → when it stopped being (or was learned as not) the current epoch */
  readonly #supersededAt = new Map<string, number>()
  #current: string | undefined
  /** Per sender, the sequence numbers already accepted. The message id hashes sender and seq, so this
   * also catches a re-delivered id. */
  readonly #seen = new Map<string, SeqSet>()
  /** Messages waiting for their epoch, by id, oldest first. */
  readonly #pendingMessages = new Map<string, { epoch: string; bytes: Uint8Array; ticket: PendingTicket }>()
  readonly #budget: PendingBudget
  #nextSeq = 0

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
    this.#budget = init.pendingBudget ?? sharedPendingBudget()
    this.#now = init.now ?? Date.now
    this.#graceMs = init.graceMs ?? DEFAULT_GRACE_MS
    this.#maxPendingMessages = init.maxPendingMessages ?? 1024
    this.#ciphertextOnly = init.ciphertextOnly === true
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
    const sealed = sealEpochKey(base, [init.identity.memberIdBytes])
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
    const members = [...this.#log.members().keys()]
    if (!members.includes(memberId)) return -1
    const salt = this.heads().join(',')
    const score = (id: string): Buffer => Buffer.from(sha256(new TextEncoder().encode(`${salt}|${id}`)))
    const ranked = members
      .map((id) => ({ id, score: score(id) }))
      .sort((a, b) => Buffer.compare(a.score, b.score))
    return ranked.findIndex((r) => r.id === memberId)
  }

  /**
   * Adds `memberId` with display name `name`. Works while they are offline: the new epoch key is sealed
   * to their identity key.
   *
   * @throws {AccessDeniedError} this identity is not a member
   * @throws {InvalidArgumentError} bad id or name, or already a member
   */
  async add(memberId: string, name: string): Promise<SignedEvent> {
    this.#requireMember('add members')
    const subject = memberIdFromString(memberId)
    if (!isValidName(name)) throw new InvalidArgumentError('display name must be 1-64 printable characters')
    if (this.isMember(memberId)) throw new InvalidArgumentError(`${name} is already a member`)
    const after = [...this.#log.members().keys(), memberId]
    return this.#author('add', after, { subject, subjectName: name })
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
    fields: Partial<Pick<EventPayload, 'subject' | 'subjectName'>>,
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
    const sealed = type === 'rename' ? { keys: [] } : sealEpochKey(base, recipients.map(memberIdFromString))
    const event = signEvent(this.identity, { ...base, ...sealed })
    this.receiveEvent(event.bytes)
    return event
  }

  /**
   * Receives an event from the network, sync or storage: checks its size and signature, and inserts it
   * into the log, or keeps it until its parents arrive (accounted against `options.from` and its author in
   * the pending budget). Its body is parsed only once it can apply.
   *
   * @throws {TooLargeError | MalformedError | InvalidSignatureError | WrongGroupError | ReplayError |
   *   NotAMemberError | InvalidEpochError | PendingLimitError}
   */
  receiveEvent(bytes: Uint8Array, options: ReceiveOptions = {}): ReceiveEventResult {
    const head = readEventHead(bytes)
    const before = this.#log.members()
    const result = this.#log.insert(head, options)
    const after = this.#log.members()
    const renamed = renamesBetween(before, after)
    const membersChanged = !sameMembers(before, after)
    const released: Uint8Array[] = []
    if (result.applied.length > 0) {
      this.#trackEpochs(result.applied)
      // in the order they arrived
      for (const [id, pending] of this.#pendingMessages) {
        if (!this.#log.has(pending.epoch)) continue
        released.push(pending.bytes)
        this.#dropPendingMessage(id)
      }
    }
    return { ...result, membersChanged, renamed, released }
  }

  #trackEpochs(applied: SignedEvent[]): void {
    const now = this.#now()
    const current = this.#log.currentEpoch()?.event.id
    if (this.#current !== undefined && this.#current !== current && !this.#supersededAt.has(this.#current)) {
      this.#supersededAt.set(this.#current, now)
    }
    for (const event of applied) {
      if (event.id !== current && !this.#supersededAt.has(event.id)) this.#supersededAt.set(event.id, now)
    }
    // an older epoch can become current again (e.g. after mutual removals): it is not stale then
    if (current !== undefined) this.#supersededAt.delete(current)
    this.#current = current
  }

  /**
   * What a membership event changed, in words: who added or removed whom, or who created the group.
   * `undefined` for rekeys.
   */
  describe(event: SignedEvent): MembershipChange | undefined {
    const { type } = event.payload
    if (type === 'rename')
      return { action: 'rename', by: event.author, member: event.author, event: event.id }
    if (type === 'rekey' || event.subject === undefined) return undefined
    return {
      action: type === 'genesis' ? 'create' : type,
      by: event.author,
      member: event.subject,
      event: event.id,
    }
  }

  /**
   * Encrypts `text` under the current epoch and signs it.
   *
   * @throws {AccessDeniedError} this identity is not a member
   * @throws {NoCurrentEpochError} no epoch key reaches only members; wait for a rekey
   * @throws {TooLargeError} the text is over 64 KiB
   */
  async seal(text: string, ts: number = this.#now()): Promise<SealedMessage> {
    this.#requireMember('send messages')
    if (Buffer.byteLength(text) > MAX_TEXT_BYTES) throw new TooLargeError('message text is over 64 KiB')
    const epoch = this.#log.currentEpoch()
    if (epoch === undefined) throw new NoCurrentEpochError()
    const key = await this.#messageKey(epoch)
    if (key === null) {
      const bad = this.#badKeys.get(epoch.event.id)
      throw new NoCurrentEpochError(
        bad === undefined
          ? 'this member holds no key for the current epoch yet'
          : `the key of the current epoch, chosen by ${bad.author}, is unusable (${bad.reason}); waiting for a rekey`,
      )
    }
    const seq = this.#nextSeq++
    const bytes = sealEnvelope({
      identity: this.identity,
      group: this.#cid,
      epoch: epoch.event.cid,
      seq,
      key,
      body: { text, ts },
      nonce: randomNonce(),
    })
    // the id is the envelope's content address; no need to decode (and re-verify) what we just signed
    const id = cidOf(bytes).toString()
    this.#markSeen(this.identity.memberId, seq)
    return { bytes, id, seq, ts, epoch: epoch.event.id }
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
  async open(bytes: Uint8Array, options: ReceiveOptions = {}): Promise<OpenedMessage> {
    const envelope = decodeEnvelope(bytes)
    if (envelope.groupId !== this.id) throw new WrongGroupError(`message is for group ${envelope.groupId}`)
    this.#checkReplay(envelope)
    const epoch = this.#log.get(envelope.epochId)
    if (epoch === undefined) {
      if (!this.#pendingMessages.has(envelope.id)) this.#keepPendingMessage(envelope, options.from ?? '')
      throw new UnknownEpochError(
        `message ${envelope.id} is under unknown epoch ${envelope.epochId}; it waits`,
      )
    }
    if (!epoch.membersAfter.has(envelope.sender)) {
      throw new NotAMemberError(`${envelope.sender} is not a member of epoch ${envelope.epochId}`)
    }
    if (!this.isMember(envelope.sender)) {
      // Someone who is no longer a member may only have in-flight posts accepted: under an epoch it
      // held before its removal, and only within the grace window. Any epoch it signed later (back-dated
      // to look concurrent) is refused, whatever the resolution made of that event.
      if (!this.#log.precedesRemovalOf(epoch, envelope.sender)) {
        throw new NotAMemberError(
          `${envelope.sender} is not a member, and epoch ${envelope.epochId} does not precede their removal`,
        )
      }
      const supersededAt = this.#supersededAt.get(envelope.epochId)
      if (supersededAt !== undefined && this.#now() - supersededAt > this.#graceMs) {
        throw new StaleEpochError(
          `${envelope.sender} is no longer a member and epoch ${envelope.epochId} was superseded more than ${this.#graceMs} ms ago`,
        )
      }
    }
    // A current member may post under an older epoch (a message written offline, sealed before it
    // learned of a change): it holds the current key anyway, so accepting it reveals nothing.
    const key = await this.#messageKey(epoch)
    // a second delivery may have raced through the await above
    this.#checkReplay(envelope)
    if (key === null) {
      this.#markSeen(envelope.sender, envelope.header.seq)
      return {
        kind: 'encrypted',
        id: envelope.id,
        sender: envelope.sender,
        seq: envelope.header.seq,
        epoch: envelope.epochId,
        bytes: envelope.ct.length,
        preview: Buffer.from(envelope.ct.subarray(0, 8)).toString('hex'),
      }
    }
    const body = openEnvelope(envelope, key)
    this.#markSeen(envelope.sender, envelope.header.seq)
    return {
      kind: 'message',
      id: envelope.id,
      sender: envelope.sender,
      seq: envelope.header.seq,
      epoch: envelope.epochId,
      text: body.text,
      ts: body.ts,
    }
  }

  /**
   * Keeps a message until its epoch arrives. Once the log is known, only a sender that some event of it
   * adds may have a message wait: a member's message always comes from such a sender. Before the genesis
   * is known nobody can be told apart, so every message from the network waits as a stranger's (see
   * {@link PendingBudget}).
   */
  #keepPendingMessage(envelope: Envelope, from: string): void {
    const known = this.ready
    if (known && !this.#log.wasEverAdded(envelope.sender)) {
      throw new UnknownAuthorError(
        `message ${envelope.id} is under unknown epoch ${envelope.epochId}, and its sender ${envelope.sender} was never added to this group: it does not wait`,
      )
    }
    const { bytes, id } = envelope
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    const ticket = this.#budget.admit(
      {
        group: this.id,
        kind: 'message',
        from,
        author: envelope.sender,
        member: known || from === '',
        bytes: bytes.length + PENDING_ITEM_OVERHEAD,
        groupLimit: { items: this.#maxPendingMessages, bytes: Number.POSITIVE_INFINITY },
      },
      () => this.#pendingMessages.delete(id),
    )
    this.#pendingMessages.set(id, { epoch: envelope.epochId, bytes: own ? bytes : bytes.slice(), ticket })
  }

  #dropPendingMessage(id: string): void {
    const pending = this.#pendingMessages.get(id)
    if (pending === undefined) return
    this.#pendingMessages.delete(id)
    this.#budget.release(pending.ticket)
  }

  /** How many events wait for parents, and messages for their epoch. */
  pendingCount(): { events: number; messages: number } {
    return { events: this.#log.pendingCount, messages: this.#pendingMessages.size }
  }

  /**
   * Drops every waiting event and message and gives their room back to the pending budget. For a group the
   * process forgets (a relay dropping a group that never got its genesis); the group still works after.
   */
  clearPending(): void {
    this.#log.clearPending()
    for (const id of [...this.#pendingMessages.keys()]) this.#dropPendingMessage(id)
  }

  /**
   * Checks the key sealed to this identity in the current epoch: undefined when it opens to the key its
   * author committed to (or this identity holds none, or there is no current epoch), else what is wrong.
   * A member that finds a problem cannot use the epoch and should rekey at once.
   */
  async currentKeyProblem(): Promise<EpochKeyProblem | undefined> {
    const epoch = this.#log.currentEpoch()
    if (epoch === undefined || this.#ciphertextOnly) return undefined
    await this.#messageKey(epoch)
    return this.#badKeys.get(epoch.event.id)
  }

  /**
   * Ends the grace window of every epoch that is not current. Call after replaying stored events on
   * restart: the window counts from when this replica learned of a change, and a restart must not
   * reopen it for a removed member's posts.
   */
  expireGraceWindows(): void {
    for (const id of this.#supersededAt.keys()) this.#supersededAt.set(id, Number.NEGATIVE_INFINITY)
  }

  /**
   * Records a message accepted in an earlier run (from storage), so replays of it are refused, and so
   * this identity's own sequence numbers continue after it.
   */
  markSeen(sender: string, seq: number): void {
    this.#markSeen(sender, seq)
  }

  /** Next sequence number this identity will use. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  #checkReplay(envelope: Envelope): void {
    if (this.#seen.get(envelope.sender)?.has(envelope.header.seq)) {
      throw new ReplayError(
        `message ${envelope.id} replays sequence number ${envelope.header.seq} of ${envelope.sender}`,
      )
    }
  }

  #markSeen(sender: string, seq: number): void {
    let seqs = this.#seen.get(sender)
    if (seqs === undefined) {
      seqs = new SeqSet()
      this.#seen.set(sender, seqs)
    }
    seqs.add(seq)
    if (sender === this.identity.memberId && seq >= this.#nextSeq) this.#nextSeq = seq + 1
  }

  #messageKey(epoch: LogEntry): Promise<Uint8Array | null> {
    let key = this.#messageKeys.get(epoch.event.id)
    if (key === undefined) {
      key = this.#openEpochKey(epoch)
      this.#messageKeys.set(epoch.event.id, key)
    }
    return key
  }

  async #openEpochKey(epoch: LogEntry): Promise<Uint8Array | null> {
    const { payload } = epoch.event
    if (this.#ciphertextOnly || !isEpoch(epoch)) return null
    const mine = payload.keys.find((k) => compareBytes(k.to, this.identity.memberIdBytes) === 0)
    if (mine === undefined) return null
    let groupKey: Uint8Array
    try {
      groupKey = openKey(this.identity, mine, EPOCH_KEY_INFO, keyContext(payload))
    } catch (err) {
      if (!(err instanceof DecryptionError)) throw err
      return this.#badKey(epoch, 'the key sealed to this member does not open')
    }
    // Each member opens its own seal, so without the signed commitment an author could give each member
    // a different key (or garbage to one of them) and every replica would still accept the epoch.
    if (compareBytes(commitToKey(groupKey), payload.keyCommitment as Uint8Array) !== 0) {
      return this.#badKey(epoch, 'the key sealed to this member is not the key its author committed to')
    }
    return hkdf(groupKey, MESSAGE_KEY_INFO)
  }

  #badKey(epoch: LogEntry, reason: string): null {
    const problem = { epoch: epoch.event.id, author: epoch.event.author, reason }
    this.#badKeys.set(epoch.event.id, problem)
    log.error('epoch %s by %s: %s', problem.epoch, problem.author, new BadEpochKeyError(reason).message)
    return null
  }
}

/**
 * A set of sequence numbers stored as "every number up to `contiguous`" plus the ones above it, so a
 * sender's whole history costs a few bytes once it has arrived without gaps.
 */
class SeqSet {
  #contiguous = -1
  readonly #above = new Set<number>()

  has(seq: number): boolean {
    return seq <= this.#contiguous || this.#above.has(seq)
  }

  add(seq: number): void {
    if (this.has(seq)) return
    this.#above.add(seq)
    while (this.#above.delete(this.#contiguous + 1)) this.#contiguous++
  }
}

function renamesBetween(before: MemberMap, after: MemberMap): Rename[] {
  if (before === after) return []
  const renamed: Rename[] = []
  for (const [id, info] of after) {
    const old = before.get(id)
    if (old !== undefined && old.name !== info.name)
      renamed.push({ member: id, from: old.name, to: info.name })
  }
  return renamed
}

function sameMembers(a: MemberMap, b: MemberMap): boolean {
  if (a === b) return true
  if (a.size !== b.size) return false
  for (const id of a.keys()) if (!b.has(id)) return false
  return true
}

/**
 * The signed commitment to an epoch's group key: a one-way, domain-separated derivation of it (HKDF), so
 * it reveals nothing about the key, and two different keys give different commitments.
 */
export function commitToKey(groupKey: Uint8Array): Uint8Array {
  return hkdf(groupKey, KEY_COMMITMENT_INFO)
}

/** A fresh group key for an event: its commitment, and the key sealed to each recipient, sorted by recipient. */
function sealEpochKey(
  base: Omit<EventPayload, 'keys' | 'keyCommitment'>,
  recipients: Uint8Array[],
): { keyCommitment: Uint8Array; keys: EventKey[] } {
  const groupKey = randomKey()
  const keyCommitment = commitToKey(groupKey)
  // the seals are bound to the whole payload but the keys, the commitment included
  const aad = keyContext({ ...base, keyCommitment })
  const sorted = [...recipients].sort(compareBytes)
  const keys = sorted.map((to) => {
    const sealed = sealKey(to, groupKey, EPOCH_KEY_INFO, aad)
    return { to, enc: sealed.enc, ct: sealed.ct }
  })
  return { keyCommitment, keys }
}
