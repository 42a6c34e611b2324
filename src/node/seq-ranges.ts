/**
 * Ranges of sequence numbers: how a replica says which of a sender's messages it has, compactly, so a
 * sync partner sends only the others.
 *
 * @packageDocumentation
 */

/** Inclusive ranges `[lo, hi]` of sequence numbers, sorted and disjoint. */
export type SeqRanges = Array<[number, number]>

/** Sorted, disjoint ranges covering the same seqs, so lookups can bisect. */
export function mergeRanges(ranges: ReadonlyArray<[number, number]>): SeqRanges {
  const sorted = ranges.map(([lo, hi]): [number, number] => [lo, hi]).sort((a, b) => a[0] - b[0])
  const out: SeqRanges = []
  for (const range of sorted) {
    const last = out.at(-1)
    if (last !== undefined && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1])
    else out.push(range)
  }
  return out
}

/** Whether `seq` lies in one of `ranges` (sorted by start and disjoint, as `ChatStore.seqRanges` makes them). */
export function inRanges(ranges: SeqRanges | undefined, seq: number): boolean {
  if (ranges === undefined) return false
  let lo = 0
  let hi = ranges.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const [start, end] = ranges[mid] as [number, number]
    if (seq < start) hi = mid - 1
    else if (seq > end) lo = mid + 1
    else return true
  }
  return false
}

/**
 * The watermark `ranges` give: the seq up to which every message from 0 is there, -1 when seq 0 is not
 * (`ranges` sorted by start, as {@link mergeRanges} and `ChatStore.seqRanges` make them).
 */
export function watermarkOf(ranges: SeqRanges): number {
  const first = ranges[0]
  return first !== undefined && first[0] === 0 ? first[1] : -1
}

/**
 * The runs of consecutive seqs in `seqs` (pairs of sender and seq, sorted by sender, then seq), as
 * `[sender, first, last]`, in order.
 */
export function* runsOf(
  seqs: Iterable<[string, number]>,
): Generator<[string, number, number], void, undefined> {
  let run: [string, number, number] | undefined
  for (const [sender, seq] of seqs) {
    if (run !== undefined && run[0] === sender && seq === run[2] + 1) run[2] = seq
    else {
      if (run !== undefined) yield run
      run = [sender, seq, seq]
    }
  }
  if (run !== undefined) yield run
}
