/**
 * Resolution of a membership log: which events count and who the members are, as a pure function of a
 * parent-closed set of events, and the causal order ("is x in the past of y") it is computed with.
 *
 * @packageDocumentation
 */

import type { SignedEvent } from './event.js'
import type { MembershipChange, Rename } from './group-types.js'
import { inviteTokenOf, losesTokenRace } from './invite-token.js'

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
  /** A derived add's base epoch, whose key its key is derived from (epoch-derivation.ts). */
  readonly keyBase?: LogEntry
}

/** What {@link resolve} makes of a set of events. */
export interface Resolution {
  members: Map<string, MemberInfo>
  /** Adds, rekeys and renames that count, and every removal (removals always take effect). */
  valid: Set<LogEntry>
  /** Events whose epoch key may become current: keyed, and not chosen by an author removed concurrently. */
  validEpochs: Set<LogEntry>
}

/**
 * Resolution of `entries`, a parent-closed set in topological order. A pure function of the set: the
 * order in which events arrived plays no part. The rules are stated, with their invariants and why they
 * are what they are, in docs/ARCHITECTURE.md ("Resolution").
 *
 * For a set S of events closed under parents:
 * 1. An event is admitted only if its author is a member in the event's own causal past (fixed forever
 *    once the event exists, so every replica decides alike). An add of someone who is a member there is
 *    refused: a member's name changes only by its own rename.
 * 2. Every removal takes effect. Nothing voids a removal, so a removal a replica has applied stays
 *    applied, whatever arrives later.
 * 3. A removal of A voids every add, rekey and rename of A concurrent with it (not in its causal past),
 *    and the key of every removal A made concurrently: what a member did in parallel with being removed
 *    grants nothing.
 * 4. An add, rekey or rename counts only if its author is a member in its causal past by an add that
 *    counts: whoever a voided add brought in is void too, and so on (no puppets).
 * 5. A member m is in the group iff an add of m that counts (the genesis, for the founder) causally
 *    follows every removal of m. A re-add concurrent with a removal leaves m removed; one after it works.
 * 6. Timestamps play no part.
 * 7–8. An add by invite token counts only if its inviter stands as its author must (3, 4) and no add
 *    with the token and a lower id is concurrent with it (one use in its past refuses it): invite-token.ts.
 * Nothing un-voids: more events can only void more. So events by someone removed in parallel with them
 * (a back-dated event, say) only ever take members away.
 *
 * With `base`, `entries` are the events after a cut: `base` is comparable with every event of the set
 * (its whole causal past is in the set, the rest follows it), and `entries` are the events that follow
 * it. Nothing after `base` can void what precedes it (every later removal follows it), so its
 * `membersAfter` stands for the whole past: each member there counts as added by `base`, which every
 * later event follows and no later removal precedes. Only `valid` and `validEpochs` of `entries` are
 * returned; the members are those of the whole set.
 */
