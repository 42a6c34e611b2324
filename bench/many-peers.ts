/**
 * Many peers in one group on one machine, a steady message rate: the share of deliveries within 1 s
 * and the 99th percentile of delivery time, p2pchat against raw gossipsub built the same way. Peers live
 * a few to a process (bench/swarm-host.ts; 50 Node processes do not fit two cores), each dials the same
 * few earlier peers on both sides, senders take turns, and a delivery is timed from just before the
 * sender's `send` (p2pchat: seal, store, publish) or `publish` to the receiver's notification.
 */
import { performance } from 'node:perf_hooks'
import { GROUP_TOPIC_PREFIX } from '../src/node/topics.js'
import { type Figure, median } from './measure.js'
import {
  benchDir,
  type ReadyProcess,
  removeDirs,
  seedGroup,
  seedStore,
  spawnUntilReady,
  TEXT,
} from './network.js'

/** How many peers, in how many processes, at what rate, for how long. */
export interface ManyPeersInit {
  peers: number
  processes: number
  /** Messages per second, all senders together. */
  rate: number
  durationMs: number
  progress: (line: string) => void
}

const HOST = new URL('./swarm-host.js', import.meta.url).pathname
/** Each peer dials this many earlier peers (fewer at the start), the same ones on both sides. */
const DIALS = 4
/** A delivery later than this after the last send is counted as never made. */
const SETTLE_MS = 10_000
const WITHIN_MS = 1000

/** Delivery times of one run, in ms, one per (message, receiver); `Infinity` for one never made. */
interface RunResult {
  delays: number[]
  messages: number
  /** The most peers one warm-up message reached. */
  warmUpReach: number
  /** Median over the peers, at the end: open connections, peers in the topic's gossipsub mesh. */
  connections: number
  mesh: number
}

/** A swarm of peers spread over host processes, addressed by a global index. */
class Swarm {
  readonly #hosts: ReadyProcess[]
  readonly #perHost: number
  readonly addrs: string[][]
  #nextId = 0
  readonly #pending = new Map<number, (result: Record<string, unknown>) => void>()
  #onMessage: (peer: number, text: string, at: number) => void = () => {}

  constructor(hosts: ReadyProcess[], perHost: number) {
    this.#hosts = hosts
    this.#perHost = perHost
    this.addrs = hosts.flatMap((h) => h.ready.addrs as string[][])
    hosts.forEach((host, h) => {
      host.onLine((message) => {
        const id = message.id as number | undefined
        if (id !== undefined) {
          this.#pending.get(id)?.((message.result ?? {}) as Record<string, unknown>)
          this.#pending.delete(id)
          return
        }
        const params = message.params as { node: number; text: string; at: number } | undefined
        if (message.method === 'message' && params !== undefined)
          this.#onMessage(h * perHost + params.node, params.text, params.at)
      })
    })
  }

  get size(): number {
    return this.addrs.length
  }

  onMessage(listener: (peer: number, text: string, at: number) => void): void {
    this.#onMessage = listener
  }

