/**
 * p2pchat: serverless, end-to-end encrypted group chat on libp2p.
 *
 * - `p2pchat/membership`: the pure group core (membership log, epochs, envelopes)
 * - `p2pchat/crypto`: every cryptographic operation
 * - this entry: the chat node and the relay node
 *
 * @packageDocumentation
 */
export * from './node/index.js'
export * from './relay/index.js'
