import { logger } from '@libp2p/logger'
import {
  InvalidEpochError,
  NotAMemberError,
  PendingLimitError,
  ReplayError,
  WrongGroupError,
} from './errors.js'
import { memberIdToString, type SignedEvent } from './event.js'

const log = logger('p2pchat:membership')

/** A member of the resolved membership. */
export interface MemberInfo {
  /** Peer id string. */
  id: string
  /** Display name from the event that (validly) added them. */
  name: string
  /** Id of that event (the genesis for the founder). */
  addedBy: string
}

/** Read-only member map, keyed by peer id string. */
export type MemberMap = ReadonlyMap<string, MemberInfo>

/** An event in the DAG together with what is fixed forever once it is inserted. */
export interface LogEntry {
  readonly event: SignedEvent
  readonly parents: readonly LogEntry[]
  /** 0 for the genesis, else 1 + the deepest parent. */
  readonly depth: number
  /** Insertion index: a topological order of the DAG. */
  readonly index: number
  /** Members resolved over this event's causal closure; the event's epoch keys go to exactly these. */
  readonly membersAfter: MemberMap
}

/** Options for {@link MembershipLog}. */
export interface MembershipLogInit {
  /** Group id (genesis CID string). */
  groupId: string
  /** Upper bound on events waiting for unknown parents. Default 4096. */
  maxPending?: number
}

/** What one call to {@link MembershipLog.insert} did. */
export interface InsertResult {
  /** Events now in the log, in the order they were applied (the given one and any it unblocked). */
  applied: SignedEvent[]
  /** Events refused while draining the buffer, each with why. */
  rejected: Array<{ event: SignedEvent; error: Error }>
  /** True when the given event waits for parents. */
  pending: boolean
}

interface Resolution {
  members: Map<string, MemberInfo>
  valid: Set<LogEntry>
}

/**
 * The membership log: a hash-linked DAG of signed add/remove/rekey events (a Merkle-CRDT), resolved
 * with the "strong remove" rule of DCGKA (Weidner et al. 2021) and p2panda-auth.
 *
 * Rules, for a set S of events closed under parents:
 * - An event is admitted only if its author is a member in the event's own causal past (checked on
 *   insertion; this is deterministic because the causal past of an event never changes). A non-member's
 *   event is rejected outright.
 * - A removal always takes effect once admitted. Concurrent removals never cancel a removal, so mutual
 *   removals and removal cycles remove everyone in them. This holds even when the remover's own add is
 *   later voided: its removal was valid where it was made, and judging removals only by their own causal
 *   past keeps resolution well-founded (as in DCGKA, where removals always apply).
 * - A removal of A voids every add and rekey by A that is concurrent with it (not in its causal past),
 *   and, transitively, every add and rekey whose author's membership rests on a voided add.
 * - A member m is in the group iff some valid add of m (or the genesis, for the founder) causally follows
 *   every removal of m in S. So a re-add concurrent with a removal leaves m removed; a re-add after it
 *   works.
 * - Timestamps play no part.
 *
 * Applying an event is incremental: an event on top of the current heads is O(members); only an event
 * concurrent with others makes the log re-resolve the part of the DAG involved.
 */
export class MembershipLog {
  readonly groupId: string
  readonly #entries = new Map<string, LogEntry>()
  readonly #order: LogEntry[] = []
  #heads: LogEntry[] = []
  /** Members resolved over the whole log; `undefined` until computed after a concurrent insert. */
  #members: MemberMap | undefined
  #resolution: Resolution | undefined
  /** Cached current epoch; `null` when it must be recomputed. */
  #current: LogEntry | undefined | null = null
  readonly #pending = new Map<string, { event: SignedEvent; missing: Set<string> }>()
  /** missing parent id → ids of pending events waiting for it */
  readonly #waiting = new Map<string, Set<string>>()
  readonly #maxPending: number
  /** Ids of rejected events (bounded), so their descendants are rejected at once instead of waiting forever. */
  readonly #rejectedIds = new Set<string>()

  constructor(init: MembershipLogInit) {
    this.groupId = init.groupId
    this.#maxPending = init.maxPending ?? 4096
  }

