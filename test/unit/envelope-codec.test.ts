/**
 * Issue 11: the envelope is read in place (envelope-read.ts) instead of decoded, checked and re-encoded.
 * The fast path must accept exactly what the full decode accepted, with the same fields, and refuse the
 * rest with the same error: these tests run both on valid envelopes and on mutations of them (bit flips,
 * truncations, trailing bytes, and re-encodings an attacker signs: longer heads, other key orders, other
 * types and sizes), with the old codec kept as the reference (test/fixtures/envelope-reference.ts).
 *
 * ENVELOPE_RUNS sets the number of generated cases per property (default 300); a failure prints
 * fast-check's seed and the shrunk counterexample.
 */
import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { beforeAll, describe, expect, it } from 'vitest'
import { aeadDecrypt, aeadEncrypt, cidOf, cidStringOf, Identity } from '../../src/crypto/index.js'
import { decodeEnvelope, type Envelope, openEnvelope, sealEnvelope } from '../../src/membership/envelope.js'
import { type Entry, entriesOf, type Item, writeEnvelope, writeItem } from '../fixtures/envelope-mutations.js'
import { referenceDecodeEnvelope, referenceOpenEnvelope } from '../fixtures/envelope-reference.js'

const RUNS = Number(process.env.ENVELOPE_RUNS ?? 300)

let ids: [Identity, Identity]
beforeAll(async () => {
  ids = [await Identity.generate(), await Identity.generate()]
})

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** What a decoder made of `bytes`: every field it returned, or the name of what it threw. */
function outcome(decode: (bytes: Uint8Array) => Envelope, bytes: Uint8Array): Record<string, unknown> {
  try {
    const e = decode(bytes)
    return {
      id: e.id,
      sender: e.sender,
      groupId: e.groupId,
      epochId: e.epochId,
      header: {
        v: e.header.v,
        group: e.header.group.toString(),
        epoch: e.header.epoch.toString(),
        sender: hex(e.header.sender),
        seq: e.header.seq,
        nonce: hex(e.header.nonce),
      },
      ct: hex(e.ct),
      aad: hex(e.aad),
      bytes: hex(e.bytes),
    }
  } catch (err) {
    return { error: (err as Error).name }
  }
}

/** Both decoders agree on `bytes`; returns the outcome. */
function agree(bytes: Uint8Array, label = ''): Record<string, unknown> {
  const fast = outcome(decodeEnvelope, bytes)
  expect(fast, `${label} ${hex(bytes)}`).toEqual(outcome(referenceDecodeEnvelope, bytes))
  return fast
}

const cidArb: fc.Arbitrary<CID> = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((b) => cidOf(b)),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((d) => CID.createV1(0x55, Digest.create(0x12, d))),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((d) => CID.createV0(Digest.create(0x12, d))),
  fc.uint8Array({ maxLength: 30 }).map((b) => CID.createV1(0x71, Digest.create(0x00, b))),
)

const SEQ_EDGES = [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]
const tsArb = fc.oneof(
  fc.maxSafeInteger(),
  fc.constantFrom(0, -1, -24, -25, -(2 ** 32), Number.MIN_SAFE_INTEGER),
)

interface EnvelopeInit {
  sender: 0 | 1
  seq: number
  text: string
  ts: number
  epoch: CID
  group: CID
  nonce: Uint8Array
  key: Uint8Array
}

const envelopeArb: fc.Arbitrary<EnvelopeInit> = fc.record({
  sender: fc.constantFrom(0 as const, 1 as const),
  seq: fc.oneof(fc.constantFrom(...SEQ_EDGES), fc.maxSafeNat()),
  text: fc.string({ unit: 'grapheme', maxLength: 40 }),
  ts: tsArb,
  epoch: cidArb,
  group: cidArb,
  nonce: fc.uint8Array({ minLength: 12, maxLength: 12 }),
  key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
})

