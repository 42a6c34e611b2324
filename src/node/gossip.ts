/**
 * The gossipsub router of a p2pchat node: unsigned, content-addressed messages on group topics only, a
 * validator per topic that decides what is delivered and forwarded, and peer scoring that punishes
 * invalid messages (see gossip-scoring.ts).
 *
 * @packageDocumentation
 */

import { createHash } from 'node:crypto'
import {
  type GossipSub,
  type GossipSubComponents,
  type GossipsubOpts,
  gossipsub,
  type Message,
  StrictNoSign,
  TopicValidatorResult,
} from '@libp2p/gossipsub'
import type { AbortOptions, PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { DuplicateTopicValidatorError, IncompatibleGossipsubError } from './errors.js'
import { GOSSIP_SCORE_THRESHOLDS, GROUP_TOPIC_SCORE_PARAMS, scoringOf } from './gossip-scoring.js'
import { isGroupTopic } from './topics.js'

const log = logger('p2pchat:node:transport')

/**
 * Which topics gossipsub accepts from the network (subscriptions and messages); anything else is dropped
 * before it touches the router's caches. Either an exact list or a predicate.
 */
export type TopicFilter = readonly string[] | ((topic: string) => boolean)

/** Largest inbound gossipsub RPC (length-prefixed protobuf), in bytes: a message's data must fit in it. */
const MAX_INBOUND_RPC_LENGTH = 1024 * 1024

/**
 * Upper bounds applied while decoding one inbound gossipsub RPC. gossipsub's own defaults allow 5000
 * subscriptions and messages per RPC; a chat peer needs far fewer, and an RPC over a limit is dropped
 * whole.
 */
const DECODE_RPC_LIMITS: Readonly<NonNullable<GossipsubOpts['decodeRpcLimits']>> = {
  maxSubscriptions: 1024,
  maxMessages: 1024,
  maxIhaveMessageIDs: 5000,
  maxIwantMessageIDs: 5000,
  maxIdontwantMessageIDs: 512,
  maxControlMessages: 1024,
  maxPeerInfos: 16,
}

/** Gossipsub options a p2pchat node may change; everything else is fixed by {@link gossipService}. */
export interface GossipInit {
  /** Topics accepted from the network. Default {@link isGroupTopic}. */
  allowedTopics?: TopicFilter
  /**
   * Tests only: many peers share 127.0.0.1, so turn off the IP-colocation penalty (P6) of peer scoring.
   * The rest of peer scoring stays on.
   */
  sameHostTest?: boolean
}

/** Content address of a gossipsub message: SHA-256 of its data (topic and sender are not part of it). */
function messageId(msg: Message): Uint8Array {
  return new Uint8Array(createHash('sha256').update(msg.data).digest())
}

const EMPTY = new Uint8Array(0)

/**
 * The gossipsub service of a p2pchat node, in libp2p's factory form. It runs over limited (relayed)
 * connections too, so peers that can only meet through a relay chat until DCUtR upgrades the connection.
 *
 * @throws {IncompatibleGossipsubError} (from the factory) if the installed gossipsub lacks what p2pchat
 * relies on
 */
export function gossipService(init: GossipInit): (components: GossipSubComponents) => GossipSub {
  const filter = init.allowedTopics ?? isGroupTopic
  const opts: Partial<GossipsubOpts> = {
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: messageId,
    // Looked up before the message is decoded and validated, to drop duplicates early. It must be
    // collision resistant: a colliding id makes a new message count as a duplicate, so a cheap hash would
    // let a peer suppress messages it can predict. Hence SHA-256 again, as a string.
    fastMsgIdFn: (rpcMsg) =>
      createHash('sha256')
        .update(rpcMsg.data ?? EMPTY)
        .digest('base64'),
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    fallbackToFloodsub: false,
    maxInboundDataLength: MAX_INBOUND_RPC_LENGTH,
    decodeRpcLimits: { ...DECODE_RPC_LIMITS },
    runOnLimitedConnection: true,
    // An exact list is native; a predicate is installed below over an empty (= deny all) list.
    allowedTopics: typeof filter === 'function' ? [] : [...filter],
    // group topics get their score parameters as they are subscribed (setTopicValidator)
    scoreParams: { topics: {}, ...(init.sameHostTest === true ? { IPColocationFactorWeight: 0 } : {}) },
    scoreThresholds: { ...GOSSIP_SCORE_THRESHOLDS },
  }
  const factory = gossipsub(opts)
  return (components) => {
    const pubsub = factory(components)
    if (typeof filter === 'function') installTopicPredicate(pubsub, filter)
    scoringOf(pubsub)
    return pubsub
  }
}

/**
 * gossipsub 17 only takes an exact topic list (copied into a private `Set` and only ever queried with
 * `.has`); neither a topic validator (per exact topic) nor a connection gater (per peer) can filter by
 * predicate. Group topics are not known in advance, so swap that set for a predicate. If a future version
 * drops the field we fail at construction rather than silently accepting every topic; the unit test
 * gossip-topics.test.ts checks that the installed version still consults it.
 */
function installTopicPredicate(pubsub: GossipSub, predicate: (topic: string) => boolean): void {
  const internals = pubsub as unknown as { allowedTopics?: unknown }
  if (!(internals.allowedTopics instanceof Set)) {
    throw new IncompatibleGossipsubError()
  }
  const allowed: Pick<ReadonlySet<string>, 'has'> = {
    has: (topic: string) => {
      const ok = predicate(topic)
      if (!ok) log.trace('dropping gossipsub subscription/message on disallowed topic %s', topic)
      return ok
    },
  }
  internals.allowedTopics = allowed
}

/** The verdict of a {@link TopicValidator}: deliver and forward, drop and penalise the sender, or just drop. */
export type TopicValidationResult = 'accept' | 'reject' | 'ignore'

/** What a {@link TopicValidator} sees of an inbound gossipsub message. */
export interface TopicMessage {
  topic: string
  data: Uint8Array
  /** The peer that forwarded the message to us (not necessarily its author: messages are unsigned). */
  propagationSource: PeerId
}

/**
 * Decides whether an inbound message on a topic is delivered and forwarded. Must be quick (well under
 * 100 ms): gossipsub penalises slow validation. A validator that throws counts as `'ignore'`.
 */
export type TopicValidator = (message: TopicMessage) => TopicValidationResult | Promise<TopicValidationResult>

const VALIDATOR_RESULTS: Record<TopicValidationResult, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  reject: TopicValidatorResult.Reject,
  ignore: TopicValidatorResult.Ignore,
}

