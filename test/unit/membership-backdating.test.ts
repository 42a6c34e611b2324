/**
 * A removed member still holds its key and can sign events whose parents predate its removal: to every
 * replica that looks like a partition that healed late. These tests pin what such back-dated events can
 * and cannot do under the strong-remove rules.
 */
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { Identity, randomNonce } from '../../src/crypto/index.js'
import { sealEnvelope } from '../../src/membership/envelope.js'
import { DEFAULT_GRACE_MS, Group } from '../../src/membership/index.js'
import { createScenario, exchangeAll, forgeEvent, messageKeyFor, thrown } from '../fixtures/membership.js'

const names = ['alice', 'bob', 'mallory', 'carol'] as const

async function removedMallory() {
  const s = await createScenario({ names: [...names] })
  const { alice } = s.replicas
  const beforeRemoval = alice.heads()
  const oldMembers = [...alice.memberMap().keys()]
  const removal = await alice.remove(s.ids.mallory.memberId)
  exchangeAll(s.all)
  s.clock.advance(10 * DEFAULT_GRACE_MS)
  const withoutMallory = oldMembers.filter((id) => id !== s.ids.mallory.memberId)
  /** Recipients of a back-dated event by mallory: who was a member before her removal, ± the subject. */
  const recipientsWithout = (id?: string) =>
    withoutMallory.filter((m) => m !== id).concat(s.ids.mallory.memberId)
  return { s, beforeRemoval, removal, oldMembers, recipientsWithout }
}

