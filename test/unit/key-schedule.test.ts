/**
 * Issue 11, "adds cost a full rekey": an add derives its epoch key one-way from the current epoch's and
 * seals it to the newcomer only; a removal still seals a fresh key to everyone. Who can derive each key
 * (docs/ARCHITECTURE.md, "Epochs and keys"): exactly the members after the epoch and its author. These
 * are the fixed cases; test/unit/membership-properties.test.ts checks the rule on random histories.
 */
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { decodeEvent, encodePayload, MAX_MEMBERS, signEvent } from '../../src/membership/event.js'
import type { Group, SignedEvent } from '../../src/membership/index.js'
import { createScenario, deliver, exchangeAll, forgeEvent, thrown } from '../fixtures/membership.js'

/** What `reader` makes of a message `sender` seals now. */
async function reads(sender: Group, reader: Group): Promise<string> {
  const sealed = await sender.seal('hello')
  return (await reader.open(sealed.bytes)).kind
}

describe('key schedule: adds derive, removals rekey', () => {
  it('an add seals one key, to the newcomer, derived from the current epoch; everyone reads, the newcomer not the past', async () => {
    const s = await createScenario({ names: ['alice', 'bob', 'carol', 'dave'], members: ['alice', 'bob'] })
    const { alice, bob, carol } = s.replicas
    const before = alice.currentEpoch()?.id as string
    const old = await alice.seal('before carol')
    const add = await alice.add(s.ids.carol.memberId, 'carol')
    expect(add.payload.keys.map((k) => Buffer.from(k.to))).toEqual([Buffer.from(s.ids.carol.memberIdBytes)])
    expect(add.payload.base?.toString()).toBe(before)
    exchangeAll(s.all)
    expect(carol.currentEpoch()?.id).toBe(add.id)
    for (const r of s.all) if (r.isMember()) expect(await r.currentKeyProblem()).toBeUndefined()
    expect(await reads(alice, carol)).toBe('message')
    expect(await reads(carol, bob)).toBe('message')
    expect(await reads(bob, alice)).toBe('message')
    // carol reads nothing from before she was added
    expect((await carol.open(old.bytes)).kind).toBe('encrypted')
    // a chain of derived adds: dave, added by carol, reads, and bob derives two steps
    const addDave = await carol.add(s.ids.dave.memberId, 'dave')
    expect(addDave.payload.base?.toString()).toBe(add.id)
    exchangeAll(s.all)
    expect(await reads(s.replicas.dave, bob)).toBe('message')
    expect(await reads(bob, s.replicas.dave)).toBe('message')
  })

  it('a removal still seals a fresh key to everyone else, and the next add derives from it', async () => {
    const s = await createScenario({
      names: ['alice', 'bob', 'carol', 'dave'],
      members: ['alice', 'bob', 'carol'],
    })
    const { alice, carol, dave } = s.replicas
    const removal = await alice.remove(s.ids.bob.memberId)
    expect(removal.payload.base).toBeUndefined()
    expect(removal.payload.keys).toHaveLength(2)
    const add = await alice.add(s.ids.dave.memberId, 'dave')
    expect(add.payload.base?.toString()).toBe(removal.id)
    exchangeAll(s.all)
    expect(await reads(dave, carol)).toBe('message')
    expect(await reads(carol, s.replicas.bob)).toBe('encrypted')
  })

  it('an add concurrent with a removal derives from a key the removed member held: never current, and the rekey after it is what counts', async () => {
    const s = await createScenario({
      names: ['alice', 'bob', 'mallory', 'carol'],
      members: ['alice', 'bob', 'mallory'],
    })
    const { alice, bob, mallory, carol } = s.replicas
    // partitioned: alice removes mallory; bob, not knowing, adds carol, deriving from a key mallory holds
    await alice.remove(s.ids.mallory.memberId)
    const add = await bob.add(s.ids.carol.memberId, 'carol')
    expect(add.payload.keys).toHaveLength(1)
    // mallory has the add and the epoch it derives from: she can compute its key
    deliver(bob, mallory)
    exchangeAll([alice, bob, carol])
    for (const r of [alice, bob, carol]) {
      expect(r.isMember(s.ids.mallory.memberId)).toBe(false)
      expect(r.currentEpoch()?.id).not.toBe(add.id)
      expect(r.needsRekey()).toBe(true)
    }
    // nor can an add be derived from that epoch now: the member ranked first rekeys instead, to everyone
    const first = [alice, bob, carol].find((r) => r.rekeyRank() === 0) as Group
    const rekey = await first.rekey()
    expect(rekey.payload.keys).toHaveLength(3)
    exchangeAll([alice, bob, carol])
    deliver(alice, mallory)
    for (const [sender, reader] of [
      [alice, carol],
      [carol, bob],
      [bob, alice],
    ] as const)
      expect(await reads(sender, reader)).toBe('message')
    expect(await reads(carol, mallory)).toBe('encrypted')
  })

  it('after concurrent changes no one derives from a stale epoch: an add while a rekey is due seals a fresh key', async () => {
    const s = await createScenario({
      names: ['alice', 'bob', 'carol', 'dave', 'erin'],
      members: ['alice', 'bob', 'carol'],
    })
    const { alice, bob } = s.replicas
    await alice.remove(s.ids.carol.memberId)
    await bob.add(s.ids.dave.memberId, 'dave')
    exchangeAll(s.all)
    expect(alice.needsRekey()).toBe(true)
    const add = await alice.add(s.ids.erin.memberId, 'erin')
    expect(add.payload.base).toBeUndefined()
    expect(add.payload.keys).toHaveLength(4)
  })

  it('a derived add whose base is held by anyone but exactly the members before it is refused everywhere', async () => {
    const s = await createScenario({
      names: ['alice', 'bob', 'mallory', 'carol', 'dave'],
      members: ['alice', 'bob', 'mallory'],
    })
    const { alice } = s.replicas
    const heldByMallory = alice.currentEpoch()?.id as string
    await alice.remove(s.ids.mallory.memberId)
    const genesis = alice.events()[0] as SignedEvent
    const rename = await alice.rename('alice2')
    exchangeAll(s.all)
    const bad = [
      heldByMallory, // a removed member could derive the newcomer's key
      genesis.id, // held by alice alone: bob would lack the key
      rename.id, // no epoch
    ]
    const derivedAdd = (base: string, subject = s.ids.carol) =>
      forgeEvent({ on: alice, type: 'add', author: s.ids.alice, subject, base })
    for (const base of bad) {
      const add = await derivedAdd(base)
      for (const r of s.all)
        expect((await thrown(() => r.receiveEvent(add.bytes))).name, base).toBe('InvalidEpochError')
    }
    // an epoch outside the add's causal past: bob's rekey on a branch alice's add does not follow; bob
    // has that epoch and refuses the add all the same, alice does not even have it
    const { bob } = s.replicas
    const add = await derivedAdd((await bob.rekey()).id, s.ids.dave)
    for (const r of [bob, alice])
      expect((await thrown(() => r.receiveEvent(add.bytes))).name).toBe('InvalidEpochError')
  })

  it('key commitment holds for derived keys: a lie is found by the newcomer or by everyone else', async () => {
    const s = await createScenario({
      names: ['alice', 'bob', 'mallory', 'carol'],
      members: ['alice', 'bob', 'mallory'],
    })
    const { alice, bob, mallory, carol } = s.replicas
    const base = mallory.currentEpoch()?.id as string
    // mallory commits to the derived key but seals another to carol: carol finds it
    const split = await forgeEvent({
      on: mallory,
      type: 'add',
      author: s.ids.mallory,
      subject: s.ids.carol,
      base,
      sealed: true,
      keyFor: () => new Uint8Array(randomBytes(32)),
    })
    for (const r of s.all) r.receiveEvent(split.bytes)
    expect(await alice.currentKeyProblem()).toBeUndefined()
    expect(await carol.currentKeyProblem()).toMatchObject({ epoch: split.id, author: s.ids.mallory.memberId })
    // mallory commits to (and seals to the newcomer) a key that is not the derived one: the others find it
    const s2 = await createScenario({
      names: ['alice', 'bob', 'mallory', 'carol'],
      members: ['alice', 'bob', 'mallory'],
    })
    const other = new Uint8Array(randomBytes(32))
    const lie = await forgeEvent({
      on: s2.replicas.mallory,
      type: 'add',
      author: s2.ids.mallory,
      subject: s2.ids.carol,
      base: s2.replicas.mallory.currentEpoch()?.id as string,
      sealed: true,
      keyFor: () => other,
      committedKey: other,
    })
    for (const r of s2.all) r.receiveEvent(lie.bytes)
    expect(await s2.replicas.carol.currentKeyProblem()).toBeUndefined()
    for (const r of [s2.replicas.alice, s2.replicas.bob])
      expect(await r.currentKeyProblem()).toMatchObject({
        epoch: lie.id,
        author: s2.ids.mallory.memberId,
        reason: expect.stringMatching(/not the key its author committed to/),
      })
    expect(bob.isMember()).toBe(true)
  })

  it('the decoder takes `base` on adds only, with exactly one sealed key, to the subject', async () => {
    const s = await createScenario({ names: ['alice', 'bob', 'carol'], members: ['alice', 'bob'] })
    const { alice } = s.replicas
    const add = await alice.add(s.ids.carol.memberId, 'carol')
    const { payload } = add
    const resign = (p: object) => signEvent(s.ids.alice, p as typeof payload).bytes
    const extra = { to: s.ids.bob.memberIdBytes, enc: new Uint8Array(32), ct: new Uint8Array(48) }
    const keys = [...payload.keys, extra].sort((a, b) => Buffer.compare(a.to, b.to))
    for (const bytes of [
      resign({ ...payload, keys }), // two keys
      resign({ ...payload, keys: [extra] }), // one, to someone else
      resign({ ...payload, base: new Uint8Array(36) }), // not a CID
    ])
      expect((await thrown(() => decodeEvent(bytes))).name).toBe('MalformedError')
    const rekey = await alice.rekey()
    const based = { ...rekey.payload, base: CID.parse(add.id) }
    expect((await thrown(() => decodeEvent(resign(based)))).name).toBe('MalformedError')
    // and an honest derived add is canonical
    expect(encodePayload(decodeEvent(add.bytes).payload)).toEqual(encodePayload(payload))
  })
})

