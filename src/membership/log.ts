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
  /** For an add: whether its subject was not yet a member in the event's causal past. */
  readonly addsNewMember: boolean
}

/** Options for {@link MembershipLog}. */
export interface MembershipLogInit {
  /** Group id (genesis CID string). */
  groupId: string
  /** Upper bound on events waiting for unknown parents. Default 4096. */
  maxPending?: number
  /** Upper bound on the bytes of events waiting for unknown parents. Default 16 MiB. */
  maxPendingBytes?: number
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
  /** Removals that take effect. */
  effective: Set<LogEntry>
}

/**
 * The membership log: a hash-linked DAG of signed add/remove/rekey events (a Merkle-CRDT), resolved
 * with the "strong remove" rule of DCGKA (Weidner et al. 2021) and p2panda-auth.
 *
 * Rules, for a set S of events closed under parents:
 * - An event is admitted only if its author is a member in the event's own causal past (checked on
 *   insertion; this is deterministic because the causal past of an event never changes). A non-member's
 *   event is rejected outright.
 * - A removal r of A targets A and, transitively, every member newly added by a target in an add
 *   concurrent with r (not in r's causal past): what the removed member did concurrently is undone.
 * - A removal r' "challenges" r when r's author is a target of r' and the two are concurrent. A removal
 *   takes effect unless an effective removal challenges it; removals that challenge each other in a
 *   cycle (mutual removals, A→B→C→A) all take effect, so everyone in the cycle is removed.
 * - An add or rekey is void when an effective removal targets its author concurrently.
 * - A member m is in the group iff some valid add of m (or the genesis, for the founder) causally follows
 *   every effective removal of m. So a re-add concurrent with a removal leaves m removed; a re-add after
 *   it works.
 * - Timestamps play no part. A removed member can still sign events whose parents predate its removal
 *   (indistinguishable from a concurrent partition): those are void, except a removal of the member who
 *   removed it, which forms a mutual-removal cycle. The victims can be re-added afterwards.
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
  readonly #maxPendingBytes: number
  #pendingBytes = 0
  /** Everyone the log ever names as added (or founder): authors outside it are rejected cheaply. */
  readonly #everAdded = new Set<string>()
  readonly #ancestry = new Ancestry()
  /** Ids of rejected events (bounded), so their descendants are rejected at once instead of waiting forever. */
  readonly #rejectedIds = new Set<string>()

  constructor(init: MembershipLogInit) {
    this.groupId = init.groupId
    this.#maxPending = init.maxPending ?? 4096
    this.#maxPendingBytes = init.maxPendingBytes ?? 16 * 1024 * 1024
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
   * The current epoch: among valid events whose keys went only to current members and whose author is a
   * current member, the greatest by (depth, id). Every replica with the same events picks the same one. `undefined` when every epoch
   * key reached someone who is no longer a member (for example after mutual removals): then nobody may
   * send until a member issues a rekey.
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
      if (head !== undefined && safe(head)) {
        // the single head follows everything: it is valid and sealed to exactly the members
        this.#current = head
      } else {
        this.#current = undefined
        for (const entry of this.#resolveAll().valid) {
          if (this.#current !== undefined && compareEntries(entry, this.#current) <= 0) continue
          if (safe(entry)) this.#current = entry
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
    if (this.#rejectedIds.has(event.id)) throw new NotAMemberError(`event ${event.id} was already rejected`)
    this.#checkGroup(event)
    const missing = event.payload.parents.map(String).filter((id) => !this.#entries.has(id))
    if (missing.some((id) => this.#rejectedIds.has(id))) {
      this.#markRejected(event.id)
      throw new NotAMemberError(`a parent of event ${event.id} was rejected`)
    }
    if (missing.length > 0) {
      if (
        this.#pending.size >= this.#maxPending ||
        this.#pendingBytes + event.bytes.length > this.#maxPendingBytes
      ) {
        throw new PendingLimitError()
      }
      this.#pendingBytes += event.bytes.length
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
    const waiting = this.#pending.get(id)
    if (waiting === undefined) return
    this.#pendingBytes -= waiting.event.bytes.length
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
      addsNewMember: type === 'add' && subject !== undefined && !before.has(subject),
    }
    if (type === 'genesis') this.#everAdded.add(author)
    if (type === 'add' && subject !== undefined) this.#everAdded.add(subject)
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
    const ancestry = this.#ancestry
    const removals: LogEntry[] = []
    const newAdds: LogEntry[] = []
    for (const entry of entries) {
      const { type } = entry.event.payload
      if (type === 'remove') removals.push(entry)
      else if (type === 'add' && entry.addsNewMember) newAdds.push(entry)
    }
    // 1. targets: the removed member, plus whoever a target newly added concurrently, transitively
    const targets = new Map<LogEntry, Set<string>>()
    for (const removal of removals) {
      const set = new Set([removal.event.subject as string])
      for (const add of newAdds) {
        if (set.has(add.event.author) && ancestry.concurrent(add, removal))
          set.add(add.event.subject as string)
      }
      targets.set(removal, set)
    }
    const targetsOf = (removal: LogEntry): Set<string> => targets.get(removal) as Set<string>
    // 2. which removals challenge which, and which take effect
    const challengers = new Map<LogEntry, LogEntry[]>()
    for (const removal of removals) {
      const author = removal.event.author
      challengers.set(
        removal,
        removals.filter(
          (other) => other !== removal && targetsOf(other).has(author) && ancestry.concurrent(other, removal),
        ),
      )
    }
    const effective = effectiveRemovals(removals, challengers)
    // 3. validity of everything else, then members
    const valid = new Set<LogEntry>()
    const validAddsOf = new Map<string, LogEntry[]>()
    const effectiveRemovalsOf = new Map<string, LogEntry[]>()
    for (const removal of effective) push(effectiveRemovalsOf, removal.event.subject as string, removal)
    for (const entry of entries) {
      const { type } = entry.event.payload
      const author = entry.event.author
      if (type === 'genesis') {
        valid.add(entry)
        push(validAddsOf, author, entry)
      } else if (type === 'remove') {
        if (effective.has(entry)) valid.add(entry)
      } else {
        let voided = false
        for (const removal of effective) {
          if (targetsOf(removal).has(author) && ancestry.concurrent(removal, entry)) {
            voided = true
            break
          }
        }
        if (voided) continue
        valid.add(entry)
        if (type === 'add') push(validAddsOf, entry.event.subject as string, entry)
      }
    }
    const members = new Map<string, MemberInfo>()
    for (const [member, adds] of validAddsOf) {
      const removalsOfMember = effectiveRemovalsOf.get(member) ?? []
      let best: LogEntry | undefined
      for (const add of adds) {
        if (!removalsOfMember.every((r) => ancestry.precedes(r, add))) continue
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
    return { members, valid, effective }
  }

  /**
   * Whether `epoch` is in the causal past of an effective removal of `member`: an epoch the member held
   * before it was removed, the only kind under which its in-flight messages may still be accepted.
   */
  precedesRemovalOf(epoch: LogEntry, member: string): boolean {
    for (const removal of this.#resolveAll().effective) {
      if (removal.event.subject === member && this.#ancestry.precedes(epoch, removal)) return true
    }
    return false
  }
}

/**
 * Decides which removals take effect: one takes effect unless an effective removal outside its cycle
 * challenges it. Strongly connected components are settled sinks first (Tarjan), and a component in
 * which some removals were voided from outside is settled again without them.
 */
function effectiveRemovals(
  removals: readonly LogEntry[],
  challengers: ReadonlyMap<LogEntry, LogEntry[]>,
): Set<LogEntry> {
  const status = new Map<LogEntry, boolean>()
  const settle = (nodes: readonly LogEntry[]): void => {
    const inNodes = new Set(nodes)
    for (const component of stronglyConnected(nodes, (r) =>
      (challengers.get(r) ?? []).filter((c) => inNodes.has(c)),
    )) {
      const members = new Set(component)
      const voided = component.filter((r) =>
        (challengers.get(r) ?? []).some((c) => !members.has(c) && status.get(c) === true),
      )
      if (voided.length === 0) {
        for (const r of component) status.set(r, true)
        continue
      }
      for (const r of voided) status.set(r, false)
      const rest = component.filter((r) => !voided.includes(r))
      if (rest.length > 0) settle(rest)
    }
  }
  settle(removals)
  return new Set(removals.filter((r) => status.get(r) === true))
}

/** Tarjan's strongly connected components, in reverse topological order (sinks first), iteratively. */
function stronglyConnected(nodes: readonly LogEntry[], edges: (node: LogEntry) => LogEntry[]): LogEntry[][] {
  const index = new Map<LogEntry, number>()
  const low = new Map<LogEntry, number>()
  const onStack = new Set<LogEntry>()
  const stack: LogEntry[] = []
  const components: LogEntry[][] = []
  let counter = 0
  for (const root of nodes) {
    if (index.has(root)) continue
    const work: Array<{ node: LogEntry; next: LogEntry[]; i: number }> = []
    const open = (node: LogEntry): void => {
      index.set(node, counter)
      low.set(node, counter)
      counter++
      stack.push(node)
      onStack.add(node)
      work.push({ node, next: edges(node), i: 0 })
    }
    open(root)
    while (work.length > 0) {
      const frame = work[work.length - 1] as { node: LogEntry; next: LogEntry[]; i: number }
      if (frame.i < frame.next.length) {
        const to = frame.next[frame.i++] as LogEntry
        if (!index.has(to)) open(to)
        else if (onStack.has(to))
          low.set(frame.node, Math.min(low.get(frame.node) as number, index.get(to) as number))
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent !== undefined) {
        low.set(parent.node, Math.min(low.get(parent.node) as number, low.get(frame.node) as number))
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: LogEntry[] = []
        for (;;) {
          const node = stack.pop() as LogEntry
          onStack.delete(node)
          component.push(node)
          if (node === frame.node) break
        }
        components.push(component.sort((a, b) => a.index - b.index))
      }
    }
  }
  return components
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

/**
 * "Is x in the causal past of y" over immutable entries, answered from per-entry ancestor bitsets
 * (bit i = the entry inserted i-th), built lazily in insertion order: O(1) per query after
 * O(n²/32) words of work for the whole log.
 */
class Ancestry {
  readonly #bits = new Map<LogEntry, Uint32Array>()

  #ancestorsOf(entry: LogEntry): Uint32Array {
    const cached = this.#bits.get(entry)
    if (cached !== undefined) return cached
    // build missing ancestors first, parents before children, without recursion
    const order: LogEntry[] = []
    const stack = [entry]
    const seen = new Set<LogEntry>()
    while (stack.length > 0) {
      const e = stack.pop() as LogEntry
      if (this.#bits.has(e) || seen.has(e)) continue
      seen.add(e)
      order.push(e)
      for (const p of e.parents) stack.push(p)
    }
    order.sort((a, b) => a.index - b.index)
    for (const e of order) {
      const bits = new Uint32Array((e.index >>> 5) + 1)
      for (const p of e.parents) {
        const pb = this.#bits.get(p) as Uint32Array
        for (let w = 0; w < pb.length; w++) bits[w] = (bits[w] as number) | (pb[w] as number)
        bits[p.index >>> 5] = (bits[p.index >>> 5] as number) | (1 << (p.index & 31))
      }
      this.#bits.set(e, bits)
    }
    return this.#bits.get(entry) as Uint32Array
  }

  /** x is a strict ancestor of y. */
  precedes(x: LogEntry, y: LogEntry): boolean {
    if (x === y || x.index >= y.index) return false
    const word = this.#ancestorsOf(y)[x.index >>> 5]
    return word !== undefined && (word & (1 << (x.index & 31))) !== 0
  }

  concurrent(x: LogEntry, y: LogEntry): boolean {
    return x !== y && !this.precedes(x, y) && !this.precedes(y, x)
  }
}