function seal(init: EnvelopeInit): Uint8Array {
  const { sender, text, ts, ...rest } = init
  return sealEnvelope({ ...rest, identity: ids[sender], body: { text, ts } })
}

/** An envelope by `ids[sender]` under fresh random group and epoch CIDs, as the fixed cases use. */
function sample(sender: 0 | 1, seq: number, text = 'x'): Uint8Array {
  const [epoch, group] = [cidOf(randomBytes(8)), cidOf(randomBytes(8))]
  return seal({ sender, seq, text, ts: 1, epoch, group, nonce: new Uint8Array(12), key: new Uint8Array(32) })
}

/** A CBOR item of any kind, with sizes near the ones the envelope's fields must have. */
const itemArb: fc.Arbitrary<Item> = fc.oneof(
  fc.oneof(fc.constantFrom(0, 1, 2, 24, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.maxSafeNat()).map((n) => ({
    t: 'uint' as const,
    n,
  })),
  fc.constantFrom(2n ** 53n, 2n ** 64n - 1n).map((n) => ({ t: 'uint' as const, n })),
  fc.constantFrom(0, 5, 2 ** 40).map((n) => ({ t: 'nint' as const, n })),
  fc
    .constantFrom(0, 1, 11, 12, 13, 16, 37, 38, 39, 63, 64, 65)
    .chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))
    .map((b) => ({ t: 'bytes' as const, b })),
  fc.string({ maxLength: 8 }).map((s) => ({ t: 'text' as const, s })),
  cidArb.map((c) => ({ t: 'tag42' as const, b: Uint8Array.of(0, ...c.bytes) })),
  fc.constantFrom(1, 1.5, 0).map((x) => ({ t: 'float' as const, x })),
  fc
    .constantFrom('null' as const, 'true' as const, 'false' as const)
    .map((v) => ({ t: 'simple' as const, v })),
  fc.constant<Item>({ t: 'array', items: [] }),
  fc.constant<Item>({ t: 'map', entries: [] }),
)

/** A re-encoding of the envelope an attacker could sign. */
type Change =
  | { kind: 'widen'; head: number }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'replace'; at: number; value: Item }
  | { kind: 'drop'; at: number }
  | { kind: 'add'; at: number; key: string; value: Item }
  | { kind: 'rename'; at: number; key: string }

const keyArb = fc.constantFrom(
  'v',
  'ct',
  'seq',
  'sig',
  'epoch',
  'group',
  'nonce',
  'sender',
  'x',
  'V',
  'sigs',
  '',
)
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  fc.nat(40).map((head) => ({ kind: 'widen' as const, head })),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(7), b: fc.nat(7) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(7), value: itemArb }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat(7) }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(8), key: keyArb, value: itemArb }),
  fc.record({ kind: fc.constant('rename' as const), at: fc.nat(7), key: keyArb }),
)

/** The envelope `bytes` with `changes` made to its entries, written and signed by its sender. */
function reencode(bytes: Uint8Array, signer: Identity, changes: Change[]): Uint8Array {
  const entries: Entry[] = entriesOf(bytes)
  let widen: number | undefined
  for (const c of changes) {
    if (c.kind === 'widen') widen = c.head
    else if (c.kind === 'add') entries.splice(c.at, 0, [c.key, c.value])
    else if (c.kind === 'drop') entries.splice(c.at, 1)
    else if (c.kind === 'swap') {
      const [a, b] = [entries[c.a], entries[c.b]]
      if (a === undefined || b === undefined) continue
      entries[c.a] = b
      entries[c.b] = a
    } else {
      const entry = entries[c.at]
      if (entry === undefined) continue
      entries[c.at] = c.kind === 'replace' ? [entry[0], c.value] : [c.key, entry[1]]
    }
  }
  return writeEnvelope(entries, signer, widen === undefined ? {} : { widen })
}