  /** Number of events in the log. */
  get size(): number {
    return this.#entries.size
  }

  /** Number of events waiting for parents. */
  get pendingCount(): number {
    return this.#pending.size
  }

  /** The genesis entry, once known. */
  get genesis(): LogEntry | undefined {
    return this.#order[0]
  }

  has(id: string): boolean {
    return this.#entries.has(id)
  }

  hasPending(id: string): boolean {
    return this.#pending.has(id)
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
    return [...this.#waiting.keys()].filter((id) => !this.#entries.has(id) && !this.#pending.has(id))
  }

  /** The resolved members of the whole log. */
  members(): MemberMap {
    if (this.#members === undefined) {
      if (this.#heads.length === 1) {
        this.#members = (this.#heads[0] as LogEntry).membersAfter
      } else {
        this.#members = this.#resolveAll().members
      }
    }
    return this.#members
  }

  /**
   * Whether `entry` counts in the resolution of the whole log (it is not voided by a concurrent removal).
   */
  isValid(entry: LogEntry): boolean {
    return this.#resolveAll().valid.has(entry)
  }

  /**
   * The current epoch: among valid events whose keys went only to current members, the greatest by
   * (depth, id). Every replica with the same events picks the same one. `undefined` when every epoch
   * key reached someone who is no longer a member (for example after mutual removals): then nobody may
   * send until a member issues a rekey.
   */
  currentEpoch(): LogEntry | undefined {
    if (this.#current === null) {
      this.#current = undefined
      if (this.#heads.length === 1) {
        // the single head follows everything: it is valid and sealed to exactly the members
        this.#current = this.#heads[0]
      } else {
        const members = this.members()
        const { valid } = this.#resolveAll()
        for (const entry of valid) {
          if (this.#current !== undefined && compareEntries(entry, this.#current) <= 0) continue
          let safe = true
          for (const id of entry.membersAfter.keys()) {
            if (!members.has(id)) {
              safe = false
              break
            }
          }
          if (safe) this.#current = entry
        }
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
   * Inserts a decoded, signature-checked event. An event whose parents are unknown waits in a bounded
   * buffer and is applied when they arrive.
   *
   * @throws {ReplayError} the event is already in the log or waiting
   * @throws {WrongGroupError} it names another group
   * @throws {NotAMemberError} its author is not a member in its own causal past
   * @throws {InvalidEpochError} its keys are not sealed to exactly the members after it
   * @throws {PendingLimitError} its parents are unknown and the buffer is full
   */
  insert(event: SignedEvent): InsertResult {
    if (this.#entries.has(event.id) || this.#pending.has(event.id))
      throw new ReplayError(`event ${event.id} is already known`)
    this.#checkGroup(event)
    const missing = event.payload.parents.map(String).filter((id) => !this.#entries.has(id))
    if (missing.some((id) => this.#rejectedIds.has(id))) {
      this.#markRejected(event.id)
      throw new NotAMemberError(`a parent of event ${event.id} was rejected`)
    }
    if (missing.length > 0) {
      if (this.#pending.size >= this.#maxPending) throw new PendingLimitError()
      this.#pending.set(event.id, { event, missing: new Set(missing) })
      for (const id of missing) {
        let waiters = this.#waiting.get(id)
        if (waiters === undefined) {
          waiters = new Set()
          this.#waiting.set(id, waiters)
        }
        waiters.add(event.id)
      }
      return { applied: [], rejected: [], pending: true }
    }
    try {
      this.#apply(event)
    } catch (err) {
      this.#markRejected(event.id)
      this.#dropDependents(event.id, { applied: [], rejected: [], pending: false })
      throw err
    }
    const result: InsertResult = { applied: [event], rejected: [], pending: false }
    this.#drain(event.id, result)
    return result
  }

  #checkGroup(event: SignedEvent): void {
    if (event.payload.type === 'genesis') {
      if (event.id !== this.groupId)
        throw new WrongGroupError(`genesis ${event.id} is not group ${this.groupId}`)
    } else if (String(event.payload.group) !== this.groupId) {
      throw new WrongGroupError(`event is for group ${String(event.payload.group)}, not ${this.groupId}`)
    }
  }

  #drain(id: string, result: InsertResult): void {
    const ready = [id]
    while (ready.length > 0) {
      const parentId = ready.pop() as string
      const waiters = this.#waiting.get(parentId)
      if (waiters === undefined) continue
      this.#waiting.delete(parentId)
      for (const waiterId of waiters) {
        const waiting = this.#pending.get(waiterId)
        if (waiting === undefined) continue
        waiting.missing.delete(parentId)
        if (waiting.missing.size > 0) continue
        this.#unpend(waiterId)
        try {
          this.#apply(waiting.event)
          result.applied.push(waiting.event)
          ready.push(waiterId)
        } catch (err) {
          log('rejected buffered event %s: %s', waiterId, (err as Error).message)
          result.rejected.push({ event: waiting.event, error: err as Error })
          this.#markRejected(waiterId)
          // whatever waits on a rejected event can never apply
          this.#dropDependents(waiterId, result)
        }
      }
    }
  }

  #dropDependents(id: string, result: InsertResult): void {
    const waiters = this.#waiting.get(id)
    if (waiters === undefined) return
    this.#waiting.delete(id)
    for (const waiterId of waiters) {
      const waiting = this.#pending.get(waiterId)
      if (waiting === undefined) continue
      this.#unpend(waiterId)
      this.#markRejected(waiterId)
      result.rejected.push({
        event: waiting.event,
        error: new NotAMemberError('a parent of this event was rejected'),
      })
      this.#dropDependents(waiterId, result)
    }
  }

  #unpend(id: string): void {
    this.#pending.delete(id)
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
    const before = this.#membersBefore(parents)
    const { author, subject } = event
    const { type } = event.payload
    if (type !== 'genesis' && !before.has(author)) {
      throw new NotAMemberError(`${author} is not a member in the causal past of ${type} ${event.id}`)
    }
    let after: MemberMap = before
    if (type === 'genesis') {
      after = new Map([
        [author, { id: author, name: event.payload.subjectName as string, addedBy: event.id }],
      ])
    } else if (type === 'add' && subject !== undefined) {
      const next = new Map(before)
      next.set(subject, { id: subject, name: event.payload.subjectName as string, addedBy: event.id })
      after = next
    } else if (type === 'remove' && subject !== undefined && before.has(subject)) {
      const next = new Map(before)
      next.delete(subject)
      after = next
    }
    checkRecipients(event, after)
    const entry: LogEntry = {
      event,
      parents,
      depth: parents.reduce((d, p) => Math.max(d, p.depth + 1), 0),
      index: this.#order.length,
      membersAfter: after,
    }
    const parentSet = new Set(parents)
    const onHeads = parents.length === this.#heads.length && this.#heads.every((h) => parentSet.has(h))
    this.#entries.set(event.id, entry)
    this.#order.push(entry)
    this.#heads = [...this.#heads.filter((h) => !parentSet.has(h)), entry].sort((a, b) =>
      a.event.id < b.event.id ? -1 : 1,
    )
    this.#resolution = undefined
    this.#current = null
    // On top of all heads the new event follows everything, so it is the whole log's resolution.
    this.#members = onHeads ? after : undefined
  }

  /** Members over the causal closure of `parents` (the causal past of an event with these parents). */
  #membersBefore(parents: readonly LogEntry[]): MemberMap {
    if (parents.length === 0) return new Map()
    if (parents.length === 1) return (parents[0] as LogEntry).membersAfter
    const parentSet = new Set(parents)
    if (parents.length === this.#heads.length && this.#heads.every((h) => parentSet.has(h)))
      return this.members()
    return this.#resolve(this.#closure(parents)).members
  }

  #closure(roots: readonly LogEntry[]): LogEntry[] {
    const seen = new Set<LogEntry>()
    const stack = [...roots]
    while (stack.length > 0) {
      const entry = stack.pop() as LogEntry
      if (seen.has(entry)) continue
      seen.add(entry)
      for (const p of entry.parents) stack.push(p)
    }
    return [...seen].sort((a, b) => a.index - b.index)
  }

  #resolveAll(): Resolution {
    if (this.#resolution === undefined) this.#resolution = this.#resolve(this.#order)
    return this.#resolution
  }

  /** Strong-remove resolution of `entries`, a parent-closed set in topological order. */
  #resolve(entries: readonly LogEntry[]): Resolution {
    const ancestry = new Ancestry()
    const removalsOf = new Map<string, LogEntry[]>()
    for (const entry of entries) {
      const { type } = entry.event.payload
      if (type === 'remove') push(removalsOf, entry.event.subject as string, entry)
    }
    const valid = new Set<LogEntry>()
    const validAddsOf = new Map<string, LogEntry[]>()
    const isMemberBefore = (member: string, entry: LogEntry): boolean => {
      const removals = (removalsOf.get(member) ?? []).filter((r) => ancestry.precedes(r, entry))
      return (validAddsOf.get(member) ?? []).some(
        (add) => ancestry.precedes(add, entry) && removals.every((r) => ancestry.precedes(r, add)),
      )
    }
    for (const entry of entries) {
      const { type } = entry.event.payload
      const author = entry.event.author
      if (type === 'genesis') {
        valid.add(entry)
        push(validAddsOf, author, entry)
        continue
      }
      if (type === 'remove') {
        // Admitted on insertion (author a member in its causal past), and concurrent removals never cancel it.
        valid.add(entry)
        continue
      }
      const voided = (removalsOf.get(author) ?? []).some((r) => ancestry.concurrent(r, entry))
      if (voided || !isMemberBefore(author, entry)) continue
      valid.add(entry)
      if (type === 'add') push(validAddsOf, entry.event.subject as string, entry)
    }
    const members = new Map<string, MemberInfo>()
    for (const [member, adds] of validAddsOf) {
      const removals = removalsOf.get(member) ?? []
      let best: LogEntry | undefined
      for (const add of adds) {
        if (!removals.every((r) => ancestry.precedes(r, add))) continue
        if (best === undefined || compareEntries(add, best) > 0) best = add
      }
      if (best !== undefined) {
        members.set(member, {
          id: member,
          name: best.event.payload.subjectName as string,
          addedBy: best.event.id,
        })
      }
    }
    return { members, valid }
  }
}

/** Deterministic total order used for tie-breaks: deeper first, then by id. */
export function compareEntries(a: LogEntry, b: LogEntry): number {
  if (a.depth !== b.depth) return a.depth - b.depth
  return a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

function checkRecipients(event: SignedEvent, members: MemberMap): void {
  const keys = event.payload.keys
  if (keys.length !== members.size) {
    throw new InvalidEpochError(`epoch ${event.id} seals ${keys.length} keys for ${members.size} members`)
  }
  // keys are sorted and unique (checked by the decoder), so equal sizes plus inclusion means equality
  for (const key of keys) {
    if (!members.has(memberIdToString(key.to))) {
      throw new InvalidEpochError(`epoch ${event.id} seals a key to a non-member`)
    }
  }
}

/** Memoised "is x in the causal past of y" queries over immutable entries. */
class Ancestry {
  readonly #cache = new Map<LogEntry, Map<LogEntry, boolean>>()

  /** x is a strict ancestor of y. */
  precedes(x: LogEntry, y: LogEntry): boolean {
    if (x === y || x.depth >= y.depth) return false
    let row = this.#cache.get(y)
    if (row === undefined) {
      row = new Map()
      this.#cache.set(y, row)
    }
    const cached = row.get(x)
    if (cached !== undefined) return cached
    const seen = new Set<LogEntry>()
    const stack = [...y.parents]
    let found = false
    while (stack.length > 0) {
      const e = stack.pop() as LogEntry
      if (e === x) {
        found = true
        break
      }
      if (e.depth <= x.depth || seen.has(e)) continue
      seen.add(e)
      for (const p of e.parents) stack.push(p)
    }
    row.set(x, found)
    return found
  }

  concurrent(x: LogEntry, y: LogEntry): boolean {
    return x !== y && !this.precedes(x, y) && !this.precedes(y, x)
  }
}
