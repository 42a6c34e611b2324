/**
 * What a member does with a join request that presents an invite, on a real group core and a manual
 * clock, with a fake topic: no sockets. The attacks: a token proved for someone else, an expired one,
 * one whose inviter was removed, one used already; and the rank that keeps two members from both adding.
 */
import { randomBytes } from 'node:crypto'
import { defaultLogger } from '@libp2p/logger'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import {
  decodeInviteToken,
  type Group,
  type SignedEvent,
  signInviteToken,
  useInviteToken,
} from '../../src/membership/index.js'
import type { InviteRefusedNotice } from '../../src/node/chat-events.js'
import { DEFAULT_ADMIT_DELAY_MS, InviteAdmission } from '../../src/node/invite-admission.js'
import type { JoinRequest } from '../../src/node/wire.js'
import { createScenario, deliver } from '../fixtures/membership.js'

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 })
})
afterEach(() => {
  vi.useRealTimers()
})

async function setup() {
  const s = await createScenario({
    names: ['alice', 'bob', 'carol', 'dan', 'erin'],
    members: ['alice', 'bob', 'carol'],
  })
  const oneTime = await Identity.generate()
  const token = decodeInviteToken(
    signInviteToken(s.ids.alice, {
      group: s.groupId,
      key: oneTime.memberIdBytes,
      expiresAt: Date.now() + 60_000,
      nonce: new Uint8Array(randomBytes(16)),
    }),
  )
  const request = (
    who: Identity,
    invite = useInviteToken(oneTime, token, who.memberIdBytes),
  ): JoinRequest => ({
    group: s.groupId,
    peerId: who.memberId,
    name: 'joiner',
    ts: Date.now(),
    invite,
  })
  /** An admission desk at `member`'s replica, with `online` members subscribed to the topic. */
  const desk = (member: Group, online: Identity[]) => {
    const refused: InviteRefusedNotice['reason'][] = []
    const committed: SignedEvent[] = []
    const admission = new InviteAdmission({
      group: member,
      clock: { now: () => Date.now() },
      topic: { subscribers: () => online.map((i) => i.memberId) },
      events: {
        safeDispatchEvent: ((_: string, init: { detail: InviteRefusedNotice }) => {
          refused.push(init.detail.reason)
          return true
        }) as never,
      },
      log: defaultLogger().forComponent('test'),
      stopping: () => false,
      commit: async (event) => {
        committed.push(event)
      },
    })
    return { admission, refused, committed }
  }
  return { ...s, token, request, desk }
}

describe('InviteAdmission', () => {
  it('refuses a token proved for another identity (a replay of a token seen on the wire)', async () => {
    const { replicas, ids, request, desk } = await setup()
    const bob = desk(replicas.bob, [])
    // erin presents the use dan's join request carried, under her own identity
    expect(bob.admission.offer(request(ids.erin, request(ids.dan).invite))).toBe(false)
    expect(bob.refused).toEqual(['forged'])
    await vi.runAllTimersAsync()
    expect(bob.committed).toEqual([])
  })

  it('refuses an expired token, and a token whose inviter was removed', async () => {
    const { replicas, ids, request, desk } = await setup()
    const bob = desk(replicas.bob, [])
    vi.advanceTimersByTime(60_000)
    expect(bob.admission.offer(request(ids.dan))).toBe(false)
    expect(bob.refused).toEqual(['expired'])

    const fresh = await setup()
    await fresh.replicas.bob.remove(fresh.ids.alice.memberId)
    const carol = fresh.desk(fresh.replicas.bob, [])
    expect(carol.admission.offer(fresh.request(fresh.ids.dan))).toBe(false)
    expect(carol.refused).toEqual(['void'])
  })

  it('admits once: the member ranked first at once, the next only if still needed; a used token is refused', async () => {
    const { replicas, ids, request, desk } = await setup()
    const bob = desk(replicas.bob, [ids.carol])
    const carol = desk(replicas.carol, [ids.bob])
    expect(bob.admission.offer(request(ids.dan))).toBe(true)
    expect(carol.admission.offer(request(ids.dan))).toBe(true)
    await vi.advanceTimersByTimeAsync(0)
    const [first, second] = bob.committed.length === 1 ? [bob, carol] : [carol, bob]
    expect(first.committed).toHaveLength(1)
    expect(second.committed).toHaveLength(0)
    // the first one's add reaches the second before its turn: it does not add again
    deliver(first === bob ? replicas.bob : replicas.carol, second === bob ? replicas.bob : replicas.carol)
    await vi.advanceTimersByTimeAsync(DEFAULT_ADMIT_DELAY_MS)
    expect(second.committed).toHaveLength(0)
    // erin with the same token: used
    expect(second.admission.offer(request(ids.erin))).toBe(false)
    expect(second.refused).toEqual(['used'])
  })
})
