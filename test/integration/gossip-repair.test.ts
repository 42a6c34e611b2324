/**
 * A peer that stays connected after the connection carrying gossipsub's streams closed gets gossip again
 * (src/node/gossip-repair.ts). Two loopback transport nodes, mDNS off.
 */
import type { Connection } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { hasGossipStream } from '../../src/node/gossip-repair.js'
import { createTransport, type TransportNode } from '../../src/node/transport.js'
import { cleanupAfterEach } from '../fixtures/chat.js'
import { randomGroupTopic, testTransportInit } from '../fixtures/nodes.js'
import { waitFor } from '../fixtures/wait-for.js'

const cleanups = cleanupAfterEach()

async function start(): Promise<TransportNode> {
  const node = await createTransport(await testTransportInit())
  cleanups.push(() => node.stop())
  return node
}

describe('gossip repair', () => {
  it('restores gossip with a peer whose gossipsub stream closed with one of two connections', async () => {
    const [a, b] = [await start(), await start()]
    const first = await a.dial(b.getMultiaddrs())
    await waitFor(() => hasGossipStream(a, b.peerId) && hasGossipStream(b, a.peerId), {
      message: 'gossipsub streams both ways',
      timeout: 10_000,
    })
    // a second connection, as when two peers dial each other at once; then the first one closes
    const second: Connection = await b.dial(a.getMultiaddrs(), { force: true })
    expect(second.id).not.toBe(first.id)
    await waitFor(() => a.getConnections(b.peerId).length === 2, { message: 'a to hold both connections' })
    // identify ran on the second connection too, so nothing more is announced about it
    const identifying = (n: TransportNode): boolean =>
      n.getConnections().some((c) => c.streams.some((st) => st.protocol?.startsWith('/ipfs/id/') === true))
    await waitFor(() => !identifying(a) && !identifying(b), { message: 'identify to end on both sides' })
    await first.close()
    expect(a.getConnections(b.peerId).length).toBeGreaterThan(0)
    // the broken state: connected, and gossipsub's streams gone with the first connection
    await waitFor(() => !hasGossipStream(a, b.peerId) && !hasGossipStream(b, a.peerId), {
      message: "gossipsub's streams to close with the first connection",
    })

    // b's subscriptions reach a again, which needs gossipsub streams on a live connection
    const topic = randomGroupTopic()
    b.services.pubsub.subscribe(topic)
    await waitFor(() => a.services.pubsub.getSubscribers(topic).some((p) => p.equals(b.peerId)), {
      message: "a to see b's new subscription",
      timeout: 20_000,
    })
    expect(hasGossipStream(a, b.peerId) && hasGossipStream(b, a.peerId)).toBe(true)
  }, 40_000)
})
