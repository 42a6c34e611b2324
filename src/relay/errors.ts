/** A group or the whole relay is at its storage cap; the envelope is not stored. */
export class QuotaExceededError extends Error {
  static override readonly name = 'QuotaExceededError'
  override readonly name = 'QuotaExceededError'
  constructor(message = 'storage cap reached') {
    super(message)
  }
}

/** A peer sent more envelopes than the per-peer rate limit allows. */
export class RateLimitedError extends Error {
  static override readonly name = 'RateLimitedError'
  override readonly name = 'RateLimitedError'
  constructor(message = 'rate limit exceeded') {
    super(message)
  }
}

/** A relay option is unusable: not a positive integer, or a memory budget too small for its group slots. */
export class InvalidRelayInitError extends Error {
  static override readonly name = 'InvalidRelayInitError'
  override readonly name = 'InvalidRelayInitError'
  constructor(message = 'invalid relay options') {
    super(message)
  }
}