describe('back-dated events by a removed member', () => {
  it('can remove a bystander (removals always take effect), whom any member can add back for good', async () => {
    const { s, beforeRemoval, recipientsWithout } = await removedMallory()
    const { alice, bob, carol } = s.replicas
    const forged = await forgeEvent({
      on: alice,
      type: 'remove',
      author: s.ids.mallory,
      subject: s.ids.bob,
      parents: beforeRemoval,
      recipients: recipientsWithout(s.ids.bob.memberId),
      sealed: true,
    })
    for (const r of [alice, bob, carol]) r.receiveEvent(forged.bytes)
    for (const r of [alice, bob, carol]) {
      expect(r.isMember(s.ids.bob.memberId)).toBe(false)
      expect(r.isMember(s.ids.mallory.memberId)).toBe(false)
      // the key she chose for it is void: it never becomes current
      expect(r.currentEpoch()?.id).not.toBe(forged.id)
    }
    // bob is back for good once re-added after her removal of him
    await alice.add(s.ids.bob.memberId, 'bob')
    exchangeAll([alice, bob, carol])
    for (const r of [alice, bob, carol]) expect(r.isMember(s.ids.bob.memberId)).toBe(true)
  })

  it('cannot act through a puppet it added concurrently: the puppet is never a member, its adds are void', async () => {
    const { s, beforeRemoval, oldMembers } = await removedMallory()
    const { alice, bob } = s.replicas
    const [puppet, friend] = [await Identity.generate(), await Identity.generate()]
    const addPuppet = await forgeEvent({
      on: alice,
      type: 'add',
      author: s.ids.mallory,
      subject: puppet,
      parents: beforeRemoval,
      recipients: [...oldMembers, puppet.memberId],
    })
    const puppetAddsFriend = await forgeEvent({
      on: alice,
      type: 'add',
      author: puppet,
      subject: friend,
      parents: [addPuppet.id],
      recipients: [...oldMembers, puppet.memberId, friend.memberId],
    })
    const puppetRekeys = await forgeEvent({
      on: alice,
      type: 'rekey',
      author: puppet,
      parents: [puppetAddsFriend.id],
      recipients: [...oldMembers, puppet.memberId, friend.memberId],
    })
    for (const r of [alice, bob]) {
      for (const e of [addPuppet, puppetAddsFriend, puppetRekeys]) r.receiveEvent(e.bytes)
      expect(r.isMember(puppet.memberId)).toBe(false)
      expect(r.isMember(friend.memberId)).toBe(false)
      expect(r.currentEpoch()?.members).not.toContain(puppet.memberId)
    }
  })

  it('cannot re-add an existing member under another name: the add is refused everywhere', async () => {
    const { s, beforeRemoval, oldMembers } = await removedMallory()
    const { alice } = s.replicas
    const readd = await forgeEvent({
      on: alice,
      type: 'add',
      author: s.ids.mallory,
      subject: s.ids.carol,
      subjectName: 'not carol',
      parents: beforeRemoval,
      recipients: oldMembers,
    })
    expect((await thrown(() => alice.receiveEvent(readd.bytes))).name).toBe('AlreadyMemberError')
    expect(alice.members().find((m) => m.id === s.ids.carol.memberId)?.name).toBe('carol')
  })

  it('cannot undo a removal by retaliating against its author (issue 7, item 2)', async () => {
    // alice removes carol, then mallory; mallory signs remove(alice) on the heads from before both
    const s = await createScenario({ names: [...names] })
    const { alice, bob, carol } = s.replicas
    const fork = alice.heads()
    const before = [...alice.memberMap().keys()]
    await alice.remove(s.ids.carol.memberId)
    await alice.remove(s.ids.mallory.memberId)
    exchangeAll(s.all)
    const retaliation = await forgeEvent({
      on: alice,
      type: 'remove',
      author: s.ids.mallory,
      subject: s.ids.alice,
      parents: fork,
      recipients: before.filter((id) => id !== s.ids.alice.memberId),
      sealed: true,
    })
    for (const r of s.all) r.receiveEvent(retaliation.bytes)
    for (const r of s.all) {
      // the retaliation takes effect (removals only take access away), and so do both of alice's removals
      expect(r.members().map((m) => m.name)).toEqual(['bob'])
    }
    // bob rekeys: the new key goes to bob alone, so carol reads nothing bob sends from now on
    const rekey = await bob.rekey()
    expect(rekey.payload.keys).toHaveLength(1)
    exchangeAll(s.all)
    const sealed = await bob.seal('carol must not read this')
    expect(await carol.open(sealed.bytes)).toMatchObject({ kind: 'encrypted' })
  })
  it('cannot pick the next group key: her minted epoch never becomes current', async () => {
    const { s, beforeRemoval, removal, recipientsWithout } = await removedMallory()
    const { alice } = s.replicas
    // a remove of a stranger, whose id she re-rolls until it sorts above alice's removal
    const stranger = await Identity.generate()
    let minted = await forgeEvent({
      on: alice,
      type: 'remove',
      author: s.ids.mallory,
      subject: stranger,
      parents: beforeRemoval,
      recipients: recipientsWithout(),
      sealed: true,
    })
    while (minted.id < removal.id) {
      minted = await forgeEvent({
        on: alice,
        type: 'remove',
        author: s.ids.mallory,
        subject: stranger,
        parents: beforeRemoval,
        recipients: recipientsWithout(),
        sealed: true,
      })
    }
    alice.receiveEvent(minted.bytes)
    expect(alice.currentEpoch()?.id).not.toBe(minted.id)
    expect(alice.currentEpoch()?.members).not.toContain(s.ids.mallory.memberId)
  })

  it('cannot post under an epoch she minted after her removal, however fresh', async () => {
    const { s, beforeRemoval, recipientsWithout } = await removedMallory()
    const { alice, bob } = s.replicas
    const minted = await forgeEvent({
      on: alice,
      type: 'rekey',
      author: s.ids.mallory,
      parents: beforeRemoval,
      recipients: recipientsWithout(),
      sealed: true,
    })
    bob.receiveEvent(minted.bytes)
    const key = await messageKeyFor(minted, s.ids.mallory)
    const bytes = sealEnvelope({
      identity: s.ids.mallory,
      group: CID.parse(s.groupId),
      epoch: minted.cid,
      seq: 10_000,
      key,
      body: { text: 'still here', ts: 0 },
      nonce: randomNonce(),
    })
    expect((await thrown(() => bob.open(bytes))).name).toBe('NotAMemberError')
  })

  it('can remove the member who removed her, who can be re-added; she cannot post under that epoch', async () => {
    const { s, beforeRemoval, recipientsWithout } = await removedMallory()
    const { alice, bob, carol } = s.replicas
    const retaliation = await forgeEvent({
      on: alice,
      type: 'remove',
      author: s.ids.mallory,
      subject: s.ids.alice,
      parents: beforeRemoval,
      recipients: recipientsWithout(s.ids.alice.memberId),
      sealed: true,
    })
    for (const r of [alice, bob, carol]) r.receiveEvent(retaliation.bytes)
    for (const r of [bob, carol]) {
      expect(r.members().map((m) => m.name)).toEqual(['bob', 'carol'])
      // every epoch key so far reached alice or mallory: bob and carol must rekey before sending
      expect(r.needsRekey()).toBe(true)
    }
    // and she cannot post under the epoch of her retaliation, though it took effect
    const key = await messageKeyFor(retaliation, s.ids.mallory)
    const post = sealEnvelope({
      identity: s.ids.mallory,
      group: CID.parse(s.groupId),
      epoch: retaliation.cid,
      seq: 20_000,
      key,
      body: { text: 'gotcha', ts: 0 },
      nonce: randomNonce(),
    })
    expect((await thrown(() => bob.open(post))).name).toBe('NotAMemberError')
    const first = [bob, carol].find((r) => r.rekeyRank() === 0) ?? bob
    await first.rekey()
    exchangeAll([bob, carol])
    await (first === bob ? bob : carol).add(s.ids.alice.memberId, 'alice')
    exchangeAll([alice, bob, carol])
    for (const r of [alice, bob, carol])
      expect(r.members().map((m) => m.name)).toEqual(['alice', 'bob', 'carol'])
    const sealed = await bob.seal('welcome back')
    expect(await alice.open(sealed.bytes)).toMatchObject({ kind: 'message', text: 'welcome back' })
  })

  it('her in-flight posts under the epoch she held are accepted only within the grace window', async () => {
    const s = await createScenario({ names: [...names] })
    const { alice, bob, mallory } = s.replicas
    const [inFlight, late] = [await mallory.seal('in flight'), await mallory.seal('late')]
    await alice.remove(s.ids.mallory.memberId)
    exchangeAll(s.all)
    expect(await bob.open(inFlight.bytes)).toMatchObject({ kind: 'message', text: 'in flight' })
    s.clock.advance(DEFAULT_GRACE_MS + 1)
    expect((await thrown(() => bob.open(late.bytes))).name).toBe('StaleEpochError')
  })

  it('a restart does not reopen the grace window for her old posts', async () => {
    const s = await createScenario({ names: [...names] })
    const { alice, bob, mallory } = s.replicas
    const late = await mallory.seal('after a restart')
    await alice.remove(s.ids.mallory.memberId)
    exchangeAll(s.all)
    // bob restarts: a fresh replica replays the stored events, then expires the windows
    const restarted = s.freshReplica(s.ids.bob)
    for (const e of bob.events()) restarted.receiveEvent(e.bytes)
    restarted.expireGraceWindows()
    expect((await thrown(() => restarted.open(late.bytes))).name).toBe('StaleEpochError')
  })
})

