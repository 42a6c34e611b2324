/**
 * The optional bootstrap/relay node (`p2pchat relay`): circuit relay v2 for peers that cannot reach
 * each other, and store-and-forward of ciphertext for members who were offline. It reads nothing.
 *
 * @packageDocumentation
 */
export type { AdmissionLimits, Standing } from './admission.js'
export {
  admissionLimits,
  DEFAULT_MAX_GROUPS,
  DEFAULT_MAX_MEMORY,
} from './admission.js'
export { InvalidRelayInitError, QuotaExceededError, RateLimitedError } from './errors.js'
export type { RelayNodeEvents, RelayNodeInit, RelayRejection, RelayStats } from './relay-node.js'
export { createRelayNode, RelayNode } from './relay-node.js'
