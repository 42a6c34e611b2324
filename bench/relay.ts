/**
 * Relay figures: how much of an honest member's burst a relay with default settings keeps (in-process,
 * 127.0.0.1), and what a relay process holding 100k envelopes costs in memory and start-up time against
 * an empty relay started the same way (real `bin/p2pchat.js relay --json` processes).
 */
import { performance } from 'node:perf_hooks'
import { Identity } from '../src/crypto/index.js'
import { topicOf } from '../src/node/index.js'
import { createRelayNode } from '../src/relay/index.js'
import { type Figure, median } from './measure.js'
import {
  benchDir,
  CLI,
  LOOPBACK,
  removeDirs,
  rssOf,
  sameHostComponents,
  sealMessages,
  seedGroup,
  seedStore,
  spawnUntilReady,
  startChatNode,
  TEXT,
  until,
} from './network.js'

/** Size of the burst, and how long after it the relay may take to have it all. */
export interface RelayBurstInit {
  messages: number
  /** How long to wait after the burst for the relay to hold every message (gossip, then sync rounds). */
  settleMs: number
  progress: (line: string) => void
}

/**
 * A member of a three-member group whose only peer is a relay with default settings sends `messages`
 * messages back to back (each `send` awaited); the figure is how many the relay stored by `settleMs`
 * after the last one (the member's sync rounds, every 30 s by default, re-offer what gossip lost).
 */
export async function relayBurstFigures(init: RelayBurstInit): Promise<Figure[]> {
  const dirs = await Promise.all(['relay', 'alice'].map((name) => benchDir(name)))
  const [relayDir, aliceDir] = dirs as [string, string]
  const stops: Array<() => Promise<void>> = []
  try {
    const relay = await createRelayNode({ dataDir: relayDir, listen: [LOOPBACK] }, sameHostComponents())
    await relay.start()
    stops.push(() => relay.stop())
    let stored = 0
    let rejected = 0
    const reasons = new Map<string, number>()
    relay.addEventListener('message:store', () => stored++)
    relay.addEventListener('reject', (e) => {
      rejected++
      const reason = e.detail.reason.split(':')[0] ?? e.detail.reason
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    })

    const alice = await startChatNode(aliceDir, 'alice', relay.addrs())
    stops.push(() => alice.stop())
    const { id } = await alice.createGroup('burst')
    for (let i = 0; i < 2; i++) await alice.add(id, (await Identity.generate()).memberId)
    const topic = topicOf(id)
    await until(
      () =>
        relay.stats().events >= 3 &&
        (alice.libp2p?.services.pubsub.getSubscribers(topic) ?? []).some(
          (p) => p.toString() === relay.peerId,
        ),
      30_000,
      'the relay to hold the group log and subscribe to its topic',
    )

    const start = performance.now()
    for (let i = 0; i < init.messages; i++) await alice.send(id, TEXT)
    const burstMs = performance.now() - start
    init.progress(`sent ${init.messages} in ${(burstMs / 1000).toFixed(1)} s; relay stored ${stored} so far`)
    const settledBy = performance.now() + init.settleMs
    await until(
      () => stored >= init.messages || performance.now() > settledBy,
      init.settleMs + 5000,
      'the burst to settle',
    )
    const allMs = stored >= init.messages ? performance.now() - start : undefined

    const count = init.messages.toLocaleString('en')
    const why = [...reasons].map(([reason, n]) => `${n} ${reason}`).join(', ')
    return [
      {
        name: `relay with default settings keeps a ${count}-message honest burst`,
        unit: 'messages',
        value: stored,
        target: { kind: 'value-min', value: init.messages },
        note: `one member, each send awaited (burst took ${Math.round(burstMs)} ms); stored ${allMs === undefined ? `within ${init.settleMs / 1000} s after it` : `all ${Math.round(allMs)} ms after the burst began`}; ${rejected} rejected${why === '' ? '' : ` (${why})`}`,
      },
    ]
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await removeDirs(dirs)
  }
}

/** How many envelopes the full relay stores, and how many times each relay is started. */
export interface RelayMemoryInit {
  envelopes: number
  starts: number
  progress: (line: string) => void
}

/** RSS of a relay process (max over the second after its `ready` line) and its time to `ready`. */
async function relayStart(dataDir: string): Promise<{ rss: number; readyMs: number }> {
  const relay = await spawnUntilReady(CLI, ['relay', '--json', '--data-dir', dataDir, '--listen', LOOPBACK])
  try {
    const pid = relay.child.pid as number
    let rss = 0
    const end = performance.now() + 1000
    while (performance.now() < end) {
      rss = Math.max(rss, rssOf(pid) ?? 0)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    if (rss === 0) throw new Error('cannot read the relay process RSS (/proc)')
    return { rss, readyMs: relay.readyMs }
  } finally {
    await relay.stop()
  }
}

/**
 * A relay process whose store holds `envelopes` envelopes of one three-member group (two senders, as a
 * relay that had accepted them stores them: ciphertext only) against an empty relay: RSS, and the time
 * from spawn to its `ready` line (a restart). The two are started alternately, `starts` times each.
 */
export async function relayMemoryFigures(init: RelayMemoryInit): Promise<Figure[]> {
  const dirs = await Promise.all(['full-relay', 'empty-relay', 'm0', 'm1', 'm2'].map((n) => benchDir(n)))
  const [fullDir, emptyDir, ...memberDirs] = dirs as [string, string, ...string[]]
  try {
    const started = performance.now()
    const seeded = await seedGroup(memberDirs, 'relay-memory')
    const messages = await sealMessages(seeded.replicas.slice(0, 2), init.envelopes)
    seedStore(fullDir, seeded, messages, false)
    const bytes = messages.reduce((sum, m) => sum + m.bytes.length, 0)
    init.progress(
      `seeded a relay store with ${messages.length} envelopes (${(bytes / 1e6).toFixed(0)} MB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    )
    const empty: Array<{ rss: number; readyMs: number }> = []
    const full: Array<{ rss: number; readyMs: number }> = []
    for (let i = 0; i < init.starts; i++) {
      empty.push(await relayStart(emptyDir))
      full.push(await relayStart(fullDir))
    }
    const MB = 1e6
    const count = init.envelopes.toLocaleString('en')
    const note = `median of ${init.starts} starts each, alternating; RSS: max over the second after ready; ${(bytes / MB).toFixed(0)} MB of envelopes in the store`
    return [
      {
        name: `relay RSS holding ${count} envelopes`,
        unit: 'MB',
        value: median(full.map((s) => s.rss)) / MB,
        floorName: 'an empty relay',
        floor: median(empty.map((s) => s.rss)) / MB,
        target: { kind: 'ratio-max', ratio: 1.3 },
        note,
      },
      {
        name: `…relay holding ${count} envelopes: spawn to ready (a restart)`,
        unit: 'ms',
        value: median(full.map((s) => s.readyMs)),
        floorName: 'an empty relay',
        floor: median(empty.map((s) => s.readyMs)),
        note: 'time from spawning `p2pchat relay --json` to its ready line; no target in the issue',
      },
    ]
  } finally {
    await removeDirs(dirs)
  }
}
