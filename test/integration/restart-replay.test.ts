/**
 * A restart replays the stored log after `start()` resolves, so `ready` need not wait for it (issue 11).
 * Meanwhile the node must not answer wrongly: `status` says what the last clean stop said, as long as no
 * event was stored since, and anything that needs the group (a call, a sync stream) replays it first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatNode } from '../../src/node/chat-node.js'
import { ChatStore } from '../../src/node/index.js'
import { type ChatNodes, createChatNodes, createTestChatNode, waitForMembers } from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1

describe('a restart replays the stored log after start', () => {
  let net: ChatNodes
  let groupId: string
  const restarted: ChatNode[] = []

  beforeAll(async () => {
    net = await createChatNodes(2, { names: ['alice', 'bob'] })
    const [alice, bob] = [net.node(ALICE), net.node(BOB)]
    groupId = (await alice.createGroup('replay')).id
    await bob.joinGroup(alice.invite(groupId))
    await alice.add(groupId, bob.peerId)
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])
    await alice.send(groupId, 'before the restart')
  }, 60_000)
  afterAll(async () => {
    for (const node of restarted) await node.stop()
    await net?.teardown()
  })

  /** Alice's node on her data directory again, bootstrapping to bob, started. */
  async function restartAlice(): Promise<ChatNode> {
    const node = await createTestChatNode(net.dataDirs[ALICE] as string, 'alice', {
      bootstrap: net.node(BOB).addrs(),
    })
    restarted.push(node)
    await node.start()
    return node
  }

  it('says who is a member before the replay, and replays before anything needs the group', async () => {
    const before = net.node(ALICE).status(groupId)
    const members = net.node(ALICE).members(groupId)
    await net.stop(ALICE)

    const alice = await restartAlice()
    // start resolved, and the log is not replayed yet: the group's topic waits for it
    expect(alice.libp2p?.services.pubsub.getTopics()).toEqual([])
    const { group, member, removed } = alice.status(groupId)
    expect({ group, member, removed }).toEqual({
      group: before.group,
      member: before.member,
      removed: before.removed,
    })
    expect(member).toBe(true)
    // what a sync stream from bob is judged against: the whole log, replayed on first use
    expect(alice.replica.group(groupId)?.isMember(net.node(BOB).peerId)).toBe(true)
    expect(alice.members(groupId)).toEqual(members)
    expect(alice.history(groupId, 10).map((m) => m.text)).toEqual(['before the restart'])
    await waitFor(() => alice.libp2p?.services.pubsub.getTopics().length === 1, {
      message: 'alice to subscribe to the group once the log is replayed',
    })
    await alice.stop()
  }, 60_000)

  it('does not trust what the last stop said once an event was stored since', async () => {
    for (const node of restarted) await node.stop()
    const bob = net.node(BOB)
    // bob removes alice while she is stopped; the event reaches her store without her node running
    const alicePeerId = net.node(ALICE).peerId
    await bob.remove(groupId, alicePeerId)
    const store = ChatStore.open(net.dataDirs[ALICE] as string)
    for (const event of bob.group(groupId)?.events() ?? []) store.addEvent(groupId, event.id, event.bytes)
    store.close()

    const alice = await restartAlice()
    // the snapshot of the last clean stop says member; the log stored now says removed
    const status = alice.status(groupId)
    expect(status.member).toBe(false)
    expect(status.removed?.by.peerId).toBe(bob.peerId)
    expect(alice.members(groupId).map((m) => m.peerId)).toEqual([bob.peerId])
  }, 60_000)
})
