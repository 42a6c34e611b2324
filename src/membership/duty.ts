import { sha256 } from '../crypto/index.js'

const encoder = new TextEncoder()

/**
 * The place of `memberId` in a deterministic order of `candidates`: by `sha256(salt | id)`, lowest
 * first. Replicas that see the same candidates and salt agree on it, so one member acts first (a rekey
 * after concurrent changes, an admission by invite token) and the others only if it has not after their
 * turn; a new salt rotates the duty. -1 when `memberId` is not a candidate.
 */
export function dutyRank(candidates: Iterable<string>, salt: string, memberId: string): number {
  const score = (id: string): Buffer => Buffer.from(sha256(encoder.encode(`${salt}|${id}`)))
  const ranked = [...new Set(candidates)]
    .map((id) => ({ id, score: score(id) }))
    .sort((a, b) => Buffer.compare(a.score, b.score))
  return ranked.findIndex((r) => r.id === memberId)
}
