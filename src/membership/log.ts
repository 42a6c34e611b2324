import { logger } from '@libp2p/logger'
import { bytesKey } from '../crypto/index.js'
import { LogCuts } from './cuts.js'
import { checkRecipients, keyBaseOf } from './epoch-derivation.js'
import {
  AlreadyMemberError,
  InviteTokenUsedError,
  NotAMemberError,
  ReplayError,
  VoidInviteTokenError,
  WrongGroupError,
} from './errors.js'
import { completeEvent, type EventHead, releaseKeys, type SignedEvent } from './event.js'
import { InviteTokenUses, inviteTokenOf } from './invite-token.js'
import { type PendingBudget, sharedPendingBudget } from './pending.js'
import {
  Ancestry,
  compareEntries,
  isEpoch,
  type LogEntry,
  type MemberInfo,
  type MemberMap,
} from './resolution.js'
import { WaitingEvents } from './waiting-events.js'

export { compareEntries, isEpoch, type LogEntry, type MemberInfo, type MemberMap }

const log = logger('p2pchat:membership')

/** Options for {@link MembershipLog}. */
export interface MembershipLogInit {
  /** Group id (genesis CID string). */
  groupId: string
  /** Upper bound on events waiting for unknown parents, members' and strangers' apart. Default 4096. */
  maxPending?: number
  /** Upper bound on their bytes (bookkeeping included), likewise. Default 16 MiB. */
  maxPendingBytes?: number
  /** Where waiting events are accounted, with those of the process's other groups. Default: the shared one. */
  pendingBudget?: PendingBudget
}

/** Options for {@link MembershipLog.insert}. */
export interface InsertOptions {
  /**
   * The libp2p peer that delivered the event, for the accounting of the waiting ones. Without it the
   * event is local input (storage, the caller's own), trusted like a member's.
   */
  from?: string
  /** The event as this replica just built it (its own): not parsed again from the head's bytes. */
  decoded?: SignedEvent
}

/** What one call to {@link MembershipLog.insert} did. */
export interface InsertResult {
  /** Events now in the log, in the order they were applied (the given one and any it unblocked). */
  applied: SignedEvent[]
  /** Events refused while draining the buffer, each with why. */
  rejected: Array<{ event: EventHead; error: Error }>
  /** True when the given event waits for parents. */
  pending: boolean
}

/**
 * The membership log: a hash-linked DAG of signed add/remove/rekey/rename events (a Merkle-CRDT),
 * resolved by the rules of `resolve` (resolution.ts); `test/unit/membership-properties.test.ts`
 * checks them against a separate, plain reading.
 *
 * Applying an event on top of the current heads is O(members). The log keeps its cuts ({@link LogCuts}): events every other
 * event precedes or follows (each event on top of all heads is one). Nothing after a cut can void what
 * precedes it, so the log resolves only the events after the last cut, from the cut's `membersAfter`,
 * and keeps what it found until the next insert; what precedes the cut is settled once.
 */
export class MembershipLog {
  readonly groupId: string
  readonly #entries = new Map<string, LogEntry>()
  readonly #order: LogEntry[] = []
  #heads: LogEntry[] = []
  /** Members resolved over the whole log; `undefined` until computed after a concurrent insert. */
  #members: MemberMap | undefined
  readonly #ancestry = new Ancestry()
  /** The cuts and what they settle; see {@link LogCuts}. */
  readonly #cuts = new LogCuts(this.#order, this.#ancestry)
  /** Removals by the member they remove. */
  readonly #removalsOf = new Map<string, LogEntry[]>()
  /** Adds that used an invite token, by token. */
  readonly #tokenUses = new InviteTokenUses()
  /** Peer id of every member id an add (or the genesis) names, keyed by {@link bytesKey} of its bytes. */
  readonly #idOfBytes = new Map<string, string>()
  /** The reverse: member id bytes of every peer id an add (or the genesis) names. */
  readonly #bytesOfId = new Map<string, Uint8Array>()
  /** Cached current epoch; `null` when it must be recomputed. */
  #current: LogEntry | undefined | null = null
  /** Events waiting for parents. */
  readonly #waiting: WaitingEvents
  /** Everyone the log ever names as added (or founder): authors outside it are rejected cheaply. */
  readonly #everAdded = new Set<string>()
  /** Ids of rejected events (bounded), so their descendants are rejected at once instead of waiting forever. */
  readonly #rejectedIds = new Set<string>()

