/**
 * Gossipsub peer scoring as p2pchat uses it: the thresholds, the score parameters of group topics, and
 * what happens to a peer below the graylist threshold (refused and disconnected). Gossipsub's public
 * interface shows neither scores nor live score parameters, so {@link scoringOf} reaches them and fails
 * at construction if an upgrade moved them.
 *
 * @packageDocumentation
 */

import type { GossipSub } from '@libp2p/gossipsub'
import {
  createTopicScoreParams,
  type PeerScoreThresholds,
  type TopicScoreParams,
} from '@libp2p/gossipsub/score'
import type { ConnectionGater, Libp2p, PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { type RepeatingTask, repeatingTask } from '@libp2p/utils'
import { IncompatibleGossipsubError } from './errors.js'

const log = logger('p2pchat:node:transport')

/**
 * Peer score thresholds (gossipsub's defaults, stated): below `gossipThreshold` a peer gets no gossip and
 * its gossip is ignored, below `publishThreshold` nothing is published to it, and below
 * `graylistThreshold` everything it sends is ignored, and a p2pchat node disconnects it.
 */
export const GOSSIP_SCORE_THRESHOLDS: Readonly<PeerScoreThresholds> = Object.freeze({
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20,
})

/**
 * Score parameters of every group topic, set when its validator is (`setTopicValidator`): gossipsub
 * takes them per exact topic only, and group topics are not known in advance.
 *
 * - P4, invalid messages (a validator's 'reject'): weight -10 on the square of a counter that decays by
 *   1 % a second, so 3 rejected messages take a peer to -90, below the graylist threshold of -80; then
 *   it is ignored and disconnected (see {@link disconnectingGraylisted}).
 * - P1 (time in mesh, up to +1 after an hour) and P2 (first deliveries of valid messages, up to +5) give
 *   honest members a small positive score, capped well below what 3 invalid messages cost.
 * - P3 and P3b (mesh delivery rates) are off: a chat topic is quiet, and an honest member who says
 *   nothing for a while must not lose score for it.
 */
export const GROUP_TOPIC_SCORE_PARAMS: Readonly<TopicScoreParams> = Object.freeze(
  createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 1 / 3600,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 3600,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 5,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: -10,
    invalidMessageDeliveriesDecay: 0.99,
  }),
)

/** How often connected peers' scores are checked, to disconnect graylisted ones (gossipsub's decay interval). */
const SCORE_CHECK_INTERVAL_MS = 1000

/** What p2pchat uses of gossipsub's peer scoring, which its public `GossipSub` interface does not show. */
interface ScoringInternals {
  getScore(peerId: string): number
  score: { params: { topics: Record<string, TopicScoreParams> } }
}

/**
 * The scoring internals of a gossipsub router (@libp2p/gossipsub 17: `getScore` and the live
 * `score.params`, which gossipsub reads each time it scores). If a future version moves them we fail at
 * construction rather than run without invalid-message penalties.
 *
 * @throws {IncompatibleGossipsubError}
 */
export function scoringOf(pubsub: object): ScoringInternals {
  const internals = pubsub as Partial<ScoringInternals>
  if (typeof internals.getScore !== 'function' || typeof internals.score?.params?.topics !== 'object') {
    throw new IncompatibleGossipsubError(
      'The installed @libp2p/gossipsub does not expose peer scores and score parameters as expected',
    )
  }
  return internals as ScoringInternals
}

/**
 * The gossipsub score of `peer` at `pubsub`: 0 for a peer it does not know. A peer below
 * {@link GOSSIP_SCORE_THRESHOLDS}' `graylistThreshold` is ignored and disconnected.
 */
export function peerScore(pubsub: GossipSub, peer: PeerId | string): number {
  return scoringOf(pubsub).getScore(peer.toString())
}

/** A libp2p node with a gossipsub router, as scoring sees it. */
type GossipNode = Libp2p<{ pubsub: GossipSub }>

function isGraylisted(node: GossipNode | undefined, peer: PeerId): boolean {
  if (node === undefined) return false
  return peerScore(node.services.pubsub, peer) < GOSSIP_SCORE_THRESHOLDS.graylistThreshold
}

/**
 * `gater`, also refusing connections to and from graylisted peers. gossipsub keeps the score of a
 * disconnected peer, undecayed, for an hour, so a peer disconnected for sending invalid messages cannot
 * come straight back with a clean slate.
 */
export function refusingGraylisted(
  gater: ConnectionGater,
  getNode: () => GossipNode | undefined,
): ConnectionGater {
  return {
    ...gater,
    denyDialPeer: async (peer) =>
      isGraylisted(getNode(), peer) || ((await gater.denyDialPeer?.(peer)) ?? false),
    denyInboundEncryptedConnection: async (peer, conn) =>
      isGraylisted(getNode(), peer) || ((await gater.denyInboundEncryptedConnection?.(peer, conn)) ?? false),
  }
}

/**
 * gossipsub ignores a graylisted peer but stays connected to it; this task closes its connections (every
 * second, gossipsub's score decay interval).
 */
export function disconnectingGraylisted(node: GossipNode): RepeatingTask {
  return repeatingTask(async () => {
    for (const peer of node.services.pubsub.getPeers()) {
      if (!isGraylisted(node, peer)) continue
      log(
        'disconnecting %p: its gossip score %d is below the graylist threshold',
        peer,
        peerScore(node.services.pubsub, peer),
      )
      await node.hangUp(peer).catch((err: unknown) => log('could not disconnect %p - %e', peer, err))
    }
  }, SCORE_CHECK_INTERVAL_MS)
}