export function resolve(entries: readonly LogEntry[], ancestry: Ancestry, base?: LogEntry): Resolution {
  const removalsOf = new Map<string, LogEntry[]>()
  const tokenUses = new Map<string, LogEntry[]>()
  for (const entry of entries) {
    if (entry.event.payload.type === 'remove') push(removalsOf, entry.event.subject as string, entry)
    const token = inviteTokenOf(entry.event)
    if (token !== undefined) push(tokenUses, token.id, entry)
  }
  const before = base?.membersAfter
  const valid = new Set<LogEntry>()
  const validEpochs = new Set<LogEntry>()
  /** member → its adds that count (the genesis for the founder; `base` for a member there) */
  const addsOf = new Map<string, LogEntry[]>()
  const addsOfMember = (member: string): readonly LogEntry[] =>
    addsOf.get(member) ?? (base !== undefined && before?.has(member) === true ? [base] : [])
  const renamesOf = new Map<string, LogEntry[]>()
  // Topological order: whatever an entry's support rests on (adds in its causal past) is settled first.
  for (const entry of entries) {
    const { event } = entry
    const { type } = event.payload
    const author = event.author
    if (type === 'genesis') {
      valid.add(entry)
      validEpochs.add(entry)
      push(addsOf, author, entry)
      continue
    }
    // rule 3: `member` is being removed in parallel with it
    const removedMeanwhile = (member: string): boolean =>
      (removalsOf.get(member) ?? []).some((r) => ancestry.concurrent(r, entry))
    // rule 4: `member` is a member in its past by an add that counts
    const supported = (member: string): boolean =>
      addsOfMember(member).some(
        (add) =>
          (add === base || ancestry.precedes(add, entry)) &&
          (removalsOf.get(member) ?? []).every(
            (r) => !ancestry.precedes(r, entry) || ancestry.precedes(r, add),
          ),
      )
    if (type === 'remove') {
      // rule 2: the removal stands; its key counts only if a member in good standing chose it
      valid.add(entry)
      if (supported(author) && !removedMeanwhile(author)) validEpochs.add(entry)
      continue
    }
    if (removedMeanwhile(author) || !supported(author)) continue
    // an add by invite token: its inviter stands as its author must (rules 3, 4), and of concurrent adds
    // with one token only the lowest id counts (invite-token.ts)
    const inviter = inviteTokenOf(event)?.inviter
    if (inviter !== undefined) {
      if (removedMeanwhile(inviter) || !supported(inviter)) continue
      if (losesTokenRace(entry, tokenUses, ancestry)) continue
    }
    valid.add(entry)
    if (type === 'add') {
      const subject = event.subject as string
      if (!addsOf.has(subject)) addsOf.set(subject, [...addsOfMember(subject)])
      push(addsOf, subject, entry)
    } else if (type === 'rename') push(renamesOf, author, entry)
    if (type !== 'rename') validEpochs.add(entry)
  }
  // rule 5
  const members = new Map<string, MemberInfo>()
  const settle = (member: string): void => {
    const removalsOfMember = removalsOf.get(member) ?? []
    let best: LogEntry | undefined
    for (const add of addsOfMember(member)) {
      // `base` precedes no later removal: it keeps its members only while nothing later removes them
      if (!removalsOfMember.every((r) => ancestry.precedes(r, add))) continue
      if (best === undefined || compareEntries(add, best) > 0) best = add
    }
    if (best === undefined) return
    // the name: the member's own latest rename since it was (re-)added, else the name it was added with
    let named = best
    for (const rename of renamesOf.get(member) ?? []) {
      if (!ancestry.precedes(rename, best) && compareEntries(rename, named) > 0) named = rename
    }
    const kept = best === base ? (before?.get(member) as MemberInfo) : undefined
    members.set(member, {
      id: member,
      name: named === base ? (kept as MemberInfo).name : (named.event.payload.subjectName as string),
      addedBy: kept?.addedBy ?? best.event.id,
    })
  }
  if (before !== undefined) for (const member of before.keys()) settle(member)
  for (const member of addsOf.keys()) if (!members.has(member)) settle(member)
  return { members, valid, validEpochs }
}

/** Whether an entry starts an epoch (carries a sealed group key); renames do not. */
export function isEpoch(entry: LogEntry): boolean {
  return entry.event.payload.type !== 'rename'
}

/** Deterministic total order used for tie-breaks: deeper first, then by id. */
export function compareEntries(a: LogEntry, b: LogEntry): number {
  if (a.depth !== b.depth) return a.depth - b.depth
  return a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0
}

/** The renames between two resolutions: members in both whose name changed. */
export function renamesBetween(before: MemberMap, after: MemberMap): Rename[] {
  if (before === after) return []
  const renamed: Rename[] = []
  for (const [id, info] of after) {
    const old = before.get(id)
    if (old !== undefined && old.name !== info.name)
      renamed.push({ member: id, from: old.name, to: info.name })
  }
  return renamed
}

/** Whether two resolutions have the same members (names aside). */
export function sameMembers(a: MemberMap, b: MemberMap): boolean {
  if (a === b) return true
  if (a.size !== b.size) return false
  for (const id of a.keys()) if (!b.has(id)) return false
  return true
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

export /**
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

  /** Neither is in the causal past of the other. */
  concurrent(x: LogEntry, y: LogEntry): boolean {
    return x !== y && !this.precedes(x, y) && !this.precedes(y, x)
  }
}

/**
 * What a membership event changed, in words: who added or removed whom, who created the group or
 * renamed itself. `undefined` for rekeys.
 */
export function describeChange(event: SignedEvent): MembershipChange | undefined {
  const { type } = event.payload
  if (type === 'rename') return { action: 'rename', by: event.author, member: event.author, event: event.id }
  if (type === 'rekey' || event.subject === undefined) return undefined
  return {
    action: type === 'genesis' ? 'create' : type,
    by: event.author,
    member: event.subject,
    event: event.id,
  }
}
