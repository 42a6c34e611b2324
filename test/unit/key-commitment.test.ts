/**
 * Issue 7, item 3: an epoch's author commits, in the signed event, to the one group key it seals to
 * everyone. A member whose sealed key does not open, or opens to another key, finds out at once, cannot
 * use the epoch, and can say who chose it; a rekey by that member restores a key everyone shares.
 */
import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { decodeEvent, encodePayload } from '../../src/membership/event.js'
import { type Group, MalformedError } from '../../src/membership/index.js'
import {
  createScenario,
  exchangeAll,
  type ForgeInit,
  forgeEvent,
  type Scenario,
  thrown,
} from '../fixtures/membership.js'

type Names = 'alice' | 'bob' | 'mallory'

/** mallory, a member, issues a rekey built by `dishonesty`, and everyone receives it. */
async function maliciousEpoch(dishonesty: (s: Scenario<Names>) => Partial<ForgeInit>) {
  const s = await createScenario<Names>({ names: ['alice', 'bob', 'mallory'] })
  const { mallory } = s.replicas
  const epoch = await forgeEvent({
    on: mallory,
    type: 'rekey',
    author: s.ids.mallory,
    sealed: true,
    ...dishonesty(s),
  })
  for (const r of s.all) r.receiveEvent(epoch.bytes)
  return { s, ...s.replicas, epoch }
}

async function readsEachOther(a: Group, b: Group): Promise<boolean> {
  const sealed = await a.seal('can you read me?')
  return (await b.open(sealed.bytes)).kind === 'message'
}

describe('key commitment', () => {
  it('an honest epoch opens to its committed key for every member', async () => {
    const s = await createScenario({ names: ['alice', 'bob', 'carol'] })
    await s.replicas.alice.rekey()
    exchangeAll(s.all)
    for (const r of s.all) expect(await r.currentKeyProblem()).toBeUndefined()
    expect(await readsEachOther(s.replicas.bob, s.replicas.carol)).toBe(true)
  })

  it('a key split between members (K1 to alice, K2 to bob) is found by bob, who names mallory', async () => {
    const k2 = new Uint8Array(randomBytes(32))
    const { s, alice, bob, epoch } = await maliciousEpoch((sc) => ({
      keyFor: (member) => (member === sc.ids.bob.memberId ? k2 : undefined),
    }))
    expect(alice.currentEpoch()?.id).toBe(epoch.id)
    expect(await alice.currentKeyProblem()).toBeUndefined()
    const problem = await bob.currentKeyProblem()
    expect(problem).toMatchObject({ epoch: epoch.id, author: s.ids.mallory.memberId })
    expect(problem?.reason).toMatch(/not the key its author committed to/)
    const refused = await thrown(() => bob.seal('hello'))
    expect(refused.name).toBe('NoCurrentEpochError')
    expect(refused.message).toContain(s.ids.mallory.memberId)
    // bob rekeys at once: everyone shares a key again
    await bob.rekey()
    exchangeAll(s.all)
    expect(await readsEachOther(alice, bob)).toBe(true)
    expect(await readsEachOther(bob, alice)).toBe(true)
  })

  it('garbage sealed to bob is found by bob, who names mallory, and his rekey restores the group', async () => {
    const { s, alice, bob, epoch } = await maliciousEpoch((sc) => ({ garbageTo: [sc.ids.bob.memberId] }))
    expect(await alice.currentKeyProblem()).toBeUndefined()
    expect(await bob.currentKeyProblem()).toMatchObject({
      epoch: epoch.id,
      author: s.ids.mallory.memberId,
      reason: expect.stringMatching(/does not open/),
    })
    // a message under the bad epoch is unreadable to bob, not an error that loses it
    const sealed = await alice.seal('under the bad epoch')
    expect(await bob.open(sealed.bytes)).toMatchObject({ kind: 'encrypted' })
    await bob.rekey()
    exchangeAll(s.all)
    expect(await readsEachOther(alice, bob)).toBe(true)
  })

  it('every keyed event carries a 32-byte commitment; a rename carries none and no keys', async () => {
    const s = await createScenario({ names: ['alice', 'bob'] })
    const rename = await s.replicas.bob.rename('robert')
    expect(rename.payload.keyCommitment).toBeUndefined()
    expect(rename.payload.keys).toEqual([])
    for (const e of s.replicas.alice.events()) expect(e.payload.keyCommitment).toHaveLength(32)
    // a keyed event without its commitment does not decode
    const add = s.replicas.alice.events()[1]
    if (add === undefined) throw new Error('no add')
    const { keyCommitment: _dropped, ...rest } = add.payload
    const stripped = encodePayload(rest as typeof add.payload)
    const bytes = dagCbor.encode({
      payload: stripped,
      sig: s.ids.alice.sign('event:add', stripped),
    })
    expect((await thrown(() => decodeEvent(bytes))).name).toBe(MalformedError.name)
  })
})
