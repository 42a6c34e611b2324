/**
 * How far a sender's timestamp may run ahead of this peer's clock, in ms, before the message is shown
 * with the time it arrived instead: clocks of honest members drift by seconds, not by minutes.
 */
export const MAX_SENDER_CLOCK_AHEAD_MS = 5 * 60_000

/**
 * The time to show for a message: the sender's timestamp, or the local time it arrived when the sender
 * claims a time more than {@link MAX_SENDER_CLOCK_AHEAD_MS} after that. The message is kept, not
 * rejected: a member whose clock is wrong is still a member, and would otherwise lose every message.
 *
 * @example
 * ```ts
 * shownTime(Date.UTC(250000, 0, 1), receivedAt) // → receivedAt
 * shownTime(receivedAt + 60_000, receivedAt) // → receivedAt + 60_000
 * ```
 */
export function shownTime(senderTs: number, receivedAt: number): number {
  return senderTs > receivedAt + MAX_SENDER_CLOCK_AHEAD_MS ? receivedAt : senderTs
}
