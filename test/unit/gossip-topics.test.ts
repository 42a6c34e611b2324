/**
 * gossipsub 17 takes only an exact topic list; p2pchat swaps its private set for a predicate
 * (installTopicPredicate in src/node/gossip.ts). This test runs that swap against the installed
 * gossipsub, so an upgrade that renames the field, copies it elsewhere or stops consulting it fails
 * here, loudly, rather than letting every topic through.
 */

import { generateKeyPair } from '@libp2p/crypto/keys'
import type { GossipSubComponents } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { gossipService } from '../../src/node/gossip.js'
import { topicOf } from '../../src/node/topics.js'

/** gossipsub's handler of one inbound RPC: internal, but where the allowed topics are consulted. */
interface RpcHandler {
  handleReceivedRpc(from: PeerId, rpc: { subscriptions: unknown[]; messages: unknown[] }): Promise<void>
}

describe('the gossipsub topic filter', () => {
  it('keeps the subscriptions of a peer to group topics only, on the installed gossipsub', async () => {
    const pubsub = gossipService({})({ logger: defaultLogger() } as unknown as GossipSubComponents)
    const from = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const group = topicOf('bafyreigroup')
    const other = '/some/other/topic'
    await (pubsub as unknown as RpcHandler).handleReceivedRpc(from, {
      subscriptions: [
        { topic: group, subscribe: true },
        { topic: other, subscribe: true },
      ],
      messages: [],
    })
    expect(pubsub.getSubscribers(group).map(String)).toEqual([from.toString()])
    expect(pubsub.getSubscribers(other)).toEqual([])
  })

  it('lets every topic through with a predicate that allows all', async () => {
    const pubsub = gossipService({ allowedTopics: () => true })({
      logger: defaultLogger(),
    } as unknown as GossipSubComponents)
    const from = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    await (pubsub as unknown as RpcHandler).handleReceivedRpc(from, {
      subscriptions: [{ topic: '/some/other/topic', subscribe: true }],
      messages: [],
    })
    expect(pubsub.getSubscribers('/some/other/topic')).toHaveLength(1)
  })
})
