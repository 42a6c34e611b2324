/**
 * Defaults of a chat node that the CLI shows in its help. Imports nothing, so `p2pchat --help` shows
 * them without loading libp2p.
 *
 * @packageDocumentation
 */

/** Default listen address of a chat node: every IPv4 interface, a random TCP port. */
export const DEFAULT_LISTEN: readonly string[] = Object.freeze(['/ip4/0.0.0.0/tcp/0'])
