/**
 * @packageDocumentation
 *
 * The relay's default limits. Imports nothing, so the CLI can show them in its help without loading
 * the relay.
 */

/** Addresses a relay listens on when none are given: a fixed port peers can be told. */
export const DEFAULT_RELAY_LISTEN: readonly string[] = Object.freeze(['/ip4/0.0.0.0/tcp/4001'])
/** Default total storage: 1 GiB. */
export const DEFAULT_MAX_STORAGE = 1024 ** 3
/** Default memory budget for group data: 256 MiB. */
export const DEFAULT_MAX_MEMORY = 256 * 1024 ** 2
/** Default group slots. */
export const DEFAULT_MAX_GROUPS = 1000
