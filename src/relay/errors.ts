import { namedError } from '../named-error.js'

/** A group or the whole relay is at its storage cap; the envelope is not stored. */
export class QuotaExceededError extends namedError('QuotaExceededError', 'storage cap reached') {}

/** A peer sent more envelopes than the per-peer rate limit allows. */
export class RateLimitedError extends namedError('RateLimitedError', 'rate limit exceeded') {}

/** A relay option is unusable: not a positive integer, or a memory budget too small for its group slots. */
export class InvalidRelayInitError extends namedError('InvalidRelayInitError', 'invalid relay options') {}
