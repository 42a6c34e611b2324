/**
 * The join inbox a chat node and a relay share, and the announcer of a peer that is no member yet, on an
 * injected clock and a fake topic: no sockets.
 */
import { defaultLogger } from '@libp2p/logger'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import type { Group } from '../../src/membership/index.js'
import {
  JOIN_REPEAT_MIN_MS,
  JOIN_REQUESTERS_PER_MINUTE,
  JoinAnnouncer,
  JoinInbox,
  MAX_JOIN_REQUESTERS,
} from '../../src/node/join-requests.js'
import type { GossipFrame } from '../../src/node/wire.js'
import { decodeJoinRequest } from '../../src/node/wire.js'

const GROUP = 'bafyreia3eacpdffdwys3le3z6xjlgwb6rfhdltzouymkabry4ptljk5n3m'

/** Date.now and timers are faked, so RateLimiter's windows move with the injected clock. */
beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 })
})
afterEach(() => {
  vi.useRealTimers()
})
const clock = { now: () => Date.now() }

describe('JoinInbox', () => {
  it('shows a requester once, forwards its repeats, and drops repeats closer than 2 s', () => {
    const inbox = new JoinInbox({ clock }, { renewAfterMs: 5 * 60_000, nameChangeIsNew: true })
    expect(inbox.receive({ peerId: 'p1', name: 'bob' })).toBe('new')
    vi.advanceTimersByTime(JOIN_REPEAT_MIN_MS - 1)
    expect(inbox.receive({ peerId: 'p1', name: 'bob' })).toBe('too-soon')
    vi.advanceTimersByTime(1)
    expect(inbox.receive({ peerId: 'p1', name: 'bob' })).toBe('repeat')
    // another name is a new request on a chat node: it is shown again
    vi.advanceTimersByTime(JOIN_REPEAT_MIN_MS)
    expect(inbox.receive({ peerId: 'p1', name: 'robert' })).toBe('new')
    // and after 5 minutes of silence a requester is shown again
    vi.advanceTimersByTime(5 * 60_000 + 1)
    expect(inbox.receive({ peerId: 'p1', name: 'robert' })).toBe('new')
  })

  it('a requester that was added and asks again later (a removed member rejoining) is new', () => {
    const inbox = new JoinInbox({ clock }, { renewAfterMs: 5 * 60_000, nameChangeIsNew: true })
    expect(inbox.receive({ peerId: 'p1', name: 'bob' })).toBe('new')
    inbox.answered('p1')
    vi.advanceTimersByTime(60_000)
    expect(inbox.receive({ peerId: 'p1', name: 'bob' })).toBe('new')
  })

  it('on a relay, a known requester is never new again, whatever the name or the time', () => {
    const inbox = new JoinInbox({ clock })
    expect(inbox.receive({ peerId: 'p1', name: 'bob' })).toBe('new')
    vi.advanceTimersByTime(60 * 60_000)
    expect(inbox.receive({ peerId: 'p1', name: 'mallory' })).toBe('repeat')
  })

  it('takes 30 new requesters a minute, then none until the window ends; repeats still pass', () => {
    const inbox = new JoinInbox({ clock })
    for (let i = 0; i < JOIN_REQUESTERS_PER_MINUTE; i++) {
      expect(inbox.receive({ peerId: `p${i}`, name: 'x' })).toBe('new')
    }
    expect(inbox.receive({ peerId: 'late', name: 'x' })).toBe('rate-limited')
    vi.advanceTimersByTime(JOIN_REPEAT_MIN_MS)
    expect(inbox.receive({ peerId: 'p0', name: 'x' })).toBe('repeat')
    vi.advanceTimersByTime(60_000)
    expect(inbox.receive({ peerId: 'late', name: 'x' })).toBe('new')
  })

  it('remembers the 256 most recent requesters, forgetting the least recent first', () => {
    const inbox = new JoinInbox({ clock })
    for (let i = 0; i <= MAX_JOIN_REQUESTERS; i++) {
      if (i % JOIN_REQUESTERS_PER_MINUTE === 0) vi.advanceTimersByTime(60_000)
      inbox.receive({ peerId: `p${i}`, name: 'x' })
    }
    const remembered = [...inbox.requesters()].map(([peerId]) => peerId)
    expect(remembered).toHaveLength(MAX_JOIN_REQUESTERS)
    expect(remembered[0]).toBe('p1')
    expect(remembered.at(-1)).toBe(`p${MAX_JOIN_REQUESTERS}`)
  })
})