  constructor(init: MembershipLogInit) {
    this.groupId = init.groupId
    this.#waiting = new WaitingEvents(init.groupId, init.pendingBudget ?? sharedPendingBudget(), {
      items: init.maxPending ?? 4096,
      bytes: init.maxPendingBytes ?? 16 * 1024 * 1024,
    })
  }

  /** Number of events in the log. */
  get size(): number {
    return this.#entries.size
  }

  /** Number of events waiting for parents. */
  get pendingCount(): number {
    return this.#waiting.size
  }

  /** The genesis entry, once known. */
  get genesis(): LogEntry | undefined {
    return this.#order[0]
  }

  has(id: string): boolean {
    return this.#entries.has(id)
  }

  hasPending(id: string): boolean {
    return this.#waiting.has(id)
  }

  /** The member id bytes of a peer id some event of the log adds, without parsing it again. */
  memberIdBytes(memberId: string): Uint8Array | undefined {
    return this.#bytesOfId.get(memberId)
  }

  /** Whether some event of the log adds `memberId` (or founds the group with it), valid or not. */
  wasEverAdded(memberId: string): boolean {
    return this.#everAdded.has(memberId)
  }

  get(id: string): LogEntry | undefined {
    return this.#entries.get(id)
  }

  /** Current heads (events no other event names as parent), sorted by id. */
  heads(): LogEntry[] {
    return [...this.#heads]
  }

  /** All entries in a topological order (parents before children). */
  entries(): readonly LogEntry[] {
    return this.#order
  }

  /** Ids of parents that pending events wait for and that this log does not have. */
  missingParents(): string[] {
    return this.#waiting.parents().filter((id) => !this.#entries.has(id) && !this.#waiting.has(id))
  }

  /** The resolved members of the whole log. */
  members(): MemberMap {
    if (this.#members === undefined) this.#members = this.#cuts.resolution().members
    return this.#members
  }

  /** Whether `entry` counts in the resolution of the whole log (it is not voided by a concurrent removal). */
  isValid(entry: LogEntry): boolean {
    return this.#cuts.isValid(entry)
  }

  /**
   * The current epoch: among valid epochs whose keys went only to current members and whose author is a
   * current member, the greatest by (depth, id). Every replica with the same events picks the same one.
   * `undefined` when every epoch key reached someone who is no longer a member (for example after mutual
   * removals): then nobody may send until a member issues a rekey.
   */
  currentEpoch(): LogEntry | undefined {
    if (this.#current === null) {
      const members = this.members()
      // An epoch is safe when its key reached only current members and was chosen by one: a member who
      // left or was removed knows the key it chose.
      const safe = (entry: LogEntry): boolean => {
        if (!members.has(entry.event.author)) return false
        for (const id of entry.membersAfter.keys()) if (!members.has(id)) return false
        return true
      }
      const head = this.#heads.length === 1 ? (this.#heads[0] as LogEntry) : undefined
      if (head !== undefined && isEpoch(head) && safe(head)) {
        // the single head follows everything: it is valid and sealed to exactly the members
        this.#current = head
      } else {
        this.#current = this.#cuts.greatestSafeEpoch(safe)
      }
    }
    return this.#current
  }

  /**
   * True when the current epoch's key does not reach exactly the current members (a member lacks it, or
   * there is no safe epoch at all), so a member should issue a rekey.
   */
  needsRekey(): boolean {
    const members = this.members()
    if (members.size === 0) return false
    const current = this.currentEpoch()
    return current === undefined || current.membersAfter.size !== members.size
  }

  /**
   * Inserts an event whose head (size, framing, signature) is checked; the rest of it is parsed only once
   * it can apply. An event whose parents are unknown waits, accounted in the pending budget against the
   * peer that sent it and its author, and is applied when they arrive. An event that cannot apply because
   * its author was never added is refused before its body is parsed.
   *
   * @throws {ReplayError} the event is already in the log or waiting
   * @throws {WrongGroupError} it names another group
   * @throws {NotAMemberError} its author is not a member in its own causal past
   * @throws {MalformedError} its body does not parse (see {@link completeEvent})
   * @throws {InvalidEpochError} its keys are not sealed to exactly the members after it
   * @throws {AlreadyMemberError} it adds someone who is already a member in its causal past
   * @throws {PendingLimitError} its parents are unknown and the budget has no room it may take
   */
  insert(head: EventHead, options: InsertOptions = {}): InsertResult {
    if (this.#entries.has(head.id) || this.#waiting.has(head.id))
      throw new ReplayError(`event ${head.id} is already known`)
    if (this.#rejectedIds.has(head.id)) throw new NotAMemberError(`event ${head.id} was already rejected`)
    this.#checkGroup(head)
    const missing = head.parents.filter((id) => !this.#entries.has(id))
    if (missing.some((id) => this.#rejectedIds.has(id))) {
      this.#markRejected(head.id)
      throw new NotAMemberError(`a parent of event ${head.id} was rejected`)
    }
    if (missing.length > 0) {
      // a member's when its author appears in a known add (so never before the genesis is known) or it
      // is local input, else a stranger's; see PendingBudget for what each may take
      const from = options.from ?? ''
      const member = from === '' || (this.genesis !== undefined && this.#everAdded.has(head.author))
      this.#waiting.add(head, missing, from, member)
      return { applied: [], rejected: [], pending: true }
    }
    let event: SignedEvent
    try {
      if (head.type !== 'genesis' && !this.#everAdded.has(head.author)) {
        // nobody ever added this author: reject before parsing (and paying for) the rest of the event
        throw new NotAMemberError(`${head.author} was never added to this group`)
      }
      event = options.decoded?.id === head.id ? options.decoded : completeEvent(head)
      this.#apply(event)
    } catch (err) {
      this.#markRejected(head.id)
      this.#dropDependents(head.id, { applied: [], rejected: [], pending: false })
      throw err
    }
    const result: InsertResult = { applied: [event], rejected: [], pending: false }
    this.#drain(event.id, result)
    return result
  }

  /** Drops every waiting event and gives its room back to the budget: for a group the process forgets. */
  clearPending(): void {
    this.#waiting.clear()
  }

  #checkGroup(head: EventHead): void {
    if (head.type === 'genesis') {
      if (head.id !== this.groupId)
        throw new WrongGroupError(`genesis ${head.id} is not group ${this.groupId}`)
    } else if (head.group !== this.groupId) {
      throw new WrongGroupError(`event is for group ${String(head.group)}, not ${this.groupId}`)
    }
  }

  #drain(id: string, result: InsertResult): void {
    const ready = [id]
    while (ready.length > 0) {
      const parentId = ready.pop() as string
      const waiters = this.#waiting.takeWaiters(parentId)
      if (waiters === undefined) continue
      for (const waiterId of waiters) {
        const waiting = this.#waiting.get(waiterId)
        if (waiting === undefined) continue
        waiting.missing.delete(parentId)
        if (waiting.missing.size > 0) continue
        this.#waiting.remove(waiterId)
        try {
          const event = completeEvent(waiting.head)
          this.#apply(event)
          result.applied.push(event)
          ready.push(waiterId)
        } catch (err) {
          log('rejected buffered event %s: %s', waiterId, (err as Error).message)
          result.rejected.push({ event: waiting.head, error: err as Error })
          this.#markRejected(waiterId)
          // whatever waits on a rejected event can never apply
          this.#dropDependents(waiterId, result)
        }
      }
    }
  }

  #dropDependents(id: string, result: InsertResult): void {
    const waiters = this.#waiting.takeWaiters(id)
    if (waiters === undefined) return
    for (const waiterId of waiters) {
      const waiting = this.#waiting.get(waiterId)
      if (waiting === undefined) continue
      this.#waiting.remove(waiterId)
      this.#markRejected(waiterId)
      result.rejected.push({
        event: waiting.head,
        error: new NotAMemberError('a parent of this event was rejected'),
      })
      this.#dropDependents(waiterId, result)
    }
  }

  #markRejected(id: string): void {
    if (this.#rejectedIds.size >= 10_000) {
      // forget the oldest: a Set iterates in insertion order
      const oldest = this.#rejectedIds.values().next().value
      if (oldest !== undefined) this.#rejectedIds.delete(oldest)
    }
    this.#rejectedIds.add(id)
  }

  #apply(event: SignedEvent): void {
    const parents = event.payload.parents.map((cid) => this.#entries.get(String(cid)) as LogEntry)
    const { author, subject } = event
    const { type } = event.payload
    if (type !== 'genesis' && !this.#everAdded.has(author)) {
      // nobody ever added this author: reject before any costly resolution
      throw new NotAMemberError(`${author} was never added to this group`)
    }
    const before = this.#membersBefore(parents)
    if (type !== 'genesis' && !before.has(author)) {
      throw new NotAMemberError(`${author} is not a member in the causal past of ${type} ${event.id}`)
    }
    let after: MemberMap = before
    if (type === 'genesis') {
      after = new Map([
        [author, { id: author, name: event.payload.subjectName as string, addedBy: event.id }],
      ])
    } else if (type === 'add' && subject !== undefined) {
      if (before.has(subject)) {
        // a second add would silently rename a member; only the member itself renames, signed
        throw new AlreadyMemberError(`${subject} is already a member where add ${event.id} was made`)
      }
      this.#checkToken(event, before, parents)
      const next = new Map(before)
      next.set(subject, { id: subject, name: event.payload.subjectName as string, addedBy: event.id })
      after = next
    } else if (type === 'remove' && subject !== undefined && before.has(subject)) {
      const next = new Map(before)
      next.delete(subject)
      after = next
    } else if (type === 'rename') {
      const next = new Map(before)
      const info = before.get(author) as MemberInfo
      next.set(author, { ...info, name: event.payload.subjectName as string })
      after = next
    }
    if (type === 'genesis' || type === 'add') {
      this.#idOfBytes.set(bytesKey(event.payload.subject as Uint8Array), subject as string)
      this.#bytesOfId.set(subject as string, event.payload.subject as Uint8Array)
    }
    checkRecipients(event, after, this.#idOfBytes)
    const keyBase = keyBaseOf(
      event,
      parents,
      before,
      (id) => this.#entries.get(id),
      (x, y) => this.#ancestry.precedes(x, y),
    )
    const entry: LogEntry = {
      event,
      parents,
      depth: parents.reduce((d, p) => Math.max(d, p.depth + 1), 0),
      index: this.#order.length,
      membersAfter: after,
      ...(keyBase === undefined ? {} : { keyBase }),
    }
    if (type === 'genesis') this.#everAdded.add(author)
    if (type === 'add' && subject !== undefined) this.#everAdded.add(subject)
    this.#tokenUses.record(entry)
    if (type === 'remove' && subject !== undefined) {
      const removals = this.#removalsOf.get(subject)
      if (removals === undefined) this.#removalsOf.set(subject, [entry])
      else removals.push(entry)
    }
    const parentSet = new Set(parents)
    // a head that gets a child is superseded: its sealed keys are read again only from its bytes
    for (const head of this.#heads) if (parentSet.has(head)) releaseKeys(head.event)
    // a head has no descendants, so an event follows every event iff its parents include every head
    const isCut = this.#heads.every((h) => parentSet.has(h))
    this.#cuts.added(entry, parents, isCut)
    this.#entries.set(event.id, entry)
    this.#order.push(entry)
    this.#heads = [...this.#heads.filter((h) => !parentSet.has(h)), entry].sort((a, b) =>
      a.event.id < b.event.id ? -1 : 1,
    )
    this.#current = null
    // On top of all heads the new event follows everything, so it is the whole log's resolution.
    this.#members = isCut ? after : undefined
  }

  /**
   * An add by invite token is admitted only if the token's inviter is a member where it is made, and no
   * add in its causal past used the token (concurrent uses are settled by resolution).
   */
  #checkToken(event: SignedEvent, before: MemberMap, parents: readonly LogEntry[]): void {
    const token = inviteTokenOf(event)
    if (token === undefined) return
    if (!before.has(token.inviter))
      throw new VoidInviteTokenError(`add ${event.id}: the inviter ${token.inviter} is no member there`)
    if (this.#tokenUses.usedBefore(token.id, parents, this.#ancestry))
      throw new InviteTokenUsedError(`add ${event.id}: invite token ${token.id} was used before it`)
  }

  /** Whether an add of the log used the invite token `tokenId` (counted or not). */
  inviteTokenUsed(tokenId: string): boolean {
    return this.#tokenUses.used(tokenId)
  }

  /** Members over the causal closure of `parents` (the causal past of an event with these parents). */
  #membersBefore(parents: readonly LogEntry[]): MemberMap {
    if (parents.length === 0) return new Map()
    if (parents.length === 1) return (parents[0] as LogEntry).membersAfter
    const parentSet = new Set(parents)
    if (this.#heads.every((h) => parentSet.has(h))) return this.members()
    return this.#cuts.membersAfter(parents)
  }

  /**
   * Whether `epoch` is in the causal past of a removal of `member`: an epoch the member held before it
   * was removed, the only kind under which its in-flight messages may still be accepted.
   */
  precedesRemovalOf(epoch: LogEntry, member: string): boolean {
    return (this.#removalsOf.get(member) ?? []).some((removal) => this.#ancestry.precedes(epoch, removal))
  }
}
