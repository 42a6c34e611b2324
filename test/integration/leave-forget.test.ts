/**
 * Leaving, being removed and forgetting, on in-process nodes: where each peer stands, what survives a
 * restart, and what `forget` deletes.
 */
import { describe, expect, it } from 'vitest'
import { cleanupAfterEach, createChatNodes, waitForMembers } from '../fixtures/chat.js'

const cleanups = cleanupAfterEach()
const [ALICE, BOB] = [0, 1]

/** alice founds team and adds bob. */
async function aliceAndBobInTeam() {
  const net = await createChatNodes(2, { names: ['alice', 'bob'] })
  cleanups.push(net.teardown)
  const [alice, bob] = [net.node(ALICE), net.node(BOB)]
  const { id } = await alice.createGroup('team')
  await bob.joinGroup(alice.invite(id, { ask: true }))
  await alice.add(id, bob.peerId)
  await waitForMembers(bob, id, [alice.peerId, bob.peerId])
  return { net, alice, bob, id }
}

describe('leave, removal and forget', () => {
  it('a member leaves by its own removal; its standing, and when it learned it, survive a restart', async () => {
    const { net, alice, bob, id } = await aliceAndBobInTeam()

    const before = Date.now()
    await bob.leave(id)
    await waitForMembers(alice, id, [alice.peerId])
    const removed = bob.standing(id).removed
    expect(bob.standing(id).member).toBe(false)
    expect(removed).toEqual({
      by: { peerId: bob.peerId, name: 'bob' },
      at: expect.any(Number),
      rejoining: false,
    })
    expect(removed?.at).toBeGreaterThanOrEqual(before)
    expect(alice.standing(id)).toEqual({ member: true, removed: null })
    // the last member cannot leave: nobody would hold the group
    await expect(alice.leave(id)).rejects.toMatchObject({ name: 'InvalidArgumentError' })

    const again = await net.restart(BOB)
    expect(again.standing(id)).toEqual({ member: false, removed })
    again.rejoin(id)
    expect(again.standing(id).removed?.rejoining).toBe(true)
  })

  it('forget deletes a group this peer is no member of, with its history; a member must leave first', async () => {
    const { net, alice, bob, id } = await aliceAndBobInTeam()
    await bob.send(id, 'kept until forgotten')
    expect(() => bob.forget(id)).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))

    await alice.remove(id, bob.peerId)
    await waitForMembers(bob, id, [alice.peerId])
    expect(bob.standing(id).removed?.by).toEqual({ peerId: alice.peerId, name: 'alice' })
    expect(bob.store.events(id).length).toBeGreaterThan(0)
    bob.forget(id)
    expect(bob.groups()).toEqual([])
    expect(bob.store.events(id)).toEqual([])
    expect(bob.store.messages(id)).toEqual([])
    expect(() => bob.standing(id)).toThrow(expect.objectContaining({ name: 'NotInGroupError' }))
    // alice goes on talking: bob's node stores nothing more of the group it forgot
    await alice.send(id, 'after bob forgot')
    const restarted = await net.restart(BOB)
    expect(restarted.groups()).toEqual([])
    expect(restarted.store.events(id)).toEqual([])
  })
})
