/**
 * The libp2p layer of a p2pchat node: TCP + Noise + Yamux, identify, ping, gossipsub (unsigned, content
 * addressed messages; gossip.ts), DCUtR, circuit relay (client always, server on demand), and peer
 * discovery through mDNS and/or a bootstrap list. Discovered peers are dialled, since libp2p 3 no longer
 * does that itself. Gossipsub peer scoring penalises invalid messages on group topics; a peer whose score
 * falls below the graylist threshold is disconnected and refused until gossipsub forgets its score (an
 * hour; gossip-scoring.ts).
 *
 * @packageDocumentation
 */

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { type CircuitRelayService, circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import type { GossipSub } from '@libp2p/gossipsub'
import { type Identify, identify } from '@libp2p/identify'
import type {
  AbortOptions,
  ConnectionGater,
  Libp2p,
  PeerDiscovery,
  PeerInfo,
  PrivateKey,
} from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { mdns } from '@libp2p/mdns'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { CODE_P2P, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions, type ServiceFactoryMap } from 'libp2p'
import { DEFAULT_LISTEN } from './defaults.js'
import { InvalidTransportInitError } from './errors.js'
import { type GossipInit, gossipService } from './gossip.js'
import { repairingGossip } from './gossip-repair.js'
import { disconnectingGraylisted, refusingGraylisted } from './gossip-scoring.js'
import { startOrRelease } from './lifecycle.js'

export { DEFAULT_LISTEN } from './defaults.js'
export {
  type GossipInit,
  setTopicValidator,
  type TopicFilter,
  type TopicMessage,
  type TopicValidationResult,
  type TopicValidator,
  type WaitForSubscribersOptions,
  waitForSubscribers,
} from './gossip.js'
export { GOSSIP_SCORE_THRESHOLDS, GROUP_TOPIC_SCORE_PARAMS, peerScore } from './gossip-scoring.js'
export { GROUP_TOPIC_PREFIX, isGroupTopic, MAX_TOPIC_LENGTH } from './topics.js'

const log = logger('p2pchat:node:transport')

/** Default mDNS service tag; tests pass a random one so parallel runs do not find each other. */
export const DEFAULT_MDNS_SERVICE_TAG = 'p2pchat.local'

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
  /**
   * Act as a circuit relay server for others (the `p2pchat relay` command): at most 128 reservations of
   * an hour each, every relayed connection limited to 30 minutes and 64 MiB each way. Default false.
   */
  relayServer?: boolean
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
    pubsub: gossipService(init.gossip ?? {}),
    dcutr: dcutr(),
  }
  if (init.relayServer === true) {
    services.relay = relayServer()
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

  // Dial peers as they are discovered: the first time libp2p hears of a peer from any source, and every
  // time a discovery mechanism announces it again while we are not connected.
  const dialer = createDiscoveryDialer(node)
  node.addEventListener('peer:discovery', (evt) => {
    dialer(evt.detail)
  })
  for (const discovery of discoveries) {
    discovery.addEventListener('peer', (evt) => {
      dialer(evt.detail)
    })
  }

  const tasks = [disconnectingGraylisted(node), repairingGossip(node)]
  node.addEventListener(
    'stop',
    () => {
      for (const task of tasks) task.stop()
    },
    { once: true },
  )
  // e.g. the listen port is taken: release whatever did start before reporting
  await startOrRelease(
    async () => {
      await node.start()
      for (const task of tasks) task.start()
    },
    () => node.stop(),
  )
  if (options.signal?.aborted === true) {
    await node.stop()
    options.signal.throwIfAborted()
  }
  log('started %p listening on %s', node.peerId, node.getMultiaddrs().map(String).join(', '))
  return node
}

function relayServer(): NonNullable<ServiceFactoryMap<TransportServices>['relay']> {
  return circuitRelayServer({
    reservations: {
      maxReservations: 128,
      reservationTtl: 60 * 60 * 1000,
      applyDefaultLimit: true,
      defaultDurationLimit: 30 * 60 * 1000,
      defaultDataLimit: BigInt(64 * 1024 * 1024),
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
}

function parseMultiaddr(addr: string, field: string): ReturnType<typeof multiaddr> {
  try {
    return multiaddr(addr)
  } catch (err) {
    throw new InvalidTransportInitError(`${field} address ${addr} is not a valid multiaddr: ${String(err)}`)
  }
}
