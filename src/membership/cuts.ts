import {
  type Ancestry,
  compareEntries,
  isEpoch,
  type LogEntry,
  type MemberMap,
  type Resolution,
  resolve,
} from './resolution.js'

/**
 * The cuts of a membership log, and what they settle. A cut is an event every other event of the log
 * precedes or follows (each event on top of all heads is one). Nothing after a cut can void what
 * precedes it, so whether an event before the last cut counts is settled once, and only the events after
 * it are resolved, from the cut's `membersAfter`; that resolution is kept until the next insert.
 */
export class LogCuts {
  /** The log's entries in insertion order, owned (and appended to) by the log. */
  readonly #order: readonly LogEntry[]
  readonly #ancestry: Ancestry
  /**
   * The cuts, oldest first: events comparable with every event of the log. They form a chain, and an
   * event that does not follow the last ones ends them.
   */
  readonly #cuts: LogEntry[] = []
  /** Whether each event up to the last cut counts (by insertion index): settled once it precedes a cut. */
  readonly #settledValid: boolean[] = []
  /** Epochs up to the last cut whose key may become current, in insertion order. */
  readonly #settledEpochs: LogEntry[] = []
  /** What the events after the last cut resolve to, from the cut; `undefined` until computed. */
  #resolution: Resolution | undefined

  constructor(order: readonly LogEntry[], ancestry: Ancestry) {
    this.#order = order
    this.#ancestry = ancestry
  }

  /** Whether `entry` counts in the resolution of the whole log (it is not voided by a concurrent removal). */
  isValid(entry: LogEntry): boolean {
    if (entry.index <= (this.#cuts.at(-1)?.index ?? -1)) return this.#settledValid[entry.index] === true
    return this.resolution().valid.has(entry)
  }

  /**
   * Records `entry`, about to be appended to the log with these `parents`: a cut when it follows every
   * event (`isCut`), else it ends the cuts it does not follow. Forgets the kept resolution.
   */
  added(entry: LogEntry, parents: readonly LogEntry[], isCut: boolean): void {
    if (isCut) this.#settleUpTo(entry)
    else this.#endCutsNotBefore(parents)
    this.#resolution = undefined
  }

  /**
   * The greatest valid epoch by (depth, id) that is `safe`. Epochs after the last cut follow it, so they
   * are deeper than every settled one; and a settled epoch is deeper than everything up to the last cut
   * at or before it, so the search stops there once it has found one.
   */
  greatestSafeEpoch(safe: (entry: LogEntry) => boolean): LogEntry | undefined {
    let best: LogEntry | undefined
    for (const entry of this.resolution().validEpochs) {
      if (best !== undefined && compareEntries(entry, best) <= 0) continue
      if (safe(entry)) best = entry
    }
    if (best !== undefined) return best
    let cut = this.#cuts.length - 1
    let floor = -1
    for (let i = this.#settledEpochs.length - 1; i >= 0; i--) {
      const entry = this.#settledEpochs[i] as LogEntry
      if (entry.index <= floor) break
      if (best !== undefined && compareEntries(entry, best) <= 0) continue
      if (!safe(entry)) continue
      best = entry
      while ((this.#cuts[cut] as LogEntry).index > entry.index) cut--
      floor = (this.#cuts[cut] as LogEntry).index
    }
    return best
  }

  /**
   * Members over the causal closure of `parents`, resolved from the last cut at or before every parent
   * (it precedes, or is, each of them), so only what follows it is resolved.
   */
  membersAfter(parents: readonly LogEntry[]): MemberMap {
    const oldest = parents.reduce((min, p) => Math.min(min, p.index), Number.POSITIVE_INFINITY)
    let i = this.#cuts.length - 1
    while ((this.#cuts[i] as LogEntry).index > oldest) i--
    const cut = this.#cuts[i] as LogEntry
    return resolve(closureAfter(parents, cut), this.#ancestry, cut).members
  }

  /** What the events after the last cut resolve to (the whole log's members), kept until the next insert. */
  resolution(): Resolution {
    if (this.#resolution === undefined) {
      const cut = this.#cuts.at(-1)
      const order = this.#order
      if (cut === undefined)
        this.#resolution = { members: new Map(), valid: new Set(), validEpochs: new Set() }
      else if (cut.index === order.length - 1)
        this.#resolution = { members: new Map(cut.membersAfter), valid: new Set(), validEpochs: new Set() }
      else this.#resolution = resolve(order.slice(cut.index + 1), this.#ancestry, cut)
    }
    return this.#resolution
  }

  /**
   * `cut` follows every event of the log: what the log resolves now is what counts before it, forever.
   * Settles the events after the last cut, then `cut` itself, which counts (its author is a member in its
   * past, and nothing is concurrent with it) and is an epoch unless it is a rename.
   */
  #settleUpTo(cut: LogEntry): void {
    const last = this.#cuts.at(-1)
    const order = this.#order
    if (last !== undefined && last.index < order.length - 1) {
      const { valid, validEpochs } = this.resolution()
      for (let i = last.index + 1; i < order.length; i++) {
        const entry = order[i] as LogEntry
        this.#settledValid[i] = valid.has(entry)
        if (validEpochs.has(entry)) this.#settledEpochs.push(entry)
      }
    }
    this.#settledValid[cut.index] = true
    if (isEpoch(cut)) this.#settledEpochs.push(cut)
    this.#cuts.push(cut)
  }

  /**
   * An event concurrent with some others ends every cut it does not follow (a cut it follows is one of its
   * parents or precedes one, so its index is at most theirs); what those cuts settled is open again.
   */
  #endCutsNotBefore(parents: readonly LogEntry[]): void {
    const newest = parents.reduce((max, p) => Math.max(max, p.index), -1)
    while ((this.#cuts.at(-1) as LogEntry).index > newest) this.#cuts.pop()
    const last = (this.#cuts.at(-1) as LogEntry).index
    this.#settledValid.length = last + 1
    while ((this.#settledEpochs.at(-1)?.index ?? -1) > last) this.#settledEpochs.pop()
  }
}

/** The causal closure of `roots` without `cut` and what precedes it, in insertion order. */
function closureAfter(roots: readonly LogEntry[], cut: LogEntry): LogEntry[] {
  const seen = new Set<LogEntry>()
  const stack = [...roots]
  while (stack.length > 0) {
    const entry = stack.pop() as LogEntry
    if (seen.has(entry) || entry.index <= cut.index) continue
    seen.add(entry)
    for (const p of entry.parents) stack.push(p)
  }
  return [...seen].sort((a, b) => a.index - b.index)
}
