/**
 * HPKE (src/crypto/hpke.ts), our own RFC 9180 base mode for DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-256-GCM on node:crypto: checked step by step against the RFC's test vectors
 * (test/vectors/rfc9180.json, sources cited there), and end to end against `@hpke/core`, the library it
 * replaced, in both directions on random inputs.
 */
import { hkdfSync, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { ed25519 } from '@noble/curves/ed25519.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { aeadSeal } from '../../src/crypto/aead.js'
import {
  decap,
  deriveKeyPair,
  encap,
  expand,
  extract,
  HPKE_SUITE_ID,
  keySchedule,
  keyScheduleContext,
  labeledExpand,
  labeledExtract,
  openBase,
  sealBase,
  x25519KeyPair,
  x25519PublicKey,
} from '../../src/crypto/hpke.js'
import { Identity, openKey, sealKey } from '../../src/crypto/index.js'
import { thrown } from '../fixtures/membership.js'

const hex = (bytes: Uint8Array | ArrayBuffer): string => Buffer.from(new Uint8Array(bytes)).toString('hex')
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max })

interface BaseVector {
  info: string
  ikmE: string
  pkEm: string
  skEm: string
  ikmR: string
  pkRm: string
  skRm: string
  enc: string
  shared_secret: string
  key_schedule_context: string
  secret: string
  key: string
  base_nonce: string
  exporter_secret: string
  encryptions: Array<{ seq: number; aad: string; nonce: string; pt: string; ct: string }>
}
type KemVector = Pick<
  BaseVector,
  'ikmE' | 'pkEm' | 'skEm' | 'ikmR' | 'pkRm' | 'skRm' | 'enc' | 'shared_secret'
>

const vectors = JSON.parse(readFileSync(new URL('../vectors/rfc9180.json', import.meta.url), 'utf8')) as {
  base: BaseVector
  kemA11: KemVector
}

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
})

/** nonce for sequence number `seq` (RFC 9180 §5.2): the base nonce XOR the big-endian sequence number. */
function nonceFor(baseNonce: Uint8Array, seq: number): Uint8Array {
  const nonce = new Uint8Array(baseNonce)
  for (let i = nonce.length - 1, s = seq; s > 0; i--, s >>>= 8) nonce[i] = (nonce[i] as number) ^ (s & 0xff)
  return nonce
}

function checkKem(v: KemVector): void {
  const ephemeral = deriveKeyPair(fromHex(v.ikmE))
  expect(hex(ephemeral.secretKey), 'skEm').toBe(v.skEm)
  expect(hex(ephemeral.publicKey), 'pkEm').toBe(v.pkEm)
  const recipient = deriveKeyPair(fromHex(v.ikmR))
  expect(hex(recipient.secretKey), 'skRm').toBe(v.skRm)
  expect(hex(recipient.publicKey), 'pkRm').toBe(v.pkRm)
  const { sharedSecret, enc } = encap(x25519PublicKey(fromHex(v.pkRm)), ephemeral)
  expect(hex(enc), 'enc').toBe(v.enc)
  expect(hex(sharedSecret), 'shared_secret (Encap)').toBe(v.shared_secret)
  expect(hex(decap(fromHex(v.enc), x25519KeyPair(fromHex(v.skRm)))), 'shared_secret (Decap)').toBe(
    v.shared_secret,
  )
}

describe('HPKE: RFC 9180 test vectors', () => {
  it('HKDF-SHA256 is RFC 5869 (test case 1, and node:crypto hkdfSync on random inputs)', () => {
    const prk = extract(fromHex('000102030405060708090a0b0c'), new Uint8Array(22).fill(0x0b))
    expect(hex(prk)).toBe('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5')
    expect(hex(expand(prk, fromHex('f0f1f2f3f4f5f6f7f8f9'), 42))).toBe(
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    )
    fc.assert(
      fc.property(
        bytes(80),
        bytes(80),
        bytes(80),
        fc.integer({ min: 1, max: 200 }),
        (salt, ikm, info, length) => {
          const ours = expand(extract(salt, ikm), info, length)
          expect(hex(ours)).toBe(hex(hkdfSync('sha256', ikm, salt, info, length)))
        },
      ),
      { numRuns: 100 },
    )
  })

  it('DeriveKeyPair, Encap and Decap of DHKEM(X25519, HKDF-SHA256) give the RFC values (A.1.1 and the AES-256-GCM suite)', () => {
    checkKem(vectors.kemA11)
    checkKem(vectors.base)
  })

  it('the key schedule and AES-256-GCM give the vector key, nonce, secrets and ciphertexts', () => {
    const v = vectors.base
    const info = fromHex(v.info)
    const context = keyScheduleContext(info)
    expect(hex(context), 'key_schedule_context').toBe(v.key_schedule_context)
    const secret = labeledExtract(HPKE_SUITE_ID, fromHex(v.shared_secret), 'secret', new Uint8Array(0))
    expect(hex(secret), 'secret').toBe(v.secret)
    expect(hex(labeledExpand(HPKE_SUITE_ID, secret, 'exp', context, 32)), 'exporter_secret').toBe(
      v.exporter_secret,
    )
    const { key, baseNonce } = keySchedule(fromHex(v.shared_secret), info)
    expect(hex(key), 'key').toBe(v.key)
    expect(hex(baseNonce), 'base_nonce').toBe(v.base_nonce)
    for (const e of v.encryptions) {
      const nonce = nonceFor(baseNonce, e.seq)
      expect(hex(nonce), `nonce ${e.seq}`).toBe(e.nonce)
      expect(hex(aeadSeal('aes-256-gcm', key, nonce, fromHex(e.pt), fromHex(e.aad))), `ct ${e.seq}`).toBe(
        e.ct,
      )
    }
  })

  it('single-shot SealBase gives the vector enc and first ciphertext, and OpenBase opens it', () => {
    const v = vectors.base
    const [first] = v.encryptions
    if (first === undefined) throw new Error('vector has no encryptions')
    const sealed = sealBase(
      x25519PublicKey(fromHex(v.pkRm)),
      fromHex(v.info),
      fromHex(first.aad),
      fromHex(first.pt),
      deriveKeyPair(fromHex(v.ikmE)),
    )
    expect(hex(sealed.enc)).toBe(v.enc)
    expect(hex(sealed.ct)).toBe(first.ct)
    const opened = openBase(
      fromHex(v.enc),
      x25519KeyPair(fromHex(v.skRm)),
      fromHex(v.info),
      fromHex(first.aad),
      fromHex(first.ct),
    )
    expect(hex(opened)).toBe(first.pt)
  })
})

