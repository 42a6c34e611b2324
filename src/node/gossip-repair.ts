/**
 * @packageDocumentation
 *
 * Restores gossip with a peer whose gossipsub stream was lost while the peer stayed connected.
 *
 * gossipsub opens its one outbound stream to a peer when libp2p's registrar tells it the peer connected,
 * and the registrar says so once per peer, until the peer's last connection closes. Two peers that dial
 * each other at once have two connections; if the one that carried gossipsub's stream closes, the stream
 * goes with it and gossipsub never opens another on the connection left. The peer then stays connected
 * but gets none of this node's subscriptions or messages (seen in tests: a group's mesh never formed
 * though all five nodes were connected). This task finds such peers and reconnects them: once the last
 * connection closes, the registrar forgets the peer, and the new connection starts gossip afresh.
 */
import type { PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { type RepeatingTask, repeatingTask } from '@libp2p/utils'
import type { TransportNode } from './transport.js'

const log = logger('p2pchat:node:gossip-repair')

/** How often connected peers are checked for a gossipsub stream. */
export const GOSSIP_REPAIR_INTERVAL_MS = 3000

/** Longest wait for gossipsub to drop a peer that was hung up on. */
const FORGET_WAIT_MS = 2000

/** Timeout of the redial after a reconnect. */
const REDIAL_TIMEOUT_MS = 10_000

/** Whether one of `peer`'s open connections carries this node's outbound gossipsub stream. */
export function hasGossipStream(node: Pick<TransportNode, 'getConnections'>, peer: PeerId): boolean {
  return node
    .getConnections(peer)
    .some(
      (c) =>
        c.status === 'open' &&
        c.streams.some((s) => s.direction === 'outbound' && s.protocol?.startsWith('/meshsub/') === true),
    )
}

/**
 * A task that reconnects pubsub peers left without this node's gossipsub stream. A peer is reconnected
 * only when two checks in a row found no stream, so a stream still being opened is left alone.
 */
export function repairingGossip(node: TransportNode, intervalMs = GOSSIP_REPAIR_INTERVAL_MS): RepeatingTask {
  let suspects = new Set<string>()
  return repeatingTask(async () => {
    const streamless = new Set<string>()
    for (const peer of node.services.pubsub.getPeers()) {
      if (node.getConnections(peer).length === 0 || hasGossipStream(node, peer)) continue
      const id = peer.toString()
      streamless.add(id)
      if (!suspects.has(id)) continue
      log('reconnecting %p: connected, but gossipsub lost its stream to it', peer)
      streamless.delete(id)
      try {
        await node.hangUp(peer)
        // the registrar forgets the peer asynchronously after the disconnect; a connection made before
        // that would again not be announced to gossipsub
        await forgotten(node, peer)
        await node.dial(peer, { signal: AbortSignal.timeout(REDIAL_TIMEOUT_MS) })
      } catch (err) {
        log('could not reconnect %p - %e', peer, err)
      }
    }
    suspects = streamless
  }, intervalMs)
}

/** Resolves once gossipsub dropped `peer` (the registrar told it of the disconnect), or after a while. */
async function forgotten(node: TransportNode, peer: PeerId): Promise<void> {
  const deadline = Date.now() + FORGET_WAIT_MS
  while (node.services.pubsub.getPeers().some((p) => p.equals(peer)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