function mutationArb(bytes: Uint8Array, sender: 0 | 1): fc.Arbitrary<{ label: string; bytes: Uint8Array }> {
  return fc.oneof(
    fc
      .record({ at: fc.nat(bytes.length - 1), mask: fc.integer({ min: 1, max: 255 }) })
      .map(({ at, mask }) => {
        const out = new Uint8Array(bytes)
        out[at] = (out[at] as number) ^ mask
        return { label: `flip ${at} ^ ${mask}`, bytes: out }
      }),
    fc.nat(bytes.length - 1).map((n) => ({ label: `truncate to ${n}`, bytes: bytes.slice(0, n) })),
    fc
      .uint8Array({ minLength: 1, maxLength: 8 })
      .map((extra) => ({ label: 'trailing bytes', bytes: Uint8Array.of(...bytes, ...extra) })),
    fc.array(changeArb, { minLength: 1, maxLength: 3 }).map((changes) => ({
      label: JSON.stringify(changes, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      bytes: reencode(bytes, ids[sender], changes),
    })),
  )
}

describe('envelope codec: the in-place reading accepts exactly what the full decode accepted', () => {
  it('valid envelopes: the same fields, id and associated data; the body opens to the same text', () => {
    fc.assert(
      fc.property(envelopeArb, (init) => {
        const bytes = seal(init)
        const result = agree(bytes)
        expect(result).toMatchObject({ header: { seq: init.seq, nonce: hex(init.nonce) } })
        expect(result.id).toBe(cidOf(bytes).toString())
        const envelope = decodeEnvelope(bytes)
        expect(openEnvelope(envelope, init.key)).toEqual(referenceOpenEnvelope(envelope, init.key))
        expect(openEnvelope(envelope, init.key)).toEqual({ text: init.text, ts: init.ts })
        // the body written in place is the codec's encoding of it
        const plaintext = aeadDecrypt(init.key, envelope.header.nonce, envelope.ct, envelope.aad)
        expect(hex(plaintext)).toBe(hex(dagCbor.encode({ text: init.text, ts: init.ts })))
      }),
      { numRuns: RUNS },
    )
  })

  it('mutated envelopes: both accept, with the same fields, or both refuse with the same error', () => {
    fc.assert(
      fc.property(
        envelopeArb.chain((init) => {
          const bytes = seal(init)
          return fc.tuple(fc.constant(init), mutationArb(bytes, init.sender))
        }),
        ([_init, mutated]) => {
          agree(mutated.bytes, mutated.label)
        },
      ),
      { numRuns: RUNS * 3 },
    )
  })

  it('random bytes and random maps of the envelope keys: the same error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc
            .array(fc.tuple(keyArb, itemArb), { maxLength: 9 })
            .map((entries) => writeEnvelope(entries as Entry[], ids[0])),
        ),
        (bytes) => {
          agree(bytes)
        },
      ),
      { numRuns: RUNS },
    )
  })
})

/**
 * One re-encoding per check the in-place reader makes, each signed by the sender so that only that
 * check can refuse it. Each is refused as the full decode refused it (MalformedError), so removing any
 * one check from envelope-read.ts fails here (see the mutation check in the commit message).
 */
