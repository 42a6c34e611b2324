import { hash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const SHA256_CODE = 0x12

/** SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', bytes, 'buffer'))
}

/** The CIDv1 (dag-cbor, sha2-256) that content-addresses already-encoded dag-cbor `bytes`. */
export function cidOf(bytes: Uint8Array): CID {
  return CID.createV1(dagCbor.code, Digest.create(SHA256_CODE, sha256(bytes)))
}

/** The bytes every {@link cidOf} CID starts with: version 1, dag-cbor, sha2-256, 32 bytes. */
const CID_PREFIX = Uint8Array.of(0x01, dagCbor.code, SHA256_CODE, 32)
/** RFC 4648 base32, lower case: the alphabet of a CIDv1's default string (multibase prefix `b`). */
const BASE32 = Buffer.from('abcdefghijklmnopqrstuvwxyz234567', 'latin1')
/** Characters of such a string: the prefix, then 5 bits a character. */
const CID_STRING_LENGTH = 1 + Math.ceil(((CID_PREFIX.length + 32) * 8) / 5)

/** Base32 state between bytes: the bits not written yet (at most 4), and how many there are. */
interface Base32State {
  buffer: number
  bits: number
}

/** Writes into `out` from `at` on the base32 characters that `n` bytes (the i-th is `next(i)`) complete; returns where it stopped. */
function base32Into(
  out: Buffer,
  at: number,
  state: Base32State,
  next: (i: number) => number,
  n: number,
): number {
  let { buffer, bits } = state
  for (let i = 0; i < n; i++) {
    // at most 4 bits are left over, so 12 bits hold the next byte too
    buffer = ((buffer << 8) | next(i)) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[at++] = BASE32[(buffer >> bits) & 31] as number
    }
  }
  state.buffer = buffer
  state.bits = bits
  return at
}

/**
 * The characters every such string starts with (`b`, then the prefix's), written once: the scratch
 * buffer {@link cidStringOf} writes the digest's characters after, and the prefix bits left over.
 */
const cidChars = Buffer.alloc(CID_STRING_LENGTH)
cidChars[0] = 0x62 // 'b'
const afterPrefix: Base32State = { buffer: 0, bits: 0 }
const DIGEST_AT = base32Into(cidChars, 1, afterPrefix, (i) => CID_PREFIX[i] as number, CID_PREFIX.length)

/**
 * `cidOf(bytes).toString()`, without building the CID: a message id is needed per message, and
 * multiformats' generic base32 took three times the SHA-256 itself. The digest comes from the one-shot
 * `crypto.hash` as a binary string (no Hash object, no Buffer), the characters go to a scratch buffer.
 */
export function cidStringOf(bytes: Uint8Array): string {
  const digest = hash('sha256', bytes, 'binary')
  const state = { buffer: afterPrefix.buffer, bits: afterPrefix.bits }
  const at = base32Into(cidChars, DIGEST_AT, state, (i) => digest.charCodeAt(i), digest.length)
  if (state.bits > 0) cidChars[at] = BASE32[(state.buffer << (5 - state.bits)) & 31] as number
  return cidChars.toString('latin1')
}
