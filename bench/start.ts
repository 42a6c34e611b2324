/**
 * Starting a chat node whose store holds a 10k-event log, as a user does (`p2pchat start --json`, a real
 * process, 127.0.0.1, mDNS off), against starting p2pchat's libp2p stack bare in a process of its own
 * (bench/bare-libp2p.ts). Both are timed from spawn to their `ready` line, alternately; the p2pchat
 * start also to its answer to a first request (`members`), which waits for the log's replay.
 */
import { performance } from 'node:perf_hooks'
import { type Figure, median } from './measure.js'
import { longLog } from './membership.js'
import { benchDir, CLI, LOOPBACK, removeDirs, seedStore, spawnUntilReady, writeIdentity } from './network.js'

/** Size of the log, and how many starts of each are timed. */
export interface StartInit {
  events: number
  starts: number
  progress: (line: string) => void
}

const BARE = new URL('./bare-libp2p.js', import.meta.url).pathname

/** Spawn-to-ready of a member's node with an `events`-event log against a bare libp2p process. */
export async function startFigures(init: StartInit): Promise<Figure[]> {
  const dir = await benchDir('start')
  try {
    const log = await longLog(init.events)
    writeIdentity(dir, log.reader)
    seedStore(dir, {
      id: log.groupId,
      name: 'bench',
      events: log.events.map((bytes, i) => ({ id: log.ids[i] as string, bytes })),
    })
    const args = ['start', '--json', '--name', 'reader', '--data-dir', dir, '--listen', LOOPBACK, '--no-mdns']
    // the data directory as the member's own node leaves it: run once and stopped cleanly (not timed)
    await (await spawnUntilReady(CLI, args)).stop()
    const node: number[] = []
    const firstAnswer: number[] = []
    const bare: number[] = []
    for (let i = 0; i < init.starts; i++) {
      const started = await spawnUntilReady(BARE, [LOOPBACK])
      bare.push(started.readyMs)
      await started.stop()
      const chat = await spawnUntilReady(CLI, args)
      const readyAt = performance.now()
      if (chat.ready.member !== true) throw new Error('start: the reader is not a member of the stored group')
      node.push(chat.readyMs)
      const answered = new Promise<void>((resolve) =>
        chat.onLine((line) => {
          if (line.id === 1) resolve()
        }),
      )
      chat.send({ jsonrpc: '2.0', id: 1, method: 'members', params: {} })
      await answered
      firstAnswer.push(chat.readyMs + performance.now() - readyAt)
      await chat.stop()
    }
    const count = init.events.toLocaleString('en')
    return [
      {
        name: `start with a ${count}-event log`,
        unit: 'ms',
        value: median(node),
        floorName: 'bare libp2p start (same stack, own process)',
        floor: median(bare),
        target: { kind: 'ratio-max', ratio: 1.5 },
        note: `median of ${init.starts}, alternating; spawn to the ready line of \`p2pchat start --json\` (a member whose own node ran on the data directory before, with the log in its store) and of bench/bare-libp2p.js`,
      },
      {
        name: '…its first answer (members), after the log is replayed',
        unit: 'ms',
        value: median(firstAnswer),
        floorName: 'bare libp2p start',
        floor: median(bare),
        note: 'spawn to the answer to a `members` request sent at the ready line; it waits for the replay',
      },
    ]
  } finally {
    await removeDirs([dir])
  }
}
