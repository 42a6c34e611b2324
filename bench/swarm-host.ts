/**
 * One process holding several peers of the many-peers figure (bench/many-peers.ts), all on 127.0.0.1
 * with mDNS off and gossipsub's IP-colocation weight off (they share one address):
 *
 * - `node swarm-host.js chat <groupId> <dataDir>...`: a p2pchat chat node per data directory, each a
 *   member of the group seeded there;
 * - `node swarm-host.js raw <topic> <count>`: as many bare libp2p nodes (p2pchat's transport, nothing on
 *   top), subscribed to `topic`.
 *
 * It starts them all, writes a JSON-RPC `ready` line with their addresses, then answers requests on
 * stdin: `connect {node, addrs}` dials, `send {node, text}` sends (and returns when it was sent, in ms
 * since the epoch), `stats {node}` returns every peer's connection and mesh counts, and it notifies `message {node, text, at}` for every message a node receives. Times
 * are `performance.timeOrigin + performance.now()`, comparable between processes on one machine. Stops
 * on stdin EOF.
 */

import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createTransport, topicOf } from '../src/node/index.js'
import { LOOPBACK, startChatNode } from './network.js'

/** What the host needs of a peer, chat node or bare. */
interface Peer {
  addrs(): string[]
  /** Open connections, and peers in the gossipsub mesh of the topic. */
  stats(): { connections: number; mesh: number }
  connect(addr: string): Promise<unknown>
  send(text: string): Promise<unknown>
  stop(): Promise<void>
}

const [kind, target = '', ...rest] = process.argv.slice(2)
const now = (): number => performance.timeOrigin + performance.now()
const line = (message: object): void => {
  process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`)
}
const received = (node: number, text: string): void => {
  line({ method: 'message', params: { node, text, at: now() } })
}

/** Peers in `pubsub`'s mesh of `topic` (gossipsub has the method; its public interface does not). */
function meshSize(pubsub: object, topic: string): number {
  return (pubsub as { getMeshPeers(topic: string): string[] }).getMeshPeers(topic).length
}

async function chatPeer(index: number, dataDir: string): Promise<Peer> {
  const node = await startChatNode(dataDir, `p${index}`)
  node.addEventListener('message:receive', (e) => {
    if (e.detail.group === target) received(index, e.detail.text)
  })
  const topic = topicOf(target)
  return {
    addrs: () => node.addrs(),
    stats: () => ({
      connections: node.libp2p?.getConnections().length ?? 0,
      mesh: node.libp2p === undefined ? 0 : meshSize(node.libp2p.services.pubsub, topic),
    }),
    connect: (addr) => node.connect(addr),
    send: (text) => node.send(target, text),
    stop: () => node.stop(),
  }
}

let counter = 0
async function rawPeer(index: number): Promise<Peer> {
  const node = await createTransport({
    privateKey: await generateKeyPair('Ed25519'),
    listen: [LOOPBACK],
    mdns: false,
    gossip: { sameHostTest: true },
  })
  const pubsub = node.services.pubsub
  pubsub.subscribe(target)
  pubsub.addEventListener('message', (e) => {
    if (e.detail.topic !== target) return
    const text = new TextDecoder().decode(e.detail.data)
    // the counter makes each publish its own gossipsub message
    received(index, text.slice(text.indexOf(' ') + 1))
  })
  return {
    addrs: () => node.getMultiaddrs().map(String),
    stats: () => ({ connections: node.getConnections().length, mesh: meshSize(pubsub, target) }),
    connect: (addr) => node.dial(multiaddr(addr)),
    send: (text) => pubsub.publish(target, new TextEncoder().encode(`${counter++} ${text}`)),
    stop: async () => {
      await node.stop()
    },
  }
}

const peers: Peer[] = await Promise.all(
  kind === 'chat'
    ? rest.map((dir, i) => chatPeer(i, dir))
    : Array.from({ length: Number(rest[0] ?? 1) }, (_, i) => rawPeer(i)),
)

interface Request {
  id: number
  method: 'connect' | 'send' | 'stats'
  params: { node: number; addrs?: string[]; text?: string }
}

createInterface({ input: process.stdin }).on('line', (request) => {
  const { id, method, params } = JSON.parse(request) as Request
  const peer = peers[params.node] as Peer
  if (method === 'stats') {
    line({ id, result: { peers: peers.map((p) => p.stats()) } })
    return
  }
  const work =
    method === 'connect'
      ? Promise.allSettled((params.addrs ?? []).map((addr) => peer.connect(addr))).then(() => ({}))
      : (() => {
          const sentAt = now()
          return peer.send(params.text ?? '').then(() => ({ sentAt }))
        })()
  work.then(
    (result) => line({ id, result }),
    (err: Error) => line({ id, error: { code: -32000, message: err.message } }),
  )
})
line({ method: 'ready', params: { addrs: peers.map((p) => p.addrs()) } })
process.stdin.on('end', () => {
  void Promise.allSettled(peers.map((p) => p.stop())).then(() => process.exit(0))
})
