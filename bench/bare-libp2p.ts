/**
 * The baseline peer, as a process: p2pchat's libp2p stack (createTransport: TCP, Noise, yamux, identify,
 * ping, DCUtR, gossipsub) started bare on 127.0.0.1 with a fresh key and mDNS off, then a JSON-RPC
 * `ready` line, as `p2pchat start --json` writes one. It is the floor of a chat node's start, and the
 * raw gossipsub peer the closed-loop figures compare p2pchat with: `node bare-libp2p.js <listen>
 * [topic [bootstrap...]]` subscribes to `topic`, dials the bootstrap peers, answers `send` requests
 * (`{ text }`, published raw, prefixed with a counter so each is its own gossipsub message) and
 * notifies `message` for each one it receives. Stops on stdin EOF.
 */
import { createInterface } from 'node:readline'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createTransport } from '../src/node/transport.js'

const [listen = '/ip4/127.0.0.1/tcp/0', topic, ...bootstrap] = process.argv.slice(2)
const node = await createTransport({
  privateKey: await generateKeyPair('Ed25519'),
  listen: [listen],
  mdns: false,
  gossip: { sameHostTest: true },
})
const line = (message: object): void => {
  process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`)
}
const pubsub = node.services.pubsub
if (topic !== undefined) {
  pubsub.subscribe(topic)
  pubsub.addEventListener('message', (e) => {
    if (e.detail.topic !== topic) return
    const text = new TextDecoder().decode(e.detail.data)
    line({ method: 'message', params: { text: text.slice(text.indexOf(' ') + 1) } })
  })
  for (const addr of bootstrap) await node.dial(multiaddr(addr))
}
let sent = 0
createInterface({ input: process.stdin }).on('line', (request) => {
  const { id, params } = JSON.parse(request) as { id: number; params: { text: string } }
  const data = new TextEncoder().encode(`${sent++} ${params.text}`)
  pubsub.publish(topic ?? '', data).then(
    () => line({ id, result: {} }),
    (err: Error) => line({ id, error: { code: -32000, message: err.message } }),
  )
})
line({ method: 'ready', params: { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) } })
process.stdin.on('end', () => {
  void Promise.resolve(node.stop()).then(() => process.exit(0))
})