describe('HPKE: interoperates with @hpke/core (same suite)', () => {
  it('@hpke/core opens what we seal, and we open what it seals (random keys, info, aad, plaintext)', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(64), bytes(128), bytes(256), async (info, aad, plaintext) => {
        const secretKey = new Uint8Array(randomBytes(32))
        const recipient = x25519KeyPair(secretKey)
        const theirs = await suite.kem.deserializePrivateKey(secretKey)
        // our seal, their open
        const ours = sealBase(x25519PublicKey(recipient.publicKey), info, aad, plaintext)
        const opened = await suite.open({ recipientKey: theirs, enc: ours.enc, info }, ours.ct, aad)
        expect(hex(opened)).toBe(hex(plaintext))
        // their seal, our open
        const sealed = await suite.seal(
          { recipientPublicKey: await suite.kem.deserializePublicKey(recipient.publicKey), info },
          plaintext,
          aad,
        )
        expect(
          hex(openBase(new Uint8Array(sealed.enc), recipient, info, aad, new Uint8Array(sealed.ct))),
        ).toBe(hex(plaintext))
      }),
      { numRuns: 60 },
    )
  })

  it('sealKey/openKey keep the wire format: @hpke/core on the Ed25519-derived X25519 keys agrees both ways', async () => {
    const identities = await Promise.all([0, 1, 2].map(() => Identity.generate()))
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...identities),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        bytes(64),
        bytes(128),
        async (identity, groupKey, info, aad) => {
          const x25519Public = ed25519.utils.toMontgomery(ed25519.getPublicKey(identity.seed))
          const x25519Secret = ed25519.utils.toMontgomerySecret(identity.seed)
          // ours → @hpke/core, as the code before this change opened it
          const sealed = sealKey(identity.memberIdBytes, groupKey, info, aad)
          const opened = await suite.open(
            { recipientKey: await suite.kem.deserializePrivateKey(x25519Secret), enc: sealed.enc, info },
            sealed.ct,
            aad,
          )
          expect(hex(opened)).toBe(hex(groupKey))
          // @hpke/core → ours, as the code before this change sealed it
          const theirs = await suite.seal(
            { recipientPublicKey: await suite.kem.deserializePublicKey(x25519Public), info },
            groupKey,
            aad,
          )
          const key = openKey(
            identity,
            { enc: new Uint8Array(theirs.enc), ct: new Uint8Array(theirs.ct) },
            info,
            aad,
          )
          expect(hex(key)).toBe(hex(groupKey))
        },
      ),
      { numRuns: 40 },
    )
  })

  it('a fixed ephemeral seed is DeriveKeyPair(ikmE), as @hpke/core derives it', async () => {
    const seed = new Uint8Array(randomBytes(32))
    const theirs = await suite.kem.deriveKeyPair(seed)
    const theirPublic = new Uint8Array(await suite.kem.serializePublicKey(theirs.publicKey))
    expect(hex(deriveKeyPair(seed).publicKey)).toBe(hex(theirPublic))
  })
})

describe('HPKE: bad keys are typed errors', () => {
  // the Ed25519 point (0, -1) has order 2; its X25519 image is u = 0, with which no DH gives a secret
  const lowOrderEd25519 = fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')

  it('sealing to a member id whose key has low order throws InvalidMemberIdError', async () => {
    const memberId = peerIdFromPublicKey(publicKeyFromRaw(lowOrderEd25519)).toMultihash().bytes
    const error = await thrown(() =>
      sealKey(memberId, new Uint8Array(32), new Uint8Array(0), new Uint8Array(0)),
    )
    expect(error.name).toBe('InvalidMemberIdError')
  })

  it('a low-order, short or long encapsulated key does not open: DecryptionError', async () => {
    const alice = await Identity.generate()
    const info = new Uint8Array(0)
    const sealed = sealKey(alice.memberIdBytes, new Uint8Array(32), info, info)
    for (const enc of [new Uint8Array(32), sealed.enc.subarray(1), new Uint8Array([...sealed.enc, 0])]) {
      const error = await thrown(() => openKey(alice, { enc, ct: sealed.ct }, info, info))
      expect(error.name, hex(enc)).toBe('DecryptionError')
    }
  })
})
