/**
 * Gossipsub scoring against a stranger that sends invalid frames (issue 8, attack 9): a plain libp2p peer
 * connected to a member and to the relay publishes frames their validators reject. Each rejection must
 * count against it, until it is graylisted (ignored) and disconnected, and cannot connect again, while the
 * members, all on this one host (IP colocation scoring off, as in every same-host test), keep chatting
 * with scores above zero.
 */
import { randomBytes } from 'node:crypto'
import type { Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { GROUP_TOPIC_SCORE_PARAMS, setTopicValidator, type TransportNode } from '../../src/node/transport.js'
import { encodeGossip, topicOf } from '../../src/node/wire.js'
import {
  connectTo,
  GRAYLIST_THRESHOLD,
  gossipScore,
  joinTopic,
  legitimateGroup,
  publishRaw,
  startAttacker,
} from '../fixtures/attacker-relay.js'
import { cleanupAfterEach, createRelay, NETWORK_TIMEOUT, waitForSubscribers } from '../fixtures/chat.js'
import { withFlippedSignature } from '../fixtures/forgery.js'
import { createTestNodes } from '../fixtures/nodes.js'
import { waitFor } from '../fixtures/wait-for.js'

const cleanups = cleanupAfterEach()

describe('gossip scoring (attack 9)', () => {
  it('graylists and disconnects a peer that sends invalid frames, at a member and at the relay', async () => {
    const relay = await createRelay({}, cleanups)
    const { id, net } = await legitimateGroup(relay, cleanups, ['before', 'hello'])
    const [alice, bob] = [net.node(0), net.node(1)]
    await waitForSubscribers(relay.relay, id, [alice.peerId, bob.peerId])

    const attacker = await startAttacker(cleanups)
    const attackerId = attacker.peerId.toString()
    await connectTo(attacker, alice.addrs())
    await connectTo(attacker, relay.relay.addrs())
    await joinTopic(attacker, alice, id)
    await joinTopic(attacker, relay.relay, id)

    // garbage, and a genuine event with its signature broken: each different, so none is a duplicate
    const genesis = alice.group(id)?.events()[0]
    if (genesis === undefined) throw new Error('alice has no genesis')
    const invalid = [
      ...Array.from({ length: 5 }, () => randomBytes(64)),
      encodeGossip({ kind: 'event', data: withFlippedSignature(genesis.bytes) }),
    ]
    let sent = 0
    for (const data of invalid) sent += await publishRaw(attacker, id, data)
    expect(sent, 'the invalid frames reached alice and the relay').toBeGreaterThanOrEqual(2)

    const targets = [
      { name: 'alice', libp2p: () => alice.libp2p },
      { name: 'the relay', libp2p: () => relay.relay.libp2p },
    ]
    for (const target of targets) {
      await waitFor(() => gossipScore(target.libp2p(), attackerId) < GRAYLIST_THRESHOLD, {
        timeout: NETWORK_TIMEOUT,
        message: `${target.name} to score the attacker below the graylist threshold`,
      })
      await waitFor(() => (target.libp2p()?.getConnections(attacker.peerId).length ?? 0) === 0, {
        timeout: NETWORK_TIMEOUT,
        message: `${target.name} to disconnect the graylisted attacker`,
      })
    }
    // and it cannot come back under the same identity: a new connection is cut once its peer id is known
    for (const target of [alice, relay.relay]) {
      const opened: string[] = []
      const onOpen = (e: CustomEvent<Connection>): void => {
        opened.push(e.detail.remotePeer.toString())
      }
      target.libp2p?.addEventListener('connection:open', onOpen)
      await connectTo(attacker, target.addrs()).catch(() => {})
      await waitFor(() => attacker.getConnections(peerIdFromString(target.peerId)).length === 0, {
        timeout: NETWORK_TIMEOUT,
        message: 'the attacker to be refused when it connects again',
      })
      target.libp2p?.removeEventListener('connection:open', onOpen)
      expect(opened, 'the refused connection never opened at the target').not.toContain(attackerId)
    }

    // the members chat on, and score each other (and the relay) above zero
    await bob.send(id, 'after')
    await net.record(0).waitForText(id, 'after')
    const honest = [
      { at: alice.libp2p, of: bob.peerId },
      { at: alice.libp2p, of: relay.relay.peerId },
      { at: bob.libp2p, of: alice.peerId },
      { at: relay.relay.libp2p, of: alice.peerId },
      { at: relay.relay.libp2p, of: bob.peerId },
    ]
    await waitFor(() => honest.every(({ at, of }) => gossipScore(at, of) > 0), {
      timeout: NETWORK_TIMEOUT,
      message: 'every honest peer to score the others above zero',
    })
    expect(net.record(0).rejected.every((r) => r.detail.from === attackerId)).toBe(true)
    expect(net.record(1).rejected).toEqual([])
  })
})

describe('group topic score parameters', () => {
  it('come with the topic validator and go with it', async () => {
    const { nodes, teardown } = await createTestNodes(1)
    cleanups.push(teardown)
    const pubsub = (nodes[0] as TransportNode).services.pubsub
    const topics = (pubsub as unknown as { score: { params: { topics: Record<string, unknown> } } }).score
      .params.topics
    const topic = topicOf('bafyreigroup')
    const remove = setTopicValidator(pubsub, topic, () => 'reject')
    expect(topics[topic]).toEqual(GROUP_TOPIC_SCORE_PARAMS)
    remove()
    expect(topics[topic]).toBeUndefined()
  })
})
