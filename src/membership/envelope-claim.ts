/**
 * @packageDocumentation
 *
 * What an envelope claims before anything of it is checked: who sent it. For policies that sort input
 * before paying for a signature check (a relay's rate limit for non-members), never for trust: a claim
 * of a member's id that is false fails the signature check after.
 */
import { base58btc } from 'multiformats/bases/base58'
import { CborScanner, keyBytes, sameBytes } from './cbor-scan.js'

const SENDER_KEY = keyBytes('sender')

/** The member id an envelope names as its sender, unverified; `undefined` if its top level is no map. */
export function claimedSender(bytes: Uint8Array): string | undefined {
  try {
    const scan = new CborScanner(bytes, 'envelope')
    const entries = scan.readMapHeader()
    for (let i = 0; i < entries; i++) {
      const key = scan.readTextBytes()
      // a peer id string is the base58btc of its multihash bytes: no peer id parsing needed
      if (sameBytes(key, SENDER_KEY)) return base58btc.baseEncode(scan.readBytes())
      scan.skip()
    }
  } catch {
    // not even the shape of an envelope: it claims nothing
  }
  return undefined
}
