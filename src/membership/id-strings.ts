import { LRUCache } from 'lru-cache'
import { base58btc } from 'multiformats/bases/base58'
import type { CID } from 'multiformats/cid'
import { bytesKey } from '../crypto/index.js'

/**
 * Strings of the member ids and CIDs seen last. Every event names its author and parents, every envelope
 * its group, epoch and sender, and a group has few of each, so each is encoded (base58, base32) once
 * rather than per event or message: base58 alone was 15% of a restart.
 */
const idStrings = new LRUCache<string, string>({ max: 4096 })

/** `encode()` of `bytes`, remembered by the bytes (CIDs and member ids differ in their first byte). */
function remembered(bytes: Uint8Array, encode: () => string): string {
  const key = bytesKey(bytes)
  let id = idStrings.get(key)
  if (id === undefined) {
    id = encode()
    idStrings.set(key, id)
  }
  return id
}

/** The peer id string of Ed25519 member id bytes in their canonical spelling: their base58btc. */
export function ed25519MemberIdString(bytes: Uint8Array): string {
  return remembered(bytes, () => base58btc.baseEncode(bytes))
}

/** `cid.toString()`. */
export function cidString(cid: CID): string {
  return remembered(cid.bytes, () => cid.toString())
}
