/**
 * `npm run bench [-- --quick]`: every figure next to its floor measured in the same run, so a noisy,
 * shared machine changes both sides alike. Prints a table and writes bench/results/<date>.json with the
 * machine it ran on. Targets are reported, never asserted.
 *
 * `--quick` keeps the sizes (they are what the figures are about) and cuts repetitions and measuring
 * windows, to finish in about two minutes.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { closedLoopFigures } from './cli-peers.js'
import { junkFigures } from './decode-order.js'
import { catchUpFigures, envelopeFigures, signatureFigures } from './envelopes.js'
import { manyPeersFigures } from './many-peers.js'
import { describeTarget, type Figure, formatNumber, meetsTarget, notMeasured, ratioOf } from './measure.js'
import { largeGroupFigures, longLogFigures } from './membership.js'
import { relayBurstFigures, relayMemoryFigures } from './relay.js'
import { startFigures } from './start.js'
import { syncCatchUpFigures } from './sync-catch-up.js'

const quick = process.argv.includes('--quick')
/** `--only <name>`: run the sections whose name contains it (while working on one). */
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt < 0 ? undefined : process.argv[onlyAt + 1]
const progress = (line: string): void => {
  process.stderr.write(`  ${line}\n`)
}

const sections: Array<[string, () => Promise<Figure[]>]> = [
  ['signatures', () => signatureFigures({ minMs: quick ? 200 : 1000 })],
  ['envelopes', () => envelopeFigures({ minMs: quick ? 200 : 1000, messages: quick ? 2000 : 10_000 })],
  ['1,000-member group', () => largeGroupFigures({ members: 1000, removals: quick ? 5 : 9, progress })],
  ['10k-event log', () => longLogFigures({ events: 10_000, coldStarts: quick ? 1 : 3, progress })],
  ['catch-up', () => catchUpFigures({ messages: 10_000 })],
  ['junk', () => junkFigures({ minMs: quick ? 200 : 1000 })],
  [
    'catch-up through sync',
    () => syncCatchUpFigures({ messages: 10_000, timeoutMs: quick ? 60_000 : 180_000, progress }),
  ],
  ['relay burst', () => relayBurstFigures({ messages: 10_000, settleMs: quick ? 35_000 : 65_000, progress })],
  ['relay memory', () => relayMemoryFigures({ envelopes: 100_000, starts: quick ? 1 : 3, progress })],
  ['start', () => startFigures({ events: 10_000, starts: quick ? 1 : 3, progress })],
  ['CLI peers', () => closedLoopFigures({ peers: 5, durationMs: quick ? 3000 : 10_000, progress })],
  // ~2 minutes, which --quick's budget has not got: full runs only
  ...(quick
    ? []
    : ([
        [
          '50 peers',
          () => manyPeersFigures({ peers: 50, processes: 5, rate: 5, durationMs: 20_000, progress }),
        ],
      ] as Array<[string, () => Promise<Figure[]>]>)),
  ['not measured yet', async () => notYet],
]

/** Rows of issue 11's table that this run does not measure, and why. */
const notYet: Figure[] = [
  ...(quick
    ? [
        notMeasured(
          '50 peers in one group, 5 msg/s: share within 1 s vs raw gossipsub',
          'in full runs only (bench/many-peers.ts, ~2 minutes: more than --quick has)',
        ),
      ]
    : []),
]

const figures: Figure[] = []
const started = Date.now()
for (const [name, run] of sections) {
  if (only !== undefined && !name.includes(only)) continue
  const start = Date.now()
  progress(`${name}…`)
  figures.push(...(await run()))
  progress(`${name}: ${((Date.now() - start) / 1000).toFixed(1)} s`)
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: availableParallelism(),
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
}

const header = ['figure', 'value', 'floor (same run)', 'ratio', 'target', 'met']
const rows = figures.map((f) => {
  const ratio = ratioOf(f)
  const met = meetsTarget(f)
  if (f.value === undefined) return [f.name, 'not measured yet', f.missing ?? '', '', describeTarget(f), '']
  return [
    f.name,
    `${formatNumber(f.value)} ${f.unit}`,
    f.floor === undefined ? '' : `${f.floorName}: ${formatNumber(f.floor)} ${f.unit}`,
    ratio === undefined ? '' : `${ratio.toFixed(2)}×`,
    describeTarget(f),
    met === undefined ? '' : met ? 'yes' : 'no',
  ]
})
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' │ ')
console.log(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}${quick ? ', --quick' : ''}\n`)
console.log(line(header))
console.log(widths.map((w) => '─'.repeat(w)).join('─┼─'))
for (const r of rows) console.log(line(r))

// a partial run (--only) is not a result
if (only !== undefined) process.exit(0)
const date = new Date().toISOString().slice(0, 10)
const dir = new URL('../../bench/results/', import.meta.url)
mkdirSync(dir, { recursive: true })
const file = new URL(`${date}${quick ? '-quick' : ''}.json`, dir)
const result = {
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  seconds: Math.round((Date.now() - started) / 1000),
  machine,
  figures: figures.map((f) => ({ ...f, ratio: ratioOf(f), met: meetsTarget(f) })),
}
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)
console.log(`\nwrote ${file.pathname} (${result.seconds} s)`)