describe('envelope codec: each canonical-form check refuses what the full decode refused', () => {
  const cid = (bytes: Uint8Array): Item => ({ t: 'tag42', b: bytes })
  const at = (key: string): number =>
    ['v', 'ct', 'seq', 'sig', 'epoch', 'group', 'nonce', 'sender'].indexOf(key)
  const validCid = (): Uint8Array => Uint8Array.of(0, ...cidOf(randomBytes(8)).bytes)

  const cases: Array<[string, (entries: Entry[]) => Entry[] | { entries: Entry[]; widen: number }]> = [
    ['map head in two bytes', (e) => ({ entries: e, widen: 0 })],
    ['key "v" in a longer head', (e) => ({ entries: e, widen: 1 })],
    ['version 2', (e) => set(e, 'v', { t: 'uint', n: 2 })],
    ['version as a float', (e) => set(e, 'v', { t: 'float', x: 1 })],
    ['version in a longer head', (e) => ({ entries: e, widen: 2 })],
    ['ct key in a longer head', (e) => ({ entries: e, widen: 3 })],
    ['ct head one size longer', (e) => ({ entries: e, widen: 4 })],
    ['ct as text', (e) => set(e, 'ct', { t: 'text', s: 'hello' })],
    ['ct of indefinite length', (e) => set(e, 'ct', { t: 'raw', b: Uint8Array.of(0x5f, 0x41, 1, 0xff) })],
    ['seq key in a longer head', (e) => ({ entries: e, widen: 5 })],
    ['seq head one size longer', (e) => ({ entries: e, widen: 6 })],
    ['seq of 2^53', (e) => set(e, 'seq', { t: 'uint', n: 2n ** 53n })],
    ['seq of 2^64 - 1', (e) => set(e, 'seq', { t: 'uint', n: 2n ** 64n - 1n })],
    ['seq negative', (e) => set(e, 'seq', { t: 'nint', n: 0 })],
    ['seq as a float', (e) => set(e, 'seq', { t: 'float', x: 5 })],
    [
      'seq with a reserved head (info 28) and zeros',
      (e) => set(e, 'seq', { t: 'raw', b: new Uint8Array(17).fill(0x1c, 0, 1) }),
    ],
    ['sig head in a longer form', (e) => ({ entries: e, widen: 8 })],
    ['sig of 65 bytes', (e) => set(e, 'sig', { t: 'bytes', b: new Uint8Array(65) })],
    ['epoch not tagged', (e) => set(e, 'epoch', { t: 'bytes', b: validCid() })],
    ['epoch tag in a longer head', (e) => ({ entries: e, widen: 10 })],
    ['epoch byte-string head longer', (e) => ({ entries: e, widen: 11 })],
    ['epoch without its 0x00', (e) => set(e, 'epoch', cid(validCid().subarray(1)))],
    ['epoch not a CID', (e) => set(e, 'epoch', cid(Uint8Array.of(0, 1, 2, 3)))],
    ['epoch CID with a trailing byte', (e) => set(e, 'epoch', cid(Uint8Array.of(...validCid(), 0)))],
    [
      'epoch CID with a longer version varint',
      (e) => set(e, 'epoch', cid(Uint8Array.of(0, 0x81, 0, ...validCid().subarray(2)))),
    ],
    ['group not tagged', (e) => set(e, 'group', { t: 'bytes', b: validCid() })],
    ['group without its 0x00', (e) => set(e, 'group', cid(validCid().subarray(1)))],
    [
      'group CID with a longer codec varint',
      (e) => set(e, 'group', cid(Uint8Array.of(0, 1, 0xf1, 0, ...validCid().subarray(3)))),
    ],
    ['nonce of 11 bytes', (e) => set(e, 'nonce', { t: 'bytes', b: new Uint8Array(11) })],
    ['nonce of 13 bytes', (e) => set(e, 'nonce', { t: 'bytes', b: new Uint8Array(13) })],
    ['nonce head longer', (e) => ({ entries: e, widen: 16 })],
    ['sender of 37 bytes', (e) => set(e, 'sender', { t: 'bytes', b: ids[0].memberIdBytes.subarray(0, 37) })],
    [
      'sender of 39 bytes',
      (e) => set(e, 'sender', { t: 'bytes', b: Uint8Array.of(...ids[0].memberIdBytes, 0) }),
    ],
    ['sender head longer', (e) => ({ entries: e, widen: 18 })],
    ['sender as text', (e) => set(e, 'sender', { t: 'text', s: 'x'.repeat(38) })],
    ['keys out of order (nonce after sender)', (e) => swap(e, 'nonce', 'sender')],
    ['keys out of order (sig before seq)', (e) => swap(e, 'seq', 'sig')],
    // a key of the same length: everything else stays where it was, so only the key's own check refuses
    ['key "v" spelled "w"', (e) => rename(e, 'v', 'w')],
    ['key "ct" spelled "cu"', (e) => rename(e, 'ct', 'cu')],
    ['key "seq" spelled "sig"', (e) => rename(e, 'seq', 'sig')],
    ['key "seq" spelled "seg"', (e) => rename(e, 'seq', 'seg')],
    ['key "sig" spelled "sih"', (e) => rename(e, 'sig', 'sih')],
    ['key "epoch" spelled "group"', (e) => rename(e, 'epoch', 'group')],
    ['key "group" spelled "grouq"', (e) => rename(e, 'group', 'grouq')],
    ['key "group" spelled "epoch"', (e) => rename(e, 'group', 'epoch')],
    ['key "nonce" spelled "noncf"', (e) => rename(e, 'nonce', 'noncf')],
    ['key "sender" spelled "sendes"', (e) => rename(e, 'sender', 'sendes')],
    [
      'epoch CID after 0x01 instead of 0x00',
      (e) => set(e, 'epoch', cid(Uint8Array.of(1, ...validCid().subarray(1)))),
    ],
    [
      'group CID after 0x01 instead of 0x00',
      (e) => set(e, 'group', cid(Uint8Array.of(1, ...validCid().subarray(1)))),
    ],
    // decodes, as a CIDv0, whose own bytes are 2 shorter
    [
      'epoch CID with an explicit version 0',
      (e) => set(e, 'epoch', cid(Uint8Array.of(0, 0, 0x70, ...validCid().subarray(3)))),
    ],
    [
      'group CID with an explicit version 0',
      (e) => set(e, 'group', cid(Uint8Array.of(0, 0, 0x70, ...validCid().subarray(3)))),
    ],
    ['a ninth entry', (e) => [...e, ['x', { t: 'uint', n: 1 }]]],
    ['a key renamed', (e) => e.map(([k, v]) => [k === 'nonce' ? 'nonc' : k, v])],
  ]

  function set(entries: Entry[], key: string, value: Item): Entry[] {
    return entries.map(([k, v]) => [k, k === key ? value : v])
  }
  function rename(entries: Entry[], from: string, to: string): Entry[] {
    return entries.map(([k, v]) => [k === from ? to : k, v])
  }
  function swap(entries: Entry[], a: string, b: string): Entry[] {
    const out = [...entries]
    ;[out[at(a)], out[at(b)]] = [out[at(b)] as Entry, out[at(a)] as Entry]
    return out
  }

  for (const [label, change] of cases) {
    it(`${label}: MalformedError, as before`, async () => {
      const sealed = sample(0, 300, 'canonical')
      const changed = change(entriesOf(sealed))
      const bytes = Array.isArray(changed)
        ? writeEnvelope(changed, ids[0])
        : writeEnvelope(changed.entries, ids[0], { widen: changed.widen })
      expect(hex(bytes)).not.toBe(hex(sealed))
      expect(agree(bytes, label)).toEqual({ error: 'MalformedError' })
    })
  }

  it('trailing bytes after a valid envelope and a truncated one: MalformedError, as before', () => {
    const sealed = sample(1, 7, 'x')
    expect(agree(Uint8Array.of(...sealed, 0))).toEqual({ error: 'MalformedError' })
    expect(agree(sealed.subarray(0, sealed.length - 1))).toEqual({ error: 'MalformedError' })
  })

  it('a sender of 38 bytes that is no Ed25519 peer id: MalformedError, as before', () => {
    const sealed = sample(0, 1, 'x')
    const bytes = new Uint8Array(sealed)
    // the multihash's length byte: 0x24 → 0x25 keeps every size, and spoils only the prefix
    const at = Buffer.from(bytes).indexOf(Buffer.from(ids[0].memberIdBytes))
    bytes[at + 1] = 0x25
    expect(agree(bytes)).toEqual({ error: 'MalformedError' })
  })

  it('a non-canonical envelope with a bad signature is an InvalidSignatureError, as before', () => {
    const sealed = sample(0, 1, 'x')
    // the seq head one size longer, not signed again
    const bytes = writeEnvelope(entriesOf(sealed), undefined, { widen: 6 })
    expect(agree(bytes)).toEqual({ error: 'InvalidSignatureError' })
  })

  it('a forged canonical envelope is an InvalidSignatureError, as before', () => {
    const sealed = sample(0, 1, 'x')
    const forged = new Uint8Array(sealed)
    forged.set(ids[1].memberIdBytes, Buffer.from(sealed).indexOf(Buffer.from(ids[0].memberIdBytes)))
    expect(agree(forged)).toEqual({ error: 'InvalidSignatureError' })
  })
})

