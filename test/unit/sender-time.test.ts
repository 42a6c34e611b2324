/**
 * The time shown for a message: its sender's, unless the sender claims a time too far ahead of when the
 * message arrived here.
 */
import { describe, expect, it } from 'vitest'
import { MAX_SENDER_CLOCK_AHEAD_MS, shownTime } from '../../src/node/sender-time.js'

describe('shownTime', () => {
  const receivedAt = 1_700_000_000_000

  it('keeps a sender time in the past or up to 5 minutes ahead', () => {
    expect(MAX_SENDER_CLOCK_AHEAD_MS).toBe(5 * 60_000)
    for (const ts of [0, receivedAt - 86_400_000, receivedAt, receivedAt + MAX_SENDER_CLOCK_AHEAD_MS]) {
      expect(shownTime(ts, receivedAt)).toBe(ts)
    }
  })

  it('shows a sender time more than 5 minutes ahead as the arrival time', () => {
    for (const ts of [receivedAt + MAX_SENDER_CLOCK_AHEAD_MS + 1, Date.UTC(250000, 0, 1)]) {
      expect(shownTime(ts, receivedAt)).toBe(receivedAt)
    }
  })
})
