/**
 * Catch-up through the sync protocol and the store: in-process chat nodes on 127.0.0.1 (mDNS off). A
 * three-member group; alice's store holds `messages` envelopes that alice and bob sent (alternating),
 * carol's holds the log and none of them: she is back from away. Carol starts with alice as bootstrap
 * peer, and the figure is the time until she has stored and shown every message, with the longest
 * event-loop block meanwhile (both nodes share this process's loop, as the in-process figures do).
 */
import { performance } from 'node:perf_hooks'
import { verifyDecryptFloor } from './envelopes.js'
import type { Figure } from './measure.js'
import {
  benchChatNode,
  benchDir,
  LoopBlockProbe,
  removeDirs,
  sealMessages,
  seedGroup,
  seedStore,
  startChatNode,
  until,
} from './network.js'

/** How many messages carol catches up on, and how long she may take. */
export interface SyncCatchUpInit {
  messages: number
  timeoutMs: number
  progress: (line: string) => void
}

/** Catch-up of `messages` through sync and the store, against verify + decrypt of as many. */
export async function syncCatchUpFigures(init: SyncCatchUpInit): Promise<Figure[]> {
  const dirs = await Promise.all(['alice', 'bob', 'carol'].map((name) => benchDir(name)))
  const [aliceDir, , carolDir] = dirs as [string, string, string]
  const stops: Array<() => Promise<void>> = []
  try {
    const seeded = await seedGroup(dirs, 'catch-up')
    const [alice, bob] = seeded.replicas as [
      (typeof seeded.replicas)[number],
      (typeof seeded.replicas)[number],
    ]
    const messages = await sealMessages([alice, bob], init.messages)
    seedStore(aliceDir, seeded, messages)
    seedStore(carolDir, seeded)
    init.progress(`seeded alice's store with ${messages.length} messages`)

    const aliceNode = await startChatNode(aliceDir, 'alice')
    stops.push(() => aliceNode.stop())
    const carolNode = await benchChatNode(carolDir, 'carol', aliceNode.addrs())
    stops.push(() => carolNode.stop())
    let shown = 0
    carolNode.addEventListener('message:receive', (e) => {
      if (e.detail.group === seeded.id) shown++
    })

    const probe = new LoopBlockProbe()
    probe.start()
    const start = performance.now()
    await carolNode.start()
    await until(
      () => shown >= messages.length,
      init.timeoutMs,
      `carol to show ${messages.length} messages (showed ${shown})`,
    )
    const value = performance.now() - start
    const longestBlock = probe.stop()
    const stored = carolNode.store.messageCount()
    if (stored !== messages.length) throw new Error(`catch-up: carol stored ${stored} of ${messages.length}`)

    const floor = verifyDecryptFloor(messages[0]?.bytes as Uint8Array, messages.length)
    const count = messages.length.toLocaleString('en')
    const setup = `carol (log, no messages) starts with alice (log + ${count} messages by alice and bob) as bootstrap peer; from carol's start() to her ${count}th message:receive; both nodes in this process`
    return [
      {
        name: `catch-up of ${count} messages through sync and the store, 3 members`,
        unit: 'ms',
        value,
        floorName: `Ed25519 verify + ChaCha20-Poly1305 decrypt ×${count}`,
        floor,
        target: { kind: 'ratio-max', ratio: 1.5 },
        note: setup,
      },
      {
        name: '…the longest event-loop block during it',
        unit: 'ms',
        value: longestBlock,
        target: { kind: 'value-max', value: 100 },
        note: 'monitorEventLoopDelay (10 ms resolution) over the catch-up above',
      },
    ]
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await removeDirs(dirs)
  }
}