describe('a large rekey shares the event loop', () => {
  it('removing a member of a 200-member group lets the event loop turn while the keys are sealed (issue 11)', async () => {
    const s = await createScenario({ names: ['alice', 'bob'] })
    const { alice } = s.replicas
    // 198 more members, added by forged adds with placeholder seals (the log checks who keys go to)
    for (let i = 0; i < 198; i++) {
      const add = await forgeEvent({
        on: alice,
        type: 'add',
        author: s.ids.alice,
        subject: await Identity.generate(),
      })
      alice.receiveEvent(add.bytes)
    }
    expect(alice.members()).toHaveLength(200)
    let turns = 0
    const tick = (): void => {
      turns++
      if (!done) setImmediate(tick)
    }
    let done = false
    setImmediate(tick)
    const removal = await alice.remove(s.ids.bob.memberId)
    done = true
    expect(removal.payload.keys).toHaveLength(199)
    // a turn per 32 seals at least
    expect(turns).toBeGreaterThanOrEqual(5)
  })
})

describe('derived adds and the size limit', () => {
  it(`a derived add past ${MAX_MEMBERS} members is refused, as a fresh one is: the next removal could not seal to them all`, async () => {
    const s = await createScenario({ names: ['alice'] })
    const { alice } = s.replicas
    const newcomers = await Promise.all(Array.from({ length: MAX_MEMBERS }, () => Identity.generate()))
    const derivedAdd = (subject: Identity) =>
      forgeEvent({
        on: alice,
        type: 'add',
        author: s.ids.alice,
        subject,
        base: alice.currentEpoch()?.id as string,
      })
    for (const subject of newcomers.slice(1)) alice.receiveEvent((await derivedAdd(subject)).bytes)
    expect(alice.members()).toHaveLength(MAX_MEMBERS)
    const over = await derivedAdd(newcomers[0] as Identity)
    expect((await thrown(() => alice.receiveEvent(over.bytes))).name).toBe('InvalidEpochError')
  }, 60_000)
})
