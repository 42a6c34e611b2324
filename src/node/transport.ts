/**
 * The libp2p layer of a p2pchat node: TCP + Noise + Yamux, identify, ping, gossipsub (unsigned, content
 * addressed messages), DCUtR, circuit relay (client always, server on demand), and peer discovery through
 * mDNS and/or a bootstrap list. Discovered peers are dialled, since libp2p 3 no longer does that itself.
 * Gossipsub peer scoring penalises invalid messages on group topics; a peer whose score falls below the
 * graylist threshold is disconnected and refused until gossipsub forgets its score (an hour).
 *
 * @packageDocumentation
 */

import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { type CircuitRelayService, circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import {
  type GossipSub,
  type GossipSubComponents,
  type GossipsubOpts,
  gossipsub,
  type Message,
  StrictNoSign,
  TopicValidatorResult,
} from '@libp2p/gossipsub'
import {
  createTopicScoreParams,
  type PeerScoreThresholds,
  type TopicScoreParams,
} from '@libp2p/gossipsub/score'
import { type Identify, identify } from '@libp2p/identify'
import type {
  AbortOptions,
  ConnectionGater,
  Libp2p,
  PeerDiscovery,
  PeerId,
  PeerInfo,
  PrivateKey,
} from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { mdns } from '@libp2p/mdns'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { type RepeatingTask, repeatingTask } from '@libp2p/utils'
import { CODE_P2P, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions, type ServiceFactoryMap } from 'libp2p'
import {
  DuplicateTopicValidatorError,
  IncompatibleGossipsubError,
  InvalidTransportInitError,
} from './errors.js'
import { repairingGossip } from './gossip-repair.js'

const log = logger('p2pchat:node:transport')

/** Every p2pchat group topic starts with this; by default gossipsub drops any other topic from peers. */
export const GROUP_TOPIC_PREFIX = '/p2pchat/1/group/'

/** Longest topic accepted by {@link isGroupTopic}; bounds what a peer can make us store per topic. */
export const MAX_TOPIC_LENGTH = 256

/** Default cap on one inbound gossipsub RPC (length-prefixed protobuf), in bytes. */
export const DEFAULT_MAX_INBOUND_RPC_LENGTH = 1024 * 1024

/** Default mDNS service tag; tests pass a random one so parallel runs do not find each other. */
export const DEFAULT_MDNS_SERVICE_TAG = 'p2pchat.local'

/** Default listen address: every IPv4 interface, a random TCP port. */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0'] as const

/**
 * Whether `topic` is a p2pchat group topic: {@link GROUP_TOPIC_PREFIX} followed by a non-empty group id,
 * at most {@link MAX_TOPIC_LENGTH} characters in total. This is the default gossipsub topic filter.
 */
export function isGroupTopic(topic: string): boolean {
  return (
    topic.length > GROUP_TOPIC_PREFIX.length &&
    topic.length <= MAX_TOPIC_LENGTH &&
    topic.startsWith(GROUP_TOPIC_PREFIX)
  )
}

/**
 * Which topics gossipsub accepts from the network (subscriptions and messages); anything else is dropped
 * before it touches the router's caches. Either an exact list or a predicate.
 */
export type TopicFilter = readonly string[] | ((topic: string) => boolean)

/** Upper bounds applied while decoding one inbound gossipsub RPC. */
export type DecodeRpcLimits = NonNullable<GossipsubOpts['decodeRpcLimits']>

/**
 * Decoding limits used unless overridden. gossipsub's own defaults allow 5000 subscriptions and messages
 * per RPC; a chat peer needs far fewer, and an RPC over a limit is dropped whole.
 */
export const DEFAULT_DECODE_RPC_LIMITS: Readonly<DecodeRpcLimits> = {
  maxSubscriptions: 1024,
  maxMessages: 1024,
  maxIhaveMessageIDs: 5000,
  maxIwantMessageIDs: 5000,
  maxIdontwantMessageIDs: 512,
  maxControlMessages: 1024,
  maxPeerInfos: 16,
}

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
 * Score parameters of every group topic, set when its validator is ({@link setTopicValidator}): gossipsub
 * takes them per exact topic only, and group topics are not known in advance.
 *
 * - P4, invalid messages (a validator's 'reject'): weight -10 on the square of a counter that decays by
 *   1 % a second, so 3 rejected messages take a peer to -90, below the graylist threshold of -80; then
 *   it is ignored and disconnected (see {@link createTransport}).
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

/** Gossipsub options a p2pchat node may change; everything else is fixed by {@link createTransport}. */
export interface GossipInit {
  /** Topics accepted from the network. Default {@link isGroupTopic}. */
  allowedTopics?: TopicFilter
  /** Largest inbound RPC in bytes (a message's data must fit in it). Default 1 MiB. */
  maxInboundDataLength?: number
  /** Per-RPC decode limits, merged over {@link DEFAULT_DECODE_RPC_LIMITS}. */
  decodeRpcLimits?: Partial<DecodeRpcLimits>
  /**
   * Tests only: many peers share 127.0.0.1, so turn off the IP-colocation penalty (P6) of peer scoring.
   * The rest of peer scoring stays on.
   */
  sameHostTest?: boolean
  /**
   * Run gossipsub over limited (relayed) connections, so peers that can only meet through a relay still
   * chat until DCUtR upgrades the connection. Default true.
   */
  runOnLimitedConnection?: boolean
}

/** Limits a relay server puts on the reservations and relayed connections it serves. */
export interface RelayServerLimits {
  /** Concurrent reservations. Default 128. */
  maxReservations?: number
  /** How long a reservation lasts before the client must renew it, in ms. Default 1 hour. */
  reservationTtlMs?: number
  /** Longest life of one relayed connection, in ms. Default 30 minutes. */
  durationLimitMs?: number
  /** Most bytes relayed over one relayed connection (each direction). Default 64 MiB. */
  dataLimitBytes?: bigint
}

/** Options of {@link createTransport}. */
export interface TransportInit {
  /** The node's identity; must be Ed25519. */
  privateKey: PrivateKey
  /** Multiaddrs to listen on. Default {@link DEFAULT_LISTEN}. */
  listen?: readonly string[]
  /** Peers to connect to at start, each a multiaddr ending in `/p2p/<peer-id>`. Empty or absent: none. */
  bootstrap?: readonly string[]
  /** Discover (and dial) peers on the local network with mDNS. */
  mdns: boolean
  /** mDNS service tag; peers only find others using the same tag. Default {@link DEFAULT_MDNS_SERVICE_TAG}. */
  mdnsServiceTag?: string
  /** Also listen on `/p2p-circuit`: reserve a slot on relays we connect to, so NATed peers can reach us. */
  listenViaRelay?: boolean
  /** Act as a circuit relay server for others (the `p2pchat relay` command). Default false. */
  relayServer?: boolean
  /** Limits applied when {@link TransportInit.relayServer} is on. */
  relayServerLimits?: RelayServerLimits
  /**
   * Dial peers as they are discovered: the first time libp2p hears of a peer from any source, and every
   * time a discovery mechanism (mDNS, bootstrap, {@link TransportInit.peerDiscovery}) announces it again
   * while we are not connected. Default true.
   */
  dialOnDiscovery?: boolean
  /** More discovery mechanisms, in libp2p's factory form; tests pass a fake here. */
  peerDiscovery?: readonly DiscoveryFactory[]
  /** Gossipsub settings. */
  gossip?: GossipInit
  /**
   * Tests only: refuse to dial, or to accept connections from, some peers (e.g. two peers that must only
   * meet through a relay). Default: allow everything.
   */
  connectionGater?: ConnectionGater
}

/** A libp2p peer discovery mechanism in factory form, as `mdns()` or `bootstrap()` return. */
export type DiscoveryFactory = NonNullable<Libp2pOptions['peerDiscovery']>[number]

/** The services every p2pchat libp2p node runs; `relay` is present only when started as a relay server. */
export interface TransportServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  dcutr: unknown
  relay?: CircuitRelayService
}

/** A started libp2p node as built by {@link createTransport}. */
export type TransportNode = Libp2p<TransportServices>

/**
 * Build and start the libp2p node of a p2pchat peer.
 *
 * Messages are published unsigned (`StrictNoSign`) and identified by the SHA-256 of their data: the chat
 * layer signs and encrypts its own envelopes, so a libp2p signature would add nothing but show every relay
 * the author's peer id.
 * Publishing with no subscribed peer succeeds with `recipients: []`; the caller tells the user.
 *
 * @throws {InvalidTransportInitError} when an option is unusable (bad key type or multiaddr)
 * @example
 * ```ts
 * const node = await createTransport({ privateKey, mdns: true })
 * node.services.pubsub.subscribe(`${GROUP_TOPIC_PREFIX}${groupId}`)
 * const { recipients } = await node.services.pubsub.publish(topic, bytes)
 * if (recipients.length === 0) { ... nobody is listening yet ... }
 * await node.stop()
 * ```
 */
export async function createTransport(
  init: TransportInit,
  options: AbortOptions = {},
): Promise<TransportNode> {
  options.signal?.throwIfAborted()
  validateInit(init)

  const listen = [...(init.listen ?? DEFAULT_LISTEN)]
  if (init.listenViaRelay === true) listen.push('/p2p-circuit')

  const discoveryFactories: DiscoveryFactory[] = [...(init.peerDiscovery ?? [])]
  if (init.mdns) {
    discoveryFactories.push(mdns({ serviceTag: init.mdnsServiceTag ?? DEFAULT_MDNS_SERVICE_TAG }))
  }
  const bootstrapList = init.bootstrap ?? []
  if (bootstrapList.length > 0) {
    discoveryFactories.push(bootstrap({ list: [...bootstrapList] }))
  }
  // Keep hold of the instances: libp2p only reports a peer the first time it enters the peer store, so
  // re-announcements (a peer back from sleep) are only visible on the mechanisms themselves.
  const discoveries: PeerDiscovery[] = []
  const peerDiscovery = discoveryFactories.map(
    (factory): DiscoveryFactory =>
      (components) => {
        const discovery = factory(components)
        discoveries.push(discovery)
        return discovery
      },
  )

  const services: ServiceFactoryMap<TransportServices> = {
    identify: identify(),
    ping: ping(),
    pubsub: createGossip(init.gossip ?? {}),
    dcutr: dcutr(),
  }
  if (init.relayServer === true) {
    services.relay = createRelayServer(init.relayServerLimits ?? {})
  }

  const node: TransportNode = await createLibp2p<TransportServices>({
    start: false,
    privateKey: init.privateKey,
    addresses: { listen },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    services,
    // consults the node's gossipsub scores, so it reads the node once there is one
    connectionGater: refusingGraylisted(init.connectionGater ?? {}, () => node),
  })

  if (init.dialOnDiscovery !== false) {
    const dialer = createDiscoveryDialer(node)
    node.addEventListener('peer:discovery', (evt) => {
      dialer(evt.detail)
    })
    for (const discovery of discoveries) {
      discovery.addEventListener('peer', (evt) => {
        dialer(evt.detail)
      })
    }
  }

  const tasks = [disconnectingGraylisted(node), repairingGossip(node)]
  node.addEventListener(
    'stop',
    () => {
      for (const task of tasks) task.stop()
    },
    { once: true },
  )
  try {
    await node.start()
    for (const task of tasks) task.start()
  } catch (err) {
    // e.g. the listen port is taken: release whatever did start before reporting
    try {
      await node.stop()
    } catch (stopErr) {
      log.error('stopping a node that failed to start failed too - %e', stopErr)
    }
    throw err
  }
  if (options.signal?.aborted === true) {
    await node.stop()
    options.signal.throwIfAborted()
  }
  log('started %p listening on %s', node.peerId, node.getMultiaddrs().map(String).join(', '))
  return node
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
function scoringOf(pubsub: object): ScoringInternals {
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

function isGraylisted(node: TransportNode | undefined, peer: PeerId): boolean {
  if (node === undefined) return false
  return peerScore(node.services.pubsub, peer) < GOSSIP_SCORE_THRESHOLDS.graylistThreshold
}

/**
 * `gater`, also refusing connections to and from graylisted peers. gossipsub keeps the score of a
 * disconnected peer, undecayed, for an hour, so a peer disconnected for sending invalid messages cannot
 * come straight back with a clean slate.
 */
function refusingGraylisted(
  gater: ConnectionGater,
  getNode: () => TransportNode | undefined,
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
function disconnectingGraylisted(node: TransportNode): RepeatingTask {
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

/** Content address of a gossipsub message: SHA-256 of its data (topic and sender are not part of it). */
function messageId(msg: Message): Uint8Array {
  return new Uint8Array(createHash('sha256').update(msg.data).digest())
}

const EMPTY = new Uint8Array(0)

function createGossip(init: GossipInit): (components: GossipSubComponents) => GossipSub {
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
    maxInboundDataLength: init.maxInboundDataLength ?? DEFAULT_MAX_INBOUND_RPC_LENGTH,
    decodeRpcLimits: { ...DEFAULT_DECODE_RPC_LIMITS, ...init.decodeRpcLimits },
    runOnLimitedConnection: init.runOnLimitedConnection ?? true,
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
 * gossipsub only takes an exact topic list (copied into a private `Set` and only ever queried with `.has`).
 * Group topics are not known in advance, so swap that set for a predicate. If a future version drops the
 * field we fail at construction rather than silently accepting every topic.
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

function createRelayServer(
  limits: RelayServerLimits,
): NonNullable<ServiceFactoryMap<TransportServices>['relay']> {
  return circuitRelayServer({
    reservations: {
      maxReservations: limits.maxReservations ?? 128,
      reservationTtl: limits.reservationTtlMs ?? 60 * 60 * 1000,
      applyDefaultLimit: true,
      defaultDurationLimit: limits.durationLimitMs ?? 30 * 60 * 1000,
      defaultDataLimit: limits.dataLimitBytes ?? BigInt(64 * 1024 * 1024),
    },
  })
}

/** Dial a discovered peer unless it is us, already connected, or already being dialled by us. */
function createDiscoveryDialer(node: TransportNode): (peer: PeerInfo) => void {
  const dialling = new Set<string>()
  return (peer) => {
    const id = peer.id.toString()
    if (node.status !== 'started' || peer.id.equals(node.peerId) || dialling.has(id)) return
    if (node.getConnections(peer.id).length > 0) return
    if (peer.multiaddrs.length === 0) {
      log.trace('discovered %p without addresses, not dialling', peer.id)
      return
    }
    dialling.add(id)
    log('dialling discovered peer %p', peer.id)
    // libp2p merges the addresses too, but asynchronously: make sure they are stored before dialling
    node.peerStore
      .merge(peer.id, { multiaddrs: peer.multiaddrs })
      .then(async () => node.dial(peer.id))
      .catch((err: unknown) => {
        log('could not dial discovered peer %p - %e', peer.id, err)
      })
      .finally(() => dialling.delete(id))
  }
}

function validateInit(init: TransportInit): void {
  if (init.privateKey?.type !== 'Ed25519') {
    throw new InvalidTransportInitError(`privateKey must be an Ed25519 key, got ${init.privateKey?.type}`)
  }
  for (const addr of init.listen ?? []) {
    parseMultiaddr(addr, 'listen')
  }
  for (const addr of init.bootstrap ?? []) {
    const ma = parseMultiaddr(addr, 'bootstrap')
    if (!ma.getComponents().some((c) => c.code === CODE_P2P)) {
      throw new InvalidTransportInitError(`bootstrap address ${addr} has no /p2p/<peer-id> part`)
    }
  }
  const limits = init.relayServerLimits
  if (limits !== undefined) {
    for (const [key, value] of Object.entries(limits)) {
      if (value !== undefined && !(Number(value) > 0)) {
        throw new InvalidTransportInitError(`relayServerLimits.${key} must be positive`)
      }
    }
  }
  const maxLen = init.gossip?.maxInboundDataLength
  if (maxLen !== undefined && !(Number.isSafeInteger(maxLen) && maxLen > 0)) {
    throw new InvalidTransportInitError('gossip.maxInboundDataLength must be a positive integer')
  }
}

function parseMultiaddr(addr: string, field: string): ReturnType<typeof multiaddr> {
  try {
    return multiaddr(addr)
  } catch (err) {
    throw new InvalidTransportInitError(`${field} address ${addr} is not a valid multiaddr: ${String(err)}`)
  }
}