  request(
    peer: number,
    method: 'connect' | 'send' | 'stats',
    params: object,
  ): Promise<Record<string, unknown>> {
    const id = this.#nextId++
    const host = this.#hosts[Math.floor(peer / this.#perHost)] as ReadyProcess
    return new Promise((resolve) => {
      this.#pending.set(id, resolve)
      host.send({ jsonrpc: '2.0', id, method, params: { ...params, node: peer % this.#perHost } })
    })
  }

  /** Median connections and mesh peers over all peers. */
  async stats(): Promise<{ connections: number; mesh: number }> {
    const all = await Promise.all(this.#hosts.map((_, h) => this.request(h * this.#perHost, 'stats', {})))
    const peers = all.flatMap((r) => r.peers as Array<{ connections: number; mesh: number }>)
    return { connections: median(peers.map((p) => p.connections)), mesh: median(peers.map((p) => p.mesh)) }
  }

  stop(): Promise<unknown> {
    return Promise.allSettled(this.#hosts.map((h) => h.stop()))
  }
}

/** The earlier peers peer `i` dials: the first, and others picked by a fixed hash among those before it. */
function dialsOf(i: number): number[] {
  const out = new Set<number>(i > 0 ? [0] : [])
  for (let k = 1; out.size < Math.min(i, DIALS); k++)
    out.add(((Math.imul(i, 73_856_093) ^ Math.imul(k, 19_349_663)) >>> 0) % i)
  return [...out]
}

async function startSwarm(
  init: ManyPeersInit,
  argsOf: (host: number, peers: number[]) => string[],
): Promise<Swarm> {
  const perHost = Math.ceil(init.peers / init.processes)
  const hosts = await Promise.allSettled(
    Array.from({ length: init.processes }, (_, h) => {
      const peers = Array.from({ length: perHost }, (_, k) => h * perHost + k).filter((i) => i < init.peers)
      return spawnUntilReady(HOST, argsOf(h, peers), 120_000)
    }),
  )
  const ready = hosts.flatMap((h) => (h.status === 'fulfilled' ? [h.value] : []))
  const failed = hosts.find((h) => h.status === 'rejected')
  if (failed !== undefined) {
    await Promise.allSettled(ready.map((h) => h.stop()))
    throw (failed as PromiseRejectedResult).reason
  }
  const swarm = new Swarm(ready, perHost)
  await Promise.all(
    Array.from({ length: swarm.size }, (_, i) =>
      swarm.request(i, 'connect', { addrs: dialsOf(i).map((j) => swarm.addrs[j]?.[0]) }),
    ),
  )
  return swarm
}

/** Warms the mesh up, then sends `rate` messages a second, senders taking turns, and times every delivery. */
async function run(swarm: Swarm, init: ManyPeersInit): Promise<RunResult> {
  const arrivals = new Map<string, Map<number, number>>()
  /** Who sent each text: its own notification of it, if any, is no delivery. */
  const senders = new Map<string, number>()
  swarm.onMessage((peer, text, at) => {
    if (senders.get(text) === peer) return
    let byPeer = arrivals.get(text)
    if (byPeer === undefined) {
      byPeer = new Map()
      arrivals.set(text, byPeer)
    }
    if (!byPeer.has(peer)) byPeer.set(peer, at)
  })
  const others = swarm.size - 1
  // warm-up, not counted: a message a second for at least 5 s, and until one reaches everyone (at most
  // 30 s; a swarm that never gets there is measured anyway, and says so)
  const warmUpStart = performance.now()
  let reach = 0
  for (let i = 0; ; i++) {
    const text = `warm-up ${i} ${TEXT}`
    senders.set(text, i % swarm.size)
    await swarm.request(i % swarm.size, 'send', { text })
    await new Promise((r) => setTimeout(r, 1000))
    reach = Math.max(reach, arrivals.get(text)?.size ?? 0)
    const elapsed = performance.now() - warmUpStart
    if ((reach >= others && elapsed > 5000) || elapsed > 30_000) break
  }
  const interval = 1000 / init.rate
  const sends: Array<Promise<{ text: string; sender: number; sentAt: number }>> = []
  const start = performance.now()
  for (let i = 0; performance.now() - start < init.durationMs; i++) {
    const sender = (i * 7) % swarm.size
    const text = `m${i} ${TEXT}`
    senders.set(text, sender)
    sends.push(
      swarm.request(sender, 'send', { text }).then((r) => ({ text, sender, sentAt: r.sentAt as number })),
    )
    const next = start + (i + 1) * interval
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())))
  }
  const sent = await Promise.all(sends)
  const complete = (): boolean => sent.every((m) => (arrivals.get(m.text)?.size ?? 0) >= others)
  const settleUntil = performance.now() + SETTLE_MS
  while (!complete() && performance.now() < settleUntil) await new Promise((r) => setTimeout(r, 100))
  const delays: number[] = []
  for (const m of sent) {
    const byPeer = arrivals.get(m.text)
    for (let peer = 0; peer < swarm.size; peer++) {
      if (peer === m.sender) continue
      const at = byPeer?.get(peer)
      delays.push(at === undefined ? Number.POSITIVE_INFINITY : at - m.sentAt)
    }
  }
  return { delays, messages: sent.length, warmUpReach: reach, ...(await swarm.stats()) }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

/** Share within 1 s, p50 and p99 of a run. */
function summary(result: RunResult): {
  within: number
  p50: number
  p99: number
  lost: number
  warmUpReach: number
  connections: number
  mesh: number
} {
  const sorted = [...result.delays].sort((a, b) => a - b)
  return {
    warmUpReach: result.warmUpReach,
    connections: result.connections,
    mesh: result.mesh,
    within: (100 * sorted.filter((d) => d <= WITHIN_MS).length) / sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    lost: sorted.filter((d) => d === Number.POSITIVE_INFINITY).length,
  }
}

const ms = (x: number): string => (Number.isFinite(x) ? `${Math.round(x)} ms` : 'never')

/** `init.peers` p2pchat peers in one group against as many raw gossipsub peers on one topic. */
export async function manyPeersFigures(init: ManyPeersInit): Promise<Figure[]> {
  const dirs = await Promise.all(Array.from({ length: init.peers }, (_, i) => benchDir(`many${i}`)))
  let swarm: Swarm | undefined
  try {
    const seeded = await seedGroup(dirs, 'many-peers')
    for (const dir of dirs) seedStore(dir, seeded)
    init.progress(`seeded a group of ${init.peers}`)
    const topic = `${GROUP_TOPIC_PREFIX}bench-many-${Date.now()}`
    swarm = await startSwarm(init, (_, peers) => ['raw', topic, String(peers.length)])
    const raw = summary(await run(swarm, init))
    await swarm.stop()
    init.progress(
      `raw gossipsub: ${raw.within.toFixed(1)}% within 1 s, p50 ${ms(raw.p50)}, p99 ${ms(raw.p99)}, ${raw.lost} lost, warm-up reached ${raw.warmUpReach}, median ${raw.connections} connections, ${raw.mesh} in mesh`,
    )

    swarm = await startSwarm(init, (_, peers) => ['chat', seeded.id, ...peers.map((i) => dirs[i] as string)])
    const chat = summary(await run(swarm, init))
    init.progress(
      `p2pchat: ${chat.within.toFixed(1)}% within 1 s, p50 ${ms(chat.p50)}, p99 ${ms(chat.p99)}, ${chat.lost} lost, warm-up reached ${chat.warmUpReach}, median ${chat.connections} connections, ${chat.mesh} in mesh`,
    )
    const setup = `${init.peers} peers in ${init.processes} processes, each dialing ≤ ${DIALS} earlier peers; ${init.rate} msg/s for ${init.durationMs / 1000} s, senders taking turns; after a warm-up`
    return [
      {
        name: `${init.peers} peers in one group on one machine, ${init.rate} msg/s: delivered within 1 s`,
        unit: '%',
        value: chat.within,
        floorName: 'raw gossipsub peers, same harness',
        floor: raw.within,
        target: { kind: 'ratio-min', ratio: 1 },
        note: `${setup}; p50 p2pchat ${ms(chat.p50)}, raw ${ms(raw.p50)}; never delivered (within ${SETTLE_MS / 1000} s of the last send): p2pchat ${chat.lost}, raw ${raw.lost}; the most peers one warm-up message reached: p2pchat ${chat.warmUpReach}, raw ${raw.warmUpReach} of ${init.peers - 1}`,
      },
      {
        name: '…99th percentile of delivery time',
        unit: 'ms',
        value: Number.isFinite(chat.p99) ? chat.p99 : SETTLE_MS,
        floorName: 'raw gossipsub peers',
        floor: Number.isFinite(raw.p99) ? raw.p99 : SETTLE_MS,
        note: 'a delivery never made counts as infinitely late',
      },
    ]
  } finally {
    await swarm?.stop()
    await removeDirs(dirs)
  }
}
