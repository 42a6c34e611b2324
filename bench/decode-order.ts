/**
 * Rejecting junk: a maximum-size event (1000 sealed keys, ~135 KB) whose signature is bad. The floor is
 * what no order of checks can avoid, one Ed25519 verify of the same payload bytes. Before issue 8 every
 * member id was parsed before the signature was checked, which is what decoding a valid event of the same
 * size still costs (the second row).
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { cidOf, Identity } from '../src/crypto/index.js'
import { compareBytes, decodeEvent, EVENT_VERSION, encodePayload } from '../src/membership/event.js'
import { MAX_MEMBERS } from '../src/membership/index.js'
import { type Figure, opsPerSecond } from './measure.js'

/** Options of {@link junkFigures}. */
export interface JunkInit {
  /** Shortest measuring window per rate, in ms. */
  minMs: number
}

/** The cost of rejecting a junk event, and of the full decode it used to cost, against a bare verify. */
export async function junkFigures(init: JunkInit): Promise<Figure[]> {
  const [author, forger] = [await Identity.generate(), await Identity.generate()]
  const keys = Array.from({ length: MAX_MEMBERS }, () => ({
    to: Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20, ...randomBytes(32)),
    enc: new Uint8Array(randomBytes(32)),
    ct: new Uint8Array(randomBytes(48)),
  })).sort((a, b) => compareBytes(a.to, b.to))
  const payload = encodePayload({
    v: EVENT_VERSION,
    type: 'rekey',
    group: cidOf(randomBytes(16)),
    author: author.memberIdBytes,
    parents: [cidOf(randomBytes(16))],
    keyCommitment: new Uint8Array(32),
    keys,
  })
  const sig = forger.sign('event:rekey', payload)
  const junk = dagCbor.encode({ payload, sig })
  const valid = dagCbor.encode({ payload, sig: author.sign('event:rekey', payload) })
  const reject = opsPerSecond(() => {
    try {
      decodeEvent(junk)
    } catch {
      // InvalidSignatureError: the point
    }
  }, init.minMs)
  const full = opsPerSecond(() => decodeEvent(valid), init.minMs)
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), author.memberIdBytes.subarray(6)]),
    format: 'der',
    type: 'spki',
  })
  const floor = opsPerSecond(() => {
    verify(null, payload, key, sig)
  }, init.minMs)
  const us = (opsPerS: number): number => 1e6 / opsPerS
  const floorName = 'a bare node:crypto Ed25519 verify of the same bytes'
  return [
    {
      name: `reject a junk event (${Math.round(junk.length / 1000)} KB, bad signature)`,
      unit: 'µs',
      value: us(reject),
      floorName,
      floor: us(floor),
    },
    {
      name: 'full decode of that event (what junk cost before issue 8)',
      unit: 'µs',
      value: us(full),
      floorName,
      floor: us(floor),
    },
  ]
}