describe('JoinAnnouncer', () => {
  async function setup(recipients: () => number, onUnanswered?: (waitedMs: number) => void) {
    const identity = await Identity.generate()
    let member = false
    const subscribers = ['a']
    const published: GossipFrame[] = []
    const topic = {
      group: { id: GROUP, isMember: () => member } as unknown as Group,
      subscribers: () => [...subscribers],
      publish: async (frame: GossipFrame) => {
        published.push(frame)
        return recipients()
      },
    }
    const announcer = new JoinAnnouncer(
      { topic, identity, clock, logger: defaultLogger() },
      {
        name: 'bob',
        intervalMs: 10_000,
        retryMs: 250,
        followUpMs: 2500,
        unansweredMs: 60_000,
        ...(onUnanswered === undefined ? {} : { onUnanswered }),
      },
    )
    return {
      announcer,
      published,
      subscribers,
      identity,
      becomeMember: () => {
        member = true
      },
    }
  }

  it('announces a signed request to new subscribers at once, once more after 2.5 s, then every 10 s on its own', async () => {
    const { announcer, published, subscribers, identity } = await setup(() => 1)
    await announcer.announce()
    expect(published).toHaveLength(1)
    expect(decodeJoinRequest((published[0] as GossipFrame).data)).toMatchObject({
      group: GROUP,
      peerId: identity.memberId,
      name: 'bob',
    })
    // the follow-up for the new subscriber
    await vi.advanceTimersByTimeAsync(2500)
    expect(published).toHaveLength(2)
    // nothing new: quiet until the interval has passed
    await announcer.announce()
    expect(published).toHaveLength(2)
    // a subscriber it has not told: at once
    subscribers.push('b')
    await announcer.announce()
    expect(published).toHaveLength(3)
    await vi.advanceTimersByTimeAsync(2500)
    expect(published).toHaveLength(4)
    // every 10 s on its own, not only when something calls it (a sync round may be 30 s away)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(published).toHaveLength(5)
    await announcer.announce()
    expect(published).toHaveLength(5)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(published).toHaveLength(6)
    announcer.stop()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(published).toHaveLength(6)
  })

  it('retries shortly when the request reached nobody, and stops once a member or stopped', async () => {
    let reached = 0
    const { announcer, published, becomeMember } = await setup(() => reached)
    await announcer.announce()
    expect(published).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(250)
    expect(published).toHaveLength(2)
    reached = 1
    await vi.advanceTimersByTimeAsync(250)
    expect(published).toHaveLength(3)
    becomeMember()
    await vi.advanceTimersByTimeAsync(60_000)
    await announcer.announce()
    expect(published).toHaveLength(3)
    announcer.stop()
  })

  it('tells once when nobody added this peer 60 s after its request first reached the group', async () => {
    let reached = 0
    const calls: number[] = []
    const { announcer } = await setup(
      () => reached,
      (waited) => calls.push(waited),
    )
    // reaching nobody starts no clock: there is nobody to answer yet
    await announcer.announce()
    await vi.advanceTimersByTimeAsync(120_000)
    expect(calls).toEqual([])
    reached = 1
    await vi.advanceTimersByTimeAsync(250)
    await vi.advanceTimersByTimeAsync(59_000)
    expect(calls).toEqual([])
    await vi.advanceTimersByTimeAsync(1_000)
    expect(calls).toEqual([60_000])
    // once: the announcements go on, the line is not repeated
    await vi.advanceTimersByTimeAsync(600_000)
    expect(calls).toEqual([60_000])
    announcer.stop()
  })

  it('says nothing when added, or stopped, before the time is up', async () => {
    const calls: number[] = []
    const added = await setup(
      () => 1,
      (waited) => calls.push(waited),
    )
    await added.announcer.announce()
    await vi.advanceTimersByTimeAsync(30_000)
    added.becomeMember()
    await vi.advanceTimersByTimeAsync(60_000)
    const stopped = await setup(
      () => 1,
      (waited) => calls.push(waited),
    )
    await stopped.announcer.announce()
    stopped.announcer.stop()
    await vi.advanceTimersByTimeAsync(120_000)
    expect(calls).toEqual([])
    added.announcer.stop()
  })
})