/**
 * Register the validator of one topic on a gossipsub router. Messages it rejects or ignores are neither
 * delivered (no `message` event) nor forwarded. Returns a function that removes it again.
 *
 * @throws {DuplicateTopicValidatorError} if the topic already has a validator
 * @example
 * ```ts
 * const remove = setTopicValidator(node.services.pubsub, topic, ({ data }) => isEnvelope(data) ? 'accept' : 'reject')
 * ```
 */
export function setTopicValidator(
  pubsub: Pick<GossipSub, 'topicValidators'>,
  topic: string,
  validator: TopicValidator,
): () => void {
  if (pubsub.topicValidators.has(topic)) {
    throw new DuplicateTopicValidatorError(topic)
  }
  const wrapped = async (propagationSource: PeerId, msg: Message): Promise<TopicValidatorResult> => {
    try {
      const verdict = await validator({ topic: msg.topic, data: msg.data, propagationSource })
      const result = VALIDATOR_RESULTS[verdict]
      if (result === undefined) {
        log.error('validator for %s returned %o, ignoring the message', topic, verdict)
        return TopicValidatorResult.Ignore
      }
      if (verdict !== 'accept') log.trace('%s message from %p on %s', verdict, propagationSource, topic)
      return result
    } catch (err) {
      log.error('validator for %s threw, ignoring the message - %e', topic, err)
      return TopicValidatorResult.Ignore
    }
  }
  const scoredTopics = scoringOf(pubsub).score.params.topics
  pubsub.topicValidators.set(topic, wrapped)
  // its 'reject' verdicts now count against the sender (P4); see GROUP_TOPIC_SCORE_PARAMS
  scoredTopics[topic] = { ...GROUP_TOPIC_SCORE_PARAMS }
  return () => {
    if (pubsub.topicValidators.get(topic) !== wrapped) return
    pubsub.topicValidators.delete(topic)
    delete scoredTopics[topic]
  }
}

/** Options of {@link waitForSubscribers}. */
export interface WaitForSubscribersOptions extends AbortOptions {
  /** How many remote subscribers to wait for. Default 1. */
  minPeers?: number
}

/**
 * Resolve once at least `minPeers` connected peers are known to subscribe to `topic` — the point from
 * which a publish reaches someone (gossipsub flood-publishes to every known subscriber, not only to mesh
 * peers). Rejects with the signal's reason if aborted first.
 */
export async function waitForSubscribers(
  pubsub: Pick<GossipSub, 'getSubscribers' | 'addEventListener' | 'removeEventListener'>,
  topic: string,
  options: WaitForSubscribersOptions = {},
): Promise<PeerId[]> {
  const minPeers = options.minPeers ?? 1
  const signal = options.signal
  signal?.throwIfAborted()
  const now = pubsub.getSubscribers(topic)
  if (now.length >= minPeers) return now
  return new Promise<PeerId[]>((resolve, reject) => {
    const onChange = (): void => {
      const subscribers = pubsub.getSubscribers(topic)
      if (subscribers.length >= minPeers) {
        cleanup()
        resolve(subscribers)
      }
    }
    const onAbort = (): void => {
      cleanup()
      reject(signal?.reason)
    }
    const cleanup = (): void => {
      pubsub.removeEventListener('subscription-change', onChange)
      signal?.removeEventListener('abort', onAbort)
    }
    pubsub.addEventListener('subscription-change', onChange)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