describe('outsiders', () => {
  it('an event by someone never added is rejected before any resolution, and stays rejected', async () => {
    const s = await createScenario({ names: ['alice', 'bob', 'carol'] })
    const { alice } = s.replicas
    const [first, second] = alice.events().map((e) => e.id)
    const outsider = await Identity.generate()
    const forged = await forgeEvent({
      on: alice,
      type: 'rekey',
      author: outsider,
      parents: [first as string, second as string],
      recipients: [outsider.memberId],
    })
    expect((await thrown(() => alice.receiveEvent(forged.bytes))).name).toBe('NotAMemberError')
    expect((await thrown(() => alice.receiveEvent(forged.bytes))).name).toBe('NotAMemberError')
    expect(alice.hasEvent(forged.id)).toBe(false)
  })

  it('events waiting for parents are bounded in bytes as well as in number', async () => {
    const s = await createScenario({ names: ['alice', 'bob'] })
    const { alice } = s.replicas
    const small = s.freshReplica(s.ids.bob)
    const bounded = new Group({ identity: s.ids.bob, groupId: s.groupId, maxPendingBytes: 400 })
    const events = alice.events().slice(1)
    for (const e of events) small.receiveEvent(e.bytes)
    expect(small.missingEvents().length).toBeGreaterThan(0)
    const errors: string[] = []
    for (const e of events) {
      try {
        bounded.receiveEvent(e.bytes)
      } catch (err) {
        errors.push((err as Error).name)
      }
    }
    expect(events.reduce((n, e) => n + e.bytes.length, 0)).toBeGreaterThan(400)
    expect(errors).toContain('PendingLimitError')
  })
})
