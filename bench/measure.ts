/**
 * What a bench figure is, and how it is timed. A figure is measured next to its floor (the least any
 * implementation must spend on the same work, timed in the same run), so a noisy, shared machine moves
 * both alike and the ratio is what to read. Targets are reported, never asserted.
 */
import { performance } from 'node:perf_hooks'

/** How a figure compares with its target. */
export type Target =
  /** value / floor at most this (for times), e.g. ≤ 1.5× floor */
  | { kind: 'ratio-max'; ratio: number }
  /** value / floor at least this (for rates), e.g. ≥ 0.8× floor */
  | { kind: 'ratio-min'; ratio: number }
  /** value at most this, in the figure's unit, e.g. ≤ 10 ms */
  | { kind: 'value-max'; value: number }
  /** value at least this, in the figure's unit, e.g. ≥ 10,000 messages */
  | { kind: 'value-min'; value: number }

/** One row of the bench table. */
export interface Figure {
  name: string
  unit: 'ops/s' | 'ms' | 'µs' | 'MB' | 'messages' | 'msg/s' | '%'
  /** Undefined when the row is not measured yet; `missing` says why. */
  value?: number
  /** Why a row of the table has no value yet (the feature or harness it needs). */
  missing?: string
  /** What the floor measures, e.g. "ChaCha20-Poly1305 decrypt + Ed25519 verify". */
  floorName?: string
  floor?: number
  target?: Target
  /** Anything a reader needs to interpret the row (sizes, samples). */
  note?: string
}

/** Milliseconds `fn` takes, once. */
export async function timeMs(fn: () => unknown): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

/** Median of `samples` (not empty). */
export function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** A row of the table that this bench cannot measure yet, and why. */
export function notMeasured(name: string, missing: string, target?: Target): Figure {
  return { name, unit: 'ms', missing, ...(target === undefined ? {} : { target }) }
}

/** Calls of `fn` per second, over at least `minMs`. */
export function opsPerSecond(fn: () => void, minMs: number): number {
  let n = 0
  const start = performance.now()
  while (performance.now() - start < minMs) {
    fn()
    n++
  }
  return (n * 1000) / (performance.now() - start)
}

/** value / floor, when there is a floor. */
export function ratioOf(figure: Figure): number | undefined {
  const { value, floor } = figure
  return value === undefined || floor === undefined || floor === 0 ? undefined : value / floor
}

/** Whether the figure meets its target (undefined when it has none). */
export function meetsTarget(figure: Figure): boolean | undefined {
  const { target } = figure
  if (target === undefined) return undefined
  const ratio = ratioOf(figure)
  switch (target.kind) {
    case 'ratio-max':
      return ratio === undefined ? undefined : ratio <= target.ratio
    case 'ratio-min':
      return ratio === undefined ? undefined : ratio >= target.ratio
    case 'value-max':
      return figure.value === undefined ? undefined : figure.value <= target.value
    case 'value-min':
      return figure.value === undefined ? undefined : figure.value >= target.value
  }
}

/** The target as the table shows it. */
export function describeTarget(figure: Figure): string {
  const { target } = figure
  if (target === undefined) return ''
  switch (target.kind) {
    case 'ratio-max':
      return `≤ ${target.ratio}× floor`
    case 'ratio-min':
      return `≥ ${target.ratio}× floor`
    case 'value-max':
      return `≤ ${formatNumber(target.value)} ${figure.unit}`
    case 'value-min':
      return `≥ ${formatNumber(target.value)} ${figure.unit}`
  }
}

/** 1,234 for large numbers and integers, 12.3 / 1.23 for small ones. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en')
  if (n >= 100) return Math.round(n).toLocaleString('en')
  if (n >= 10) return n.toFixed(1)
  return n.toFixed(2)
}