describe('envelope codec: bodies read in place agree with the full decoder', () => {
  /** `plaintext` sealed into a real envelope's ciphertext, to open with both readers. */
  function withBody(plaintext: Uint8Array): { envelope: Envelope; key: Uint8Array } {
    const key = new Uint8Array(32).fill(9)
    const base = decodeEnvelope(
      seal({
        sender: 0,
        seq: 1,
        text: '',
        ts: 0,
        epoch: cidOf(Uint8Array.of(1)),
        group: cidOf(Uint8Array.of(2)),
        nonce: new Uint8Array(12),
        key,
      }),
    )
    return { envelope: { ...base, ct: aeadEncrypt(key, base.header.nonce, plaintext, base.aad) }, key }
  }

  function opened(open: (e: Envelope, k: Uint8Array) => unknown, plaintext: Uint8Array): unknown {
    const { envelope, key } = withBody(plaintext)
    try {
      return open(envelope, key)
    } catch (err) {
      return { error: (err as Error).name }
    }
  }

  const bodyItemArb: fc.Arbitrary<Item> = fc.oneof(
    fc.maxSafeNat().map((n) => ({ t: 'uint' as const, n })),
    fc.maxSafeNat().map((n) => ({ t: 'nint' as const, n })),
    fc.constantFrom(2n ** 53n, 2n ** 53n - 1n, 2n ** 64n - 1n).map((n) => ({ t: 'nint' as const, n })),
    fc.constantFrom(2n ** 53n, 2n ** 64n - 1n).map((n) => ({ t: 'uint' as const, n })),
    fc.string({ unit: 'binary', maxLength: 80 }).map((s) => ({ t: 'text' as const, s })),
    // text whose bytes are not UTF-8, or start with a byte order mark
    fc
      .uint8Array({ maxLength: 70 })
      .map((b) => ({ t: 'raw' as const, b: Uint8Array.of(0x78, b.length, ...b) })),
    fc.constant({ t: 'raw' as const, b: Uint8Array.of(0x65, 0xef, 0xbb, 0xbf, 0x68, 0x69) }),
    fc.constantFrom(1.5, 2).map((x) => ({ t: 'float' as const, x })),
    fc.uint8Array({ maxLength: 4 }).map((b) => ({ t: 'bytes' as const, b })),
  )
  // near-canonical bodies most of the time, so each departure from the canonical form is tried alone
  const bodyArb = fc.record({
    ts: fc
      .oneof({ arbitrary: fc.maxSafeInteger(), weight: 3 }, { arbitrary: bodyItemArb, weight: 1 })
      .map(
        (v): Item => (typeof v === 'number' ? (v < 0 ? { t: 'nint', n: -1 - v } : { t: 'uint', n: v }) : v),
      ),
    text: fc.oneof(
      { arbitrary: fc.string({ maxLength: 40 }).map((s): Item => ({ t: 'text', s })), weight: 3 },
      { arbitrary: bodyItemArb, weight: 1 },
    ),
    keys: fc.oneof(
      { arbitrary: fc.constant(['ts', 'text']), weight: 3 },
      {
        arbitrary: fc.constantFrom(
          ['text', 'ts'],
          ['tz', 'text'],
          ['ts', 'texx'],
          ['ts', 'ts'],
          ['t', 'text'],
        ),
        weight: 1,
      },
    ),
    widen: fc.option(fc.nat(5), { nil: undefined, freq: 2 }),
    extra: fc.option(fc.tuple(fc.constantFrom('ts', 'text', 'x'), bodyItemArb), { nil: undefined, freq: 2 }),
    tail: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 1, maxLength: 2 })),
  })

  it('any body, canonical or not: the same text and time, or the same error', () => {
    fc.assert(
      fc.property(bodyArb, (body) => {
        const entries: Entry[] = [
          [body.keys[0] as string, body.keys[0] === 'text' ? body.text : body.ts],
          [body.keys[1] as string, body.keys[0] === 'text' ? body.ts : body.text],
        ]
        if (body.extra !== undefined) entries.push(body.extra)
        const plaintext = Uint8Array.of(
          ...writeItem({ t: 'map', entries }, body.widen === undefined ? {} : { widen: body.widen }),
          ...body.tail,
        )
        expect(opened(openEnvelope, plaintext)).toEqual(opened(referenceOpenEnvelope, plaintext))
      }),
      { numRuns: RUNS * 2 },
    )
  })

  it('each departure from the canonical body goes to the full decoder, which refuses it', () => {
    const bodies: Array<[string, Uint8Array]> = [
      [
        'key "ts" spelled "tz"',
        writeItem({
          t: 'map',
          entries: [
            ['tz', { t: 'uint', n: 1 }],
            ['text', { t: 'text', s: 'hi' }],
          ],
        }),
      ],
      [
        'key "text" spelled "texx"',
        writeItem({
          t: 'map',
          entries: [
            ['ts', { t: 'uint', n: 1 }],
            ['texx', { t: 'text', s: 'hi' }],
          ],
        }),
      ],
      [
        'a map of three',
        Uint8Array.of(
          0xa3,
          ...writeItem({
            t: 'map',
            entries: [
              ['ts', { t: 'uint', n: 1 }],
              ['text', { t: 'text', s: 'hi' }],
            ],
          }).subarray(1),
        ),
      ],
      ['a trailing byte', Uint8Array.of(...dagCbor.encode({ ts: 1, text: 'hi' }), 0)],
    ]
    for (const [label, plaintext] of bodies) {
      const fast = opened(openEnvelope, plaintext)
      expect(fast, label).toEqual(opened(referenceOpenEnvelope, plaintext))
      expect(fast, label).toEqual({ error: 'MalformedError' })
    }
  })

  it('a body with a non-UTF-8 text or a byte order mark reads as the full decoder reads it', () => {
    const texts = [
      Uint8Array.of(0xef, 0xbb, 0xbf, 0x68, 0x69),
      Uint8Array.of(0xff, 0x68),
      Uint8Array.of(0xed, 0xa0, 0x80),
      Uint8Array.of(0xc3),
    ]
    for (const text of texts) {
      const plaintext = Uint8Array.of(
        0xa2,
        0x62,
        0x74,
        0x73,
        0x01,
        0x64,
        0x74,
        0x65,
        0x78,
        0x74,
        0x60 | text.length,
        ...text,
      )
      const fast = opened(openEnvelope, plaintext)
      expect(fast).toEqual(opened(referenceOpenEnvelope, plaintext))
      expect(fast).toMatchObject({ ts: 1 })
    }
  })

  it('a message id is the CID string of the envelope bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(cidStringOf(bytes)).toBe(cidOf(bytes).toString())
      }),
      { numRuns: RUNS },
    )
  })
})
