/**
 * The convergence check the partition tests wait for (test/fixtures/convergence.ts), held to the history
 * that made "both sides adding the same newcomer" flaky: it must not call replicas converged while one of
 * them still lacks an event the others hold.
 */
import { describe, expect, it } from 'vitest'
import { divergence, viewOfReplica } from '../fixtures/convergence.js'
import { createScenario, deliver } from '../fixtures/membership.js'

describe('convergence check', () => {
  it('is not satisfied while a replica has only the winning one of two concurrent adds of the same peer', async () => {
    const s = await createScenario({ names: ['F', 'A', 'B', 'X'], members: ['F', 'A', 'B'] })
    const { F, A, B, X } = s.replicas
    // A and B, on the two sides of a partition, both add X
    const byA = await A.add(s.ids.X.memberId, 'X')
    const byB = await B.add(s.ids.X.memberId, 'X')
    deliver(A, F)
    deliver(B, F)
    // both adds count and both seal to exactly the members: the greater one is the epoch, nobody rekeys
    const winner = F.currentEpoch()?.id
    expect([byA.id, byB.id]).toContain(winner)
    const [winnerSide, loserSide] = winner === byA.id ? [A, B] : [B, A]
    // the healed partition, caught between syncs: the losing side has the winning add, and X has heard
    // only from the winning side
    deliver(winnerSide, loserSide)
    deliver(winnerSide, X)

    const views = () => [F, A, B, X].map((g) => viewOfReplica(s.nameOf(g.identity.memberId), g, s.nameOf))
    // what a check of members, epoch and rekey duty sees: agreement everywhere
    for (const v of views()) {
      expect(v, v.node).toMatchObject({ members: ['A', 'B', 'F', 'X'], epoch: winner, needsRekey: false })
    }
    // but two replicas still lack the losing add
    const lagging = s.nameOf(winnerSide.identity.memberId)
    expect(divergence(views(), ['F', 'A', 'B', 'X'])).toEqual([
      expect.stringMatching(new RegExp(`^${lagging} has heads `)),
      expect.stringMatching(/^X has heads /),
    ])

    deliver(F, winnerSide)
    deliver(F, X)
    expect(divergence(views(), ['F', 'A', 'B', 'X'])).toEqual([])
  })

  it('names each way a replica is behind', async () => {
    const s = await createScenario({ names: ['F', 'A', 'X'], members: ['F', 'A'] })
    const { F, A } = s.replicas
    await A.add(s.ids.X.memberId, 'X')
    const views = [F, A].map((g) => viewOfReplica(s.nameOf(g.identity.memberId), g, s.nameOf))
    const gaps = divergence(views, ['F', 'A', 'X'])
    expect(gaps).toEqual([
      'F resolves members A, F',
      expect.stringMatching(/^A is on epoch /),
      expect.stringMatching(/^A has heads /),
    ])
  })
})
