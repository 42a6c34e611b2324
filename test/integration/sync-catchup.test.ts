/**
 * A member who missed more messages than one sync carries catches up at once: the node syncs again right
 * after a sync that brought a full batch, instead of waiting for the next anti-entropy round.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_SYNC_MESSAGES } from '../../src/node/sync.js'
import {
  type ChatNodes,
  createChatNodes,
  createRelay,
  type TestRelay,
  waitForMembers,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1

describe('catching up on more than one sync carries', () => {
  let relay: TestRelay
  let net: ChatNodes

  beforeAll(async () => {
    relay = await createRelay({ ratePerMinute: 1_000_000 })
    net = await createChatNodes(2, {
      names: ['alice', 'bob'],
      bootstrap: () => relay.relay.addrs(),
      init: (i) => ({
        // only the relay serves bob, and only the sync at connect: the next round is far away
        denyPeer: (peerId) => peerId !== relay.relay.peerId,
        syncIntervalMs: i === ALICE ? 500 : 600_000,
      }),
    })
  }, 60_000)
  afterAll(async () => {
    await net?.teardown()
    await relay?.teardown()
  })

  it('gets everything from the relay in consecutive syncs', async () => {
    const [alice, bob] = [net.node(ALICE), net.node(BOB)]
    const { id: groupId } = await alice.createGroup('busy')
    await waitForSubscribers(alice, groupId, [relay.relay.peerId])
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await waitFor(() => net.record(ALICE).joinRequests.some((r) => r.detail.peerId === bob.peerId), {
      timeout: 15_000,
      message: "alice to see bob's join request",
    })
    await alice.add(groupId, bob.peerId)
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])
    await net.stop(BOB)

    const total = MAX_SYNC_MESSAGES + 150
    for (let k = 0; k < total; k++) await alice.send(groupId, `busy #${k}`)
    await waitFor(() => relay.stored.get(groupId)?.length === total, {
      timeout: 90_000,
      message: `the relay to store all ${total} messages`,
    })
    await net.stop(ALICE)

    await net.restart(BOB)
    const record = net.record(BOB)
    await waitFor(() => record.messages(groupId).length >= total, {
      timeout: 60_000,
      message: `bob to catch up on ${total} messages`,
    })
    const shown = record.messages(groupId)
    expect(shown).toHaveLength(total)
    expect(new Set(shown.map((m) => m.id)).size).toBe(total)
  }, 240_000)
})
