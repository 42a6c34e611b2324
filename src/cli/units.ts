/**
 * Sizes and durations as users type them on the command line (`512MiB`, `7d`), turned into bytes and
 * milliseconds. Pure; a value that does not parse is a {@link UsageError}.
 *
 * @packageDocumentation
 */

import { UsageError } from './errors.js'

/** Decimal (1 kB = 1000 B) and binary (1 KiB = 1024 B) units, lower-cased. */
const SIZE_UNITS: Readonly<Record<string, number>> = Object.fromEntries([
  ['', 1],
  ['b', 1],
  ...['kb', 'mb', 'gb', 'tb'].map((unit, i) => [unit, 1000 ** (i + 1)]),
  ...['kib', 'mib', 'gib', 'tib'].map((unit, i) => [unit, 1024 ** (i + 1)]),
])

/**
 * Parse a storage size: a plain number of bytes (`1048576`) or a number with a decimal (`kB`, `MB`,
 * `GB`, `TB`) or binary (`KiB`, `MiB`, `GiB`, `TiB`) unit, case-insensitive, with optional space and
 * fraction (`1.5 GiB`). Bare `K`/`M`/`G` are refused because they do not say which of the two they mean.
 *
 * @param text - what the user typed
 * @param label - what is being parsed, to start the error message (e.g. `'--retention' value`)
 * @returns a positive whole number of bytes (fractions of a byte are rounded down)
 * @throws {@link UsageError} when the text is not a size, or is zero or too large
 *
 * @example
 * ```ts
 * parseSize('512MiB') // → 536870912
 * parseSize('1GB')    // → 1000000000
 * ```
 */
export function parseSize(text: string, label = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text)
  const unit = match?.[2]?.toLowerCase() ?? ''
  const factor = SIZE_UNITS[unit]
  if (match?.[1] === undefined || factor === undefined) {
    throw new UsageError(`invalid ${label} '${text}': expected a size like 512MiB, 1GB or a number of bytes`)
  }
  return positiveWhole(Number(match[1]) * factor, `invalid ${label} '${text}'`, 'must be at least 1 byte')
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60 * 1000,
  h: 60 * 60 * 1000,
  d: 24 * 60 * 60 * 1000,
  w: 7 * 24 * 60 * 60 * 1000,
}

/**
 * Parse a duration: one or more numbers each followed by a unit, `ms`, `s`, `m` (minutes), `h`, `d`
 * or `w`, e.g. `7d`, `12h`, `30m`, `1h30m`, `1.5d`. A bare number is refused: nobody can tell
 * whether it means seconds or days.
 *
 * @param text - what the user typed
 * @param label - what is being parsed, to start the error message (e.g. `'--retention' value`)
 * @returns a positive whole number of milliseconds
 * @throws {@link UsageError} when the text is not a duration, or is zero or too large
 *
 * @example
 * ```ts
 * parseDuration('7d')    // → 604800000
 * parseDuration('1h30m') // → 5400000
 * ```
 */
export function parseDuration(text: string, label = 'duration'): number {
  const trimmed = text.trim()
  const part = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d|w)/gy
  let total = 0
  let end = 0
  for (let match = part.exec(trimmed); match !== null; match = part.exec(trimmed)) {
    const [, amount = '', unit = ''] = match
    total += Number(amount) * (DURATION_UNITS[unit] ?? Number.NaN)
    end = part.lastIndex
  }
  if (trimmed === '' || end !== trimmed.length || Number.isNaN(total)) {
    const hint = /^\d+(\.\d+)?$/.test(trimmed) ? ' (a unit is required)' : ''
    throw new UsageError(`invalid ${label} '${text}': expected a duration like 7d, 12h or 30m${hint}`)
  }
  return positiveWhole(total, `invalid ${label} '${text}'`, 'must be longer than zero')
}

/** `value` rounded down, if that is at least 1 and counted exactly; else a usage error. */
function positiveWhole(value: number, invalid: string, tooSmall: string): number {
  const whole = Math.floor(value)
  if (whole <= 0) throw new UsageError(`${invalid}: ${tooSmall}`)
  if (!Number.isSafeInteger(whole)) throw new UsageError(`${invalid}: too large`)
  return whole
}

/**
 * Parse a count: a whole number of at least 1, written in decimal digits.
 *
 * @param label - what is being parsed, to start the error message (e.g. `'--max-groups' value`)
 * @throws {@link UsageError} when the text is not such a number
 */
export function parseCount(text: string, label = 'count'): number {
  const count = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new UsageError(`invalid ${label} '${text}': expected a whole number of at least 1`)
  }
  return count
}
