import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Identity } from '../../src/crypto/index.js'
import { Group, type SignedEvent } from '../../src/membership/index.js'
import {
  createScenario,
  deliver,
  exchangeAll,
  forgeEvent,
  identities,
  seededRandom,
  shuffled,
} from '../fixtures/membership.js'

/** Runs of the main property; raise it (e.g. `MEMBERSHIP_RUNS=2000`) to search harder. */
const RUNS = Number(process.env.MEMBERSHIP_RUNS ?? 50)
const TIMEOUT = 30_000 + RUNS * 300

const NAMES = ['F', 'A', 'B', 'C', 'D', 'E'] as const
type Name = (typeof NAMES)[number]

interface Step {
  /**
   * Deliveries before the operation, in random order: all of `from`'s events, a parent-closed prefix
   * (a `keep` share of them in `events()` order), or a random `keep` share (children may wait for
   * parents that never come until the final exchange).
   */
  deliveries: Array<{
    from: number
    to: number
    mode: 'all' | 'prefix' | 'subset'
    keep: number
    seed: number
  }>
  actor: number
  kind: 'add' | 'remove' | 'rekey'
  target: number
}

interface History {
  size: number
  /** How many of the others the founder adds before the concurrent part starts. */
  initial: number
  steps: Step[]
  seed: number
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  deliveries: fc.array(
    fc.record({
      from: fc.nat(),
      to: fc.nat(),
      mode: fc.constantFrom('all', 'prefix', 'prefix', 'subset'),
      keep: fc.double({ min: 0, max: 1, noNaN: true }),
      seed: fc.integer(),
    }),
    { maxLength: 3 },
  ),
  actor: fc.nat(),
  // adds weigh double, so that histories do not mostly shrink to nobody
  kind: fc.constantFrom('add', 'add', 'remove', 'rekey'),
  target: fc.nat(),
})

const historyArb: fc.Arbitrary<History> = fc.record({
  size: fc.integer({ min: 3, max: 6 }),
  initial: fc.nat(),
  steps: fc.array(stepArb, { minLength: 5, maxLength: 25 }),
  seed: fc.integer(),
})

/** Everything a user could observe about a replica's membership state. */
function observe(group: Group) {
  const epoch = group.currentEpoch()
  const members = group.members()
  return {
    members: members.map((m) => ({ id: m.id, name: m.name })),
    epoch: epoch === undefined ? undefined : { id: epoch.id, members: [...epoch.members].sort() },
    needsRekey: group.needsRekey(),
    heads: group.heads(),
    ranks: members.map((m) => group.rekeyRank(m.id)),
  }
}

/**
 * A straightforward reading of the rules in the TSDoc of `MembershipLog`, recomputed from scratch over
 * a set of events closed under parents: no caching, no incremental paths.
 */
class ReferenceResolver {
  readonly #byId = new Map<string, SignedEvent>()
  readonly #ancestors = new Map<string, Set<string>>()
  readonly #depth = new Map<string, number>()

  constructor(events: readonly SignedEvent[]) {
    for (const e of events) this.#byId.set(e.id, e)
  }

