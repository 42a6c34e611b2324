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
