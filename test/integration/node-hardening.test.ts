/**
 * A chat node's life cycle and its defences: one process per data directory, start/stop that can be
 * called concurrently and always close the database, no crash from input that arrives after stop, a rekey
 * that was due before a restart, a flood of join requests, sync that does not resend what a member added
 * late already has, and typed errors for user mistakes.
 */

import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { Group } from '../../src/membership/index.js'
import type { ChatNode } from '../../src/node/chat-node.js'
import { UnverifiedNameError } from '../../src/node/errors.js'
import { ChatStore } from '../../src/node/store.js'
import { syncWithPeer } from '../../src/node/sync.js'
import { createTransport, type TransportNode } from '../../src/node/transport.js'
import { encodeGossip, encodeJoinRequest, topicOf } from '../../src/node/wire.js'
import { createRelayNode } from '../../src/relay/index.js'
import {
  ChatRecord,
  cleanupAfterEach,
  createChatNodes,
  createTestChatNode,
  NETWORK_TIMEOUT,
  tempDir,
  waitForMembers,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { testTransportInit } from '../fixtures/nodes.js'
import { waitFor } from '../fixtures/wait-for.js'

const cleanups = cleanupAfterEach()

const dataDir = (label: string): Promise<string> => tempDir(label, cleanups)

async function openNode(dir: string, name: string, overrides = {}): Promise<ChatNode> {
  const node = await createTestChatNode(dir, name, overrides)
  cleanups.push(() => node.stop())
  return node
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

describe('data directory lock', () => {
  it('refuses a second node or relay on a data directory in use, and frees it on stop', async () => {
    const dir = await dataDir('lock')
    const node = await openNode(dir, 'alice')
    const locked = expect.objectContaining({
      name: 'DataDirLockedError',
      message: `${dir} is in use by another p2pchat process (pid ${process.pid})`,
    })
    await expect(createTestChatNode(dir, 'alice')).rejects.toThrow(locked)
    await expect(createRelayNode({ dataDir: dir })).rejects.toThrow(locked)
    await node.stop()
    const again = await openNode(dir, 'alice')
    expect(again.peerId).toBe(node.peerId)
  })
})

describe('start and stop', () => {
  it('starts one libp2p node for concurrent start() calls', async () => {
    const port = await freePort()
    const node = await openNode(await dataDir('start'), 'alice', { listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    // a second libp2p node on the same data directory would fail to bind the same port
    await Promise.all([node.start(), node.start(), node.start()])
    expect(node.addrs().some((a) => a.includes(`/tcp/${port}/`))).toBe(true)
  })

  it('gives every stop() caller the one stop, and closes the database even if libp2p fails to stop', async () => {
    const dir = await dataDir('stop')
    const node = await openNode(dir, 'alice')
    await node.start()
    const libp2p = node.libp2p as TransportNode
    const stopLibp2p = libp2p.stop.bind(libp2p)
    libp2p.stop = async () => {
      await stopLibp2p()
      throw new Error('libp2p failed to stop')
    }
    let firstSettled = false
    const first = node.stop().finally(() => {
      firstSettled = true
    })
    await expect(node.stop()).rejects.toThrow('libp2p failed to stop')
    expect(firstSettled).toBe(true)
    await expect(first).rejects.toThrow('libp2p failed to stop')
    expect((node.replica.messageSource as ChatStore).isOpen).toBe(false)
    // and the data directory is free again
    await openNode(dir, 'alice')
  })

  it('refuses to start a stopped node', async () => {
    const node = await openNode(await dataDir('restart'), 'alice')
    await node.stop()
    await expect(node.start()).rejects.toThrow(expect.objectContaining({ name: 'NodeStoppedError' }))
    expect(node.libp2p).toBeUndefined()
  })

  it('takes input that arrives after stop without throwing', async () => {
    const node = await openNode(await dataDir('late-input'), 'alice')
    const { id } = await node.createGroup('team')
    const group = node.group(id) as Group
    // the same identity on another replica, e.g. this member's second device: its input is valid here
    const twin = new Group({ identity: node.identity, groupId: id })
    for (const event of group.events()) twin.receiveEvent(event.bytes)
    const message = await twin.seal('arrived during shutdown')
    const event = await twin.add((await Identity.generate()).memberId, 'dave')
    const remote = (await Identity.generate()).memberId
    await node.stop()
    await expect(node.replica.acceptMessage(group, message.bytes, remote)).resolves.toBeUndefined()
    expect(() => node.replica.acceptEvent(group, event.bytes, remote)).not.toThrow()
  })

  it('issues a rekey that was due when it stopped, without waiting for another event', async () => {
    const [alice, bob, carol, dave] = await Promise.all([1, 2, 3, 4].map(() => Identity.generate()))
    if (alice === undefined || bob === undefined || carol === undefined || dave === undefined)
      throw new Error()
    // alice adds carol while bob, concurrently, adds dave: no epoch key reaches all four
    const { group, event: genesis } = await Group.create({
      identity: alice,
      name: 'team',
      memberName: 'alice',
    })
    const addBob = await group.add(bob.memberId, 'bob')
    const bobs = new Group({ identity: bob, groupId: group.id })
    for (const e of [genesis, addBob]) bobs.receiveEvent(e.bytes)
    const addCarol = await group.add(carol.memberId, 'carol')
    const addDave = await bobs.add(dave.memberId, 'dave')
    group.receiveEvent(addDave.bytes)
    expect(group.needsRekey()).toBe(true)

    // alice's data directory as she left it
    const dir = await dataDir('rekey')
    await writeFile(join(dir, 'identity.key'), alice.toProtobuf(), { mode: 0o600 })
    const store = ChatStore.open(dir)
    store.saveGroup({ id: group.id, name: 'team' })
    for (const e of [genesis, addBob, addCarol, addDave]) store.addEvent(group.id, e.id, e.bytes)
    store.close()

    const node = await openNode(dir, 'alice', { rekeyDelayMs: 20 })
    expect(node.group(group.id)?.needsRekey()).toBe(true)
    await node.start()
    await waitFor(() => node.group(group.id)?.needsRekey() === false, {
      timeout: NETWORK_TIMEOUT,
      message: 'alice to rekey after restarting',
    })
    expect(node.group(group.id)?.currentEpoch()?.members.sort()).toEqual(
      [alice, bob, carol, dave].map((i) => i.memberId).sort(),
    )
  })
})

describe('adding', () => {
  it('refuses to add a member again with InvalidArgumentError', async () => {
    const node = await openNode(await dataDir('add'), 'alice')
    const { id: groupId } = await node.createGroup('team')
    await expect(node.add(groupId, node.peerId)).rejects.toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError', message: 'alice is already a member' }),
    )
  })
})

/**
 * alice (started, on `dir`) founds a group, and a bare libp2p peer, which can publish anything, is
 * subscribed to its topic and sees alice there.
 */
async function groupWithBarePeer(dir: string): Promise<{
  alice: ChatNode
  record: ChatRecord
  groupId: string
  topic: string
  peer: TransportNode
}> {
  const alice = await openNode(dir, 'alice')
  const record = new ChatRecord(alice)
  await alice.start()
  const { id: groupId } = await alice.createGroup('team')
  const peer = await createTransport(await testTransportInit({ bootstrap: alice.addrs() }))
  cleanups.push(() => peer.stop())
  const topic = topicOf(groupId)
  peer.services.pubsub.subscribe(topic)
  await waitForSubscribers(alice, groupId, [peer.peerId.toString()])
  await waitFor(() => peer.services.pubsub.getSubscribers(topic).length > 0, {
    timeout: NETWORK_TIMEOUT,
    message: 'the bare peer to see alice subscribed',
  })
  return { alice, record, groupId, topic, peer }
}

describe('adding by a name', () => {
  it('never adds a peer by the name it gave in a join request; a former member is re-added by name', async () => {
    const dir = await dataDir('squat')
    const { alice, record, groupId, topic, peer: stranger } = await groupWithBarePeer(dir)
    // a stranger asks to join as "carol": a name is only a claim
    const squatter = await Identity.generate()
    await waitFor(
      async () => {
        if (record.joinRequests.some((r) => r.detail.peerId === squatter.memberId)) return true
        // asked again (with a fresh timestamp, so not a duplicate) until alice's gossip stream carries it,
        // as a real requester does
        const data = encodeJoinRequest(squatter, groupId, 'carol')
        await stranger.services.pubsub.publish(topic, encodeGossip({ kind: 'join', data }))
        return false
      },
      {
        timeout: NETWORK_TIMEOUT,
        interval: 250,
        message: "alice to see the stranger's join request as carol",
      },
    )
    const claim = {
      name: UnverifiedNameError.name,
      candidates: [{ peerId: squatter.memberId, name: 'carol' }],
    }
    const onlyAlice = [{ peerId: alice.peerId, name: 'alice' }]
    await expect(alice.add(groupId, 'carol')).rejects.toMatchObject(claim)
    expect(alice.members(groupId)).toEqual(onlyAlice)

    // after a restart the name is known only from the peers table, which join requests fill: still a claim
    await alice.stop()
    const again = await openNode(dir, 'alice')
    await expect(again.add(groupId, 'carol')).rejects.toMatchObject(claim)
    expect(again.members(groupId)).toEqual(onlyAlice)

    // by peer id it works, and the signed add event names the member carol from then on
    const carol = { peerId: squatter.memberId, name: 'carol' }
    expect(await again.add(groupId, squatter.memberId)).toContainEqual(carol)
    await again.remove(groupId, squatter.memberId)
    expect(again.members(groupId)).toEqual(onlyAlice)
    expect(await again.add(groupId, 'carol')).toContainEqual(carol)
  })
})

describe('join request flood', () => {
  it('shows and stores at most 30 new requesters a minute per group', async () => {
    const dir = await dataDir('flood')
    const { record, groupId, topic, peer: attacker } = await groupWithBarePeer(dir)

    const FLOOD = 80
    for (let k = 0; k < FLOOD; k++) {
      const identity = await Identity.generate()
      const data = encodeJoinRequest(identity, groupId, `spam-${k}`)
      await attacker.services.pubsub.publish(topic, encodeGossip({ kind: 'join', data }))
    }
    // sent last, handled after the requests
    await attacker.services.pubsub.publish(topic, encodeGossip({ kind: 'join', data: new Uint8Array([1]) }))
    await record.waitForRejection(groupId, 'MalformedFrameError')

    expect(record.joinRequests.length).toBe(30)
    const store = ChatStore.open(dir)
    const stored = store.peers().filter((p) => p.name?.startsWith('spam-') === true)
    store.close()
    expect(stored.length).toBe(30)
  })
})

describe('sync of a member added late', () => {
  it('does not send again the messages it already has', async () => {
    const net = await createChatNodes(2, { names: ['alice', 'bob'], init: { syncIntervalMs: 600_000 } })
    cleanups.push(() => net.teardown())
    const [alice, bob] = [net.node(0), net.node(1)]
    const { id: groupId } = await alice.createGroup('team')
    for (let k = 0; k < 3; k++) await alice.send(groupId, `before bob #${k}`)
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await alice.add(groupId, bob.peerId)
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])
    await waitForSubscribers(alice, groupId, [bob.peerId])
    for (let k = 0; k < 5; k++) await alice.send(groupId, `after bob #${k}`)
    await net.record(1).waitForText(groupId, 'after bob #4')
    expect(net.record(1).messages(groupId)).toHaveLength(5)

    const signal = AbortSignal.timeout(NETWORK_TIMEOUT)
    const group = bob.group(groupId) as Group
    const again = await syncWithPeer(
      bob.libp2p as TransportNode,
      peerIdFromString(alice.peerId),
      bob.replica,
      group,
      signal,
    )
    expect(again).toEqual({ known: true, messagesReceived: 0, more: false })
  })
})