  ancestors(id: string): Set<string> {
    let set = this.#ancestors.get(id)
    if (set === undefined) {
      set = new Set()
      for (const parent of (this.#byId.get(id) as SignedEvent).payload.parents.map(String)) {
        set.add(parent)
        for (const a of this.ancestors(parent)) set.add(a)
      }
      this.#ancestors.set(id, set)
    }
    return set
  }

  depth(id: string): number {
    let d = this.#depth.get(id)
    if (d === undefined) {
      const parents = (this.#byId.get(id) as SignedEvent).payload.parents.map(String)
      d = parents.length === 0 ? 0 : 1 + Math.max(...parents.map((p) => this.depth(p)))
      this.#depth.set(id, d)
    }
    return d
  }

  readonly #newMember = new Map<string, boolean>()

  /** An add that brought in someone who was not a member in its own causal past. */
  addsNewMember(add: SignedEvent): boolean {
    let known = this.#newMember.get(add.id)
    if (known === undefined) {
      known = !this.resolve(this.ancestors(add.id)).members.has(add.subject as string)
      this.#newMember.set(add.id, known)
    }
    return known
  }

  /** Members, valid events and effective removals over `ids` (closed under parents). */
  resolve(ids: ReadonlySet<string>): {
    members: Map<string, string>
    valid: Set<string>
    effective: Set<string>
  } {
    const events = [...ids].map((id) => this.#byId.get(id) as SignedEvent)
    events.sort((x, y) => this.depth(x.id) - this.depth(y.id))
    const before = (x: string, y: string): boolean => this.ancestors(y).has(x)
    const concurrent = (x: string, y: string): boolean => x !== y && !before(x, y) && !before(y, x)
    const removals = events.filter((e) => e.payload.type === 'remove')
    const newAdds = events.filter((e) => e.payload.type === 'add' && this.addsNewMember(e))
    // targets: the subject, plus whoever a target newly added concurrently with the removal (to a fixpoint)
    const targets = new Map<string, Set<string>>()
    for (const r of removals) {
      const t = new Set([r.subject as string])
      let grew = true
      while (grew) {
        grew = false
        for (const a of newAdds) {
          if (t.has(a.author) && !t.has(a.subject as string) && concurrent(a.id, r.id)) {
            t.add(a.subject as string)
            grew = true
          }
        }
      }
      targets.set(r.id, t)
    }
    const challengers = (r: SignedEvent) =>
      removals.filter((c) => c.id !== r.id && targets.get(c.id)?.has(r.author) && concurrent(c.id, r.id))
    // effective removals: a removal stands unless an effective removal outside its cycle challenges it
    const status = new Map<string, boolean>()
    const settle = (nodes: SignedEvent[]): void => {
      const ids = new Set(nodes.map((n) => n.id))
      // reach[x] = nodes reachable from x along "is challenged by" edges inside `nodes`
      const reach = new Map<string, Set<string>>()
      for (const n of nodes) {
        const seen = new Set<string>()
        const stack = challengers(n).filter((c) => ids.has(c.id))
        while (stack.length > 0) {
          const c = stack.pop() as SignedEvent
          if (seen.has(c.id)) continue
          seen.add(c.id)
          for (const d of challengers(c)) if (ids.has(d.id)) stack.push(d)
        }
        reach.set(n.id, seen)
      }
      let left = [...nodes]
      while (left.length > 0) {
        // a component all of whose challengers outside it are settled
        const component = (n: SignedEvent) =>
          left.filter((m) => m.id === n.id || (reach.get(n.id)?.has(m.id) && reach.get(m.id)?.has(n.id)))
        const ready = left.find(
          (n) =>
            challengers(n).every(
              (c) => !ids.has(c.id) || status.has(c.id) || component(n).some((m) => m.id === c.id),
            ) &&
            component(n).every((m) =>
              challengers(m).every(
                (c) => !ids.has(c.id) || status.has(c.id) || component(n).some((k) => k.id === c.id),
              ),
            ),
        )
        if (ready === undefined) throw new Error('reference resolver: no settled component')
        const comp = component(ready)
        const inComp = new Set(comp.map((m) => m.id))
        const voided = comp.filter((m) =>
          challengers(m).some((c) => !inComp.has(c.id) && status.get(c.id) === true),
        )
        if (voided.length === 0) for (const m of comp) status.set(m.id, true)
        else {
          for (const m of voided) status.set(m.id, false)
          const rest = comp.filter((m) => !voided.includes(m))
          if (rest.length > 0) settle(rest)
        }
        left = left.filter((m) => !inComp.has(m.id))
      }
    }
    settle(removals)
    const effective = new Set(removals.filter((r) => status.get(r.id) === true).map((r) => r.id))
    const valid = new Set<string>()
    const validAdds: SignedEvent[] = []
    for (const e of events) {
      const { type } = e.payload
      if (type === 'genesis') {
        valid.add(e.id)
        validAdds.push(e)
      } else if (type === 'remove') {
        if (effective.has(e.id)) valid.add(e.id)
      } else if (![...effective].some((r) => targets.get(r)?.has(e.author) && concurrent(r, e.id))) {
        valid.add(e.id)
        if (type === 'add') validAdds.push(e)
      }
    }
    const addsOf = (m: string) =>
      validAdds.filter((a) => (a.payload.type === 'genesis' ? a.author : a.subject) === m)
    const members = new Map<string, string>()
    const candidates = new Set(
      validAdds.map((a) => (a.payload.type === 'genesis' ? a.author : (a.subject as string))),
    )
    for (const m of candidates) {
      const removalsOfM = removals.filter((r) => r.subject === m && effective.has(r.id))
      const surviving = addsOf(m).filter((a) => removalsOfM.every((r) => before(r.id, a.id)))
      // the name comes from the surviving add that is last by (depth, id)
      surviving.sort((x, y) => this.depth(x.id) - this.depth(y.id) || (x.id < y.id ? -1 : 1))
      const last = surviving.at(-1)
      if (last !== undefined) members.set(m, last.payload.subjectName as string)
    }
    return { members, valid, effective }
  }

  /** What a user observes, by the rules; `observe` must agree. */
  expected(): Pick<ReturnType<typeof observe>, 'members' | 'epoch' | 'needsRekey'> {
    const all = new Set(this.#byId.keys())
    const { members, valid } = this.resolve(all)
    let current: { id: string; members: string[] } | undefined
    const order = (id: string) => [this.depth(id), id] as const
    for (const id of valid) {
      const after = this.resolve(new Set([id, ...this.ancestors(id)])).members
      if (![...after.keys()].every((m) => members.has(m))) continue
      // the key's author chose it: it must still be a member
      if (!members.has((this.#byId.get(id) as SignedEvent).author)) continue
      const [d, i] = order(id)
      if (current !== undefined) {
        const [cd, ci] = order(current.id)
        if (d < cd || (d === cd && i < ci)) continue
      }
      current = { id, members: [...after.keys()].sort() }
    }
    return {
      members: [...members].map(([id, name]) => ({ id, name })),
      epoch: current,
      needsRekey: members.size > 0 && (current === undefined || current.members.length !== members.size),
    }
  }
}

/**
 * How replicas act: through the `Group` API (real HPKE seals, ~2 ms a recipient), or by signing the same
 * event `Group` would author (its heads as parents, its members ± the subject as recipients) with
 * placeholder key bytes, which is many times faster and leaves resolution unchanged.
 */
type Authoring = 'api' | 'fast'

async function act(
  actor: Group,
  authoring: Authoring,
  type: 'add' | 'remove' | 'rekey',
  subject?: Identity,
  name?: string,
): Promise<void> {
  if (authoring === 'api') {
    if (type === 'add') await actor.add((subject as Identity).memberId, name as string)
    else if (type === 'remove') await actor.remove((subject as Identity).memberId)
    else await actor.rekey()
    return
  }
  const event = await forgeEvent({
    on: actor,
    type,
    author: actor.identity,
    ...(subject === undefined ? {} : { subject }),
    ...(name === undefined ? {} : { subjectName: name }),
  })
  const applied = actor.receiveEvent(event.bytes).applied.map((e) => e.id)
  if (applied.length !== 1 || applied[0] !== event.id) throw new Error(`own event ${event.id} not applied`)
}

/** Runs a random concurrent history and returns the replicas that made it, fully exchanged. */
async function runHistory(
  history: History,
  authoring: Authoring,
): Promise<{ replicas: Group[]; random: () => number }> {
  const names = NAMES.slice(0, history.size)
  const initial = names.slice(0, 2 + (history.initial % (history.size - 1)))
  const s = await createScenario<Name>({ names, members: initial })
  const replicas = s.all
  const random = seededRandom(history.seed)
  for (const [index, step] of history.steps.entries()) {
    for (const d of step.deliveries) {
      const from = replicas[d.from % replicas.length] as Group
      const to = replicas[d.to % replicas.length] as Group
      if (from === to) continue
      const pick = seededRandom(d.seed)
      const events = from.events()
      const chosen =
        d.mode === 'all'
          ? events
          : d.mode === 'prefix'
            ? events.slice(0, Math.ceil(d.keep * events.length))
            : events.filter(() => pick() < d.keep)
      deliver(from, to, { only: new Set(chosen.map((e) => e.id)), random: pick })
    }
    const actors = replicas.filter((r) => r.isMember())
    if (actors.length === 0) continue
    const actor = actors[step.actor % actors.length] as Group
    const members = [...actor.memberMap().keys()]
    const identityOf = (id: string) =>
      replicas.map((r) => r.identity).find((i) => i.memberId === id) as Identity
    const outsiders = replicas.map((r) => r.identity).filter((i) => !members.includes(i.memberId))
    if (step.kind === 'add' && outsiders.length > 0) {
      const who = outsiders[step.target % outsiders.length] as Identity
      await act(actor, authoring, 'add', who, `${s.nameOf(who.memberId)}${index}`)
    } else if (step.kind === 'remove' && members.length > 1) {
      // (the last member removing itself is its own case: see membership.test.ts)
      await act(actor, authoring, 'remove', identityOf(members[step.target % members.length] as string))
    } else {
      await act(actor, authoring, 'rekey')
    }
  }
  exchangeAll(replicas, random)
  return { replicas, random }
}

/** Asserts every property of one history; see the `it` titles. */
async function checkHistory(history: History, authoring: Authoring, pool: Identity[]): Promise<void> {
  const { replicas, random } = await runHistory(history, authoring)
  const reference = replicas[0] as Group
  const events = reference.events()
  const expected = observe(reference)

  // the replicas that made the history agree after a full exchange
  for (const r of replicas) expect(observe(r)).toEqual(expected)

  // and agree with a plain reading of the rules
  const byId = (x: { id: string }, y: { id: string }) => (x.id < y.id ? -1 : 1)
  const resolver = new ReferenceResolver(events)
  const rules = resolver.expected()
  expect({ ...rules, members: rules.members.sort(byId) }).toEqual({
    members: [...expected.members].sort(byId),
    epoch: expected.epoch,
    needsRekey: expected.needsRekey,
  })

  // a removal sticks unless the member is re-added after it; nobody is a member without an add
  for (const member of reference.members()) {
    const adds = events.filter(
      (e) =>
        (e.payload.type === 'add' && e.subject === member.id) ||
        (e.payload.type === 'genesis' && e.author === member.id),
    )
    expect(adds.length).toBeGreaterThan(0)
    const { effective } = resolver.resolve(new Set(events.map((e) => e.id)))
    for (const removal of events.filter(
      (e) => e.payload.type === 'remove' && e.subject === member.id && effective.has(e.id),
    )) {
      expect(adds.some((a) => resolver.ancestors(a.id).has(removal.id))).toBe(true)
    }
  }

  // fresh replicas (a second device of the founder, a member, an outsider) get everything shuffled,
  // children often before parents, in batches, and are asked about their state between batches
  for (const identity of [pool[0], pool[1], pool[NAMES.length]] as Identity[]) {
    const fresh = new Group({ identity, groupId: reference.id })
    const order = shuffled(events, random)
    while (order.length > 0) {
      for (const e of order.splice(0, 1 + Math.floor(random() * 6))) {
        const { rejected } = fresh.receiveEvent(e.bytes)
        if (rejected.length > 0)
          throw new Error(`rejected: ${rejected.map((r) => r.error.message).join('; ')}`)
      }
      observe(fresh)
    }
    expect(fresh.missingEvents()).toEqual([])
    expect(observe(fresh)).toEqual(expected)
  }
}

describe('membership properties: random concurrent histories', () => {
  it(
    'replicas converge whatever the delivery order, agree with the rules, and effective removals stick',
    async () => {
      const pool = await identities(NAMES.length + 1)
      await fc.assert(
        fc.asyncProperty(historyArb, (history) => checkHistory(history, 'fast', pool)),
        { numRuns: RUNS },
      )
    },
    TIMEOUT,
  )

  it(
    'the same holds when every replica acts through the Group API (real sealed keys)',
    async () => {
      const pool = await identities(NAMES.length + 1)
      await fc.assert(
        fc.asyncProperty(historyArb, (history) => checkHistory(history, 'api', pool)),
        { numRuns: Math.max(1, Math.round(RUNS / 5)) },
      )
    },
    TIMEOUT,
  )
})
