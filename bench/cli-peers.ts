/**
 * Five peers as real processes on 127.0.0.1 (mDNS off, each bootstrapping to those started before it):
 * `p2pchat start --json` members of one group, against bench/bare-libp2p.js raw gossipsub peers on one
 * topic. One driver, the same for both: it asks the first peer to send a message and waits until every
 * other peer reported it, then sends the next (a closed loop), for a fixed time.
 */
import { performance } from 'node:perf_hooks'
import { GROUP_TOPIC_PREFIX } from '../src/node/topics.js'
import type { Figure } from './measure.js'
import {
  benchDir,
  CLI,
  LOOPBACK,
  type ReadyProcess,
  removeDirs,
  seedGroup,
  seedStore,
  spawnUntilReady,
  TEXT,
} from './network.js'

/** How many peers, and how long the loop runs on each side. */
export interface ClosedLoopInit {
  peers: number
  durationMs: number
  progress: (line: string) => void
}

const BARE = new URL('./bare-libp2p.js', import.meta.url).pathname
/** A message not seen by every receiver this long after it was sent counts as lost. */
const MESSAGE_TIMEOUT_MS = 10_000

/** What a closed loop over some peers measured. */
interface LoopResult {
  sent: number
  rate: number
  lost: number
}

/**
 * Sends through `peers[0]` in a closed loop for `durationMs` and counts what the other peers report
 * (`message` notifications whose `text` is the one sent).
 */
async function closedLoop(peers: readonly ReadyProcess[], durationMs: number): Promise<LoopResult> {
  const [sender, ...receivers] = peers as [ReadyProcess, ...ReadyProcess[]]
  const waiting = new Map<string, { remaining: Set<number>; done: () => void }>()
  const seen = receivers.map(() => 0)
  receivers.forEach((peer, r) => {
    peer.onLine((message) => {
      const text = (message.params as { text?: string } | undefined)?.text
      if (message.method !== 'message' || text === undefined) return
      if (!text.startsWith('warm-up')) seen[r] = (seen[r] ?? 0) + 1
      const wait = waiting.get(text)
      wait?.remaining.delete(r)
      if (wait?.remaining.size === 0) wait.done()
    })
  })
  const deliver = (text: string, id: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), MESSAGE_TIMEOUT_MS)
      waiting.set(text, {
        remaining: new Set(receivers.map((_, r) => r)),
        done: () => {
          clearTimeout(timer)
          resolve(true)
        },
      })
      sender.send({ jsonrpc: '2.0', id, method: 'send', params: { text } })
    })

  // warm-up: until one message reaches everyone (the mesh has formed), not counted
  const warmUpUntil = performance.now() + 30_000
  for (let i = 0; !(await deliver(`warm-up ${i} ${TEXT}`, -1 - i)); i++) {
    if (performance.now() > warmUpUntil) throw new Error('closed loop: the peers never all got a message')
  }

  let sent = 0
  let delivered = 0
  const start = performance.now()
  while (performance.now() - start < durationMs) {
    if (await deliver(`${sent} ${TEXT}`, sent)) delivered++
    sent++
  }
  const elapsed = performance.now() - start
  // stragglers of messages that timed out may still come
  const settle = performance.now() + 2000
  while (performance.now() < settle && seen.some((n) => n < sent)) await new Promise((r) => setTimeout(r, 50))
  const lost = seen.reduce((sum, n) => sum + Math.max(0, sent - n), 0)
  return { sent, rate: (delivered * 1000) / elapsed, lost }
}

/** Starts `n` peers one after another, each with the ready addresses of those before it as bootstrap. */
async function startPeers(n: number, argsOf: (i: number, bootstrap: string[]) => [string, string[]]) {
  const peers: ReadyProcess[] = []
  try {
    for (let i = 0; i < n; i++) {
      const bootstrap = peers.flatMap((p) => (p.ready.addrs as string[]).slice(0, 1))
      const [script, args] = argsOf(i, bootstrap)
      peers.push(await spawnUntilReady(script, args))
    }
  } catch (err) {
    await Promise.allSettled(peers.map((p) => p.stop()))
    throw err
  }
  return peers
}

/** Closed-loop rate of `peers` p2pchat CLI peers against as many raw gossipsub processes. */
export async function closedLoopFigures(init: ClosedLoopInit): Promise<Figure[]> {
  const dirs = await Promise.all(Array.from({ length: init.peers }, (_, i) => benchDir(`cli${i}`)))
  let peers: ReadyProcess[] = []
  try {
    const seeded = await seedGroup(dirs, 'closed-loop')
    for (const dir of dirs) seedStore(dir, seeded)
    const topic = `${GROUP_TOPIC_PREFIX}bench-raw-${Date.now()}`
    peers = await startPeers(init.peers, (_, bootstrap) => [BARE, [LOOPBACK, topic, ...bootstrap]])
    const raw = await closedLoop(peers, init.durationMs)
    await Promise.allSettled(peers.map((p) => p.stop()))
    init.progress(`raw gossipsub: ${raw.sent} messages, ${raw.rate.toFixed(0)} msg/s, ${raw.lost} lost`)

    peers = await startPeers(init.peers, (i, bootstrap) => [
      CLI,
      [
        'start',
        '--json',
        '--name',
        `p${i}`,
        '--data-dir',
        dirs[i] as string,
        '--listen',
        LOOPBACK,
        '--no-mdns',
      ].concat(bootstrap.flatMap((addr) => ['--bootstrap', addr])),
    ])
    const chat = await closedLoop(peers, init.durationMs)
    init.progress(`p2pchat: ${chat.sent} messages, ${chat.rate.toFixed(0)} msg/s, ${chat.lost} lost`)
    const seconds = init.durationMs / 1000
    return [
      {
        name: `${init.peers} CLI peers, one sender, ${seconds} s closed loop`,
        unit: 'msg/s',
        value: chat.rate,
        floorName: 'raw gossipsub processes, same driver',
        floor: raw.rate,
        target: { kind: 'ratio-min', ratio: 0.8 },
        note: `a message counts once all ${init.peers - 1} others reported it; lost (not reported within ${MESSAGE_TIMEOUT_MS / 1000} s + 2 s): p2pchat ${chat.lost} of ${chat.sent * (init.peers - 1)}, raw ${raw.lost} of ${raw.sent * (init.peers - 1)}`,
      },
      {
        name: '…messages lost in that loop (p2pchat)',
        unit: 'messages',
        value: chat.lost,
        target: { kind: 'value-max', value: 0 },
        note: `deliveries of ${chat.sent} messages to ${init.peers - 1} peers`,
      },
    ]
  } finally {
    await Promise.allSettled(peers.map((p) => p.stop()))
    await removeDirs(dirs)
  }
}
