import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const SHA256_CODE = 0x12

/** SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest())
}

/** The CIDv1 (dag-cbor, sha2-256) that content-addresses already-encoded dag-cbor `bytes`. */
export function cidOf(bytes: Uint8Array): CID {
  return CID.createV1(dagCbor.code, Digest.create(SHA256_CODE, sha256(bytes)))
}

/** The bytes every {@link cidOf} CID starts with: version 1, dag-cbor, sha2-256, 32 bytes. */
const CID_PREFIX = Uint8Array.of(0x01, dagCbor.code, SHA256_CODE, 32)
/** RFC 4648 base32, lower case: the alphabet of a CIDv1's default string (multibase prefix `b`). */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
/** Characters of such a string: the prefix, then 5 bits a character. */
const CID_STRING_LENGTH = 1 + Math.ceil(((CID_PREFIX.length + 32) * 8) / 5)

/**
 * `cidOf(bytes).toString()`, without building the CID: a message id is needed per message, and
 * multiformats' generic base32 took three times the SHA-256 itself.
 */
export function cidStringOf(bytes: Uint8Array): string {
  const digest = createHash('sha256').update(bytes).digest()
  const codes = new Array<number>(CID_STRING_LENGTH)
  codes[0] = 0x62 // 'b'
  let at = 1
  let buffer = 0
  let bits = 0
  for (let i = 0; i < CID_PREFIX.length + digest.length; i++) {
    const byte = i < CID_PREFIX.length ? CID_PREFIX[i] : digest[i - CID_PREFIX.length]
    // at most 4 bits are left over, so 12 bits hold the next byte too
    buffer = ((buffer << 8) | (byte as number)) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      codes[at++] = BASE32.charCodeAt((buffer >> bits) & 31)
    }
  }
  if (bits > 0) codes[at] = BASE32.charCodeAt((buffer << (5 - bits)) & 31)
  return String.fromCharCode(...codes)
}
