import { generateKeyPair, generateKeyPairFromSeed, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  aeadDecrypt,
  aeadEncrypt,
  cidOf,
  hkdf,
  Identity,
  KEY_LENGTH,
  NONCE_LENGTH,
  openKey,
  publicKeyOfMember,
  randomKey,
  randomNonce,
  type SignatureDomain,
  sealKey,
  sha256,
  verifySignature,
} from '../../src/crypto/index.js'
import { thrown } from '../fixtures/membership.js'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

// A record, so that a new signature domain fails to compile here until it is listed (and, in the vectors,
// pinned).
const DOMAIN_SET: Record<SignatureDomain, true> = {
  'event:genesis': true,
  'event:add': true,
  'event:remove': true,
  'event:rekey': true,
  'event:rename': true,
  envelope: true,
  'join-request': true,
  invite: true,
  'invite-token': true,
  'invite-proof': true,
}
const DOMAINS = Object.keys(DOMAIN_SET) as SignatureDomain[]

describe('crypto: identities and signatures', () => {
  it('derives the RFC 8032 public key from a seed, and the member id from it', async () => {
    // RFC 8032 §7.1, TEST 1
    const key = await generateKeyPairFromSeed(
      'Ed25519',
      fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
    )
    const identity = new Identity(key)
    const expectedPublic = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
    expect(hex(publicKeyOfMember(identity.memberId))).toBe(expectedPublic)
    expect(hex(publicKeyOfMember(identity.memberIdBytes))).toBe(expectedPublic)
    expect(identity.memberId).toMatch(/^12D3KooW/)
  })

  it('a signature verifies in its own domain only', async () => {
    const alice = await Identity.generate()
    const message = utf8('the same bytes')
    for (const domain of DOMAINS) {
      const sig = alice.sign(domain, message)
      expect(sig).toHaveLength(64)
      expect(() => verifySignature(alice.memberIdBytes, domain, message, sig)).not.toThrow()
      for (const other of DOMAINS.filter((d) => d !== domain)) {
        const err = await thrown(() => verifySignature(alice.memberIdBytes, other, message, sig))
        expect(err.name, `${domain} signature checked as ${other}`).toBe('InvalidSignatureError')
      }
    }
  })

  it('a changed message, another signer or a malformed signature is InvalidSignatureError', async () => {
    const [alice, bob] = [await Identity.generate(), await Identity.generate()]
    const message = utf8('hello')
    const sig = alice.sign('envelope', message)
    const cases: Array<[string, () => void]> = [
      ['changed message', () => verifySignature(alice.memberIdBytes, 'envelope', utf8('hellO'), sig)],
      ['other signer', () => verifySignature(bob.memberIdBytes, 'envelope', message, sig)],
      [
        'short signature',
        () => verifySignature(alice.memberIdBytes, 'envelope', message, sig.subarray(0, 63)),
      ],
      ['zero signature', () => verifySignature(alice.memberIdBytes, 'envelope', message, new Uint8Array(64))],
    ]
    for (const [what, check] of cases) expect((await thrown(check)).name, what).toBe('InvalidSignatureError')
    fc.assert(
      fc.property(fc.nat({ max: 63 }), fc.integer({ min: 1, max: 255 }), (index, mask) => {
        const bad = new Uint8Array(sig)
        bad[index] = (bad[index] as number) ^ mask
        try {
          verifySignature(alice.memberIdBytes, 'envelope', message, bad)
          return false
        } catch (err) {
          return (err as Error).name === 'InvalidSignatureError'
        }
      }),
      { numRuns: 200 },
    )
  })

  it('a member id that is not an Ed25519 peer id is InvalidMemberIdError', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1'))
    const message = utf8('x')
    const sig = new Uint8Array(64)
    const cases: Array<[string, () => unknown]> = [
      ['secp256k1 peer id string', () => publicKeyOfMember(secp.toString())],
      ['secp256k1 peer id bytes', () => publicKeyOfMember(secp.toMultihash().bytes)],
      ['garbage string', () => publicKeyOfMember('not a peer id')],
      ['garbage bytes', () => publicKeyOfMember(new Uint8Array([1, 2, 3]))],
      [
        'verify under a secp256k1 id',
        () => verifySignature(secp.toMultihash().bytes, 'envelope', message, sig),
      ],
    ]
    for (const [what, check] of cases) expect((await thrown(check)).name, what).toBe('InvalidMemberIdError')
  })

  it('an identity survives its key file round trip, and the key file must hold an Ed25519 key', async () => {
    const alice = await Identity.generate()
    const restored = Identity.fromProtobuf(alice.toProtobuf())
    expect(restored.memberId).toBe(alice.memberId)
    const sig = restored.sign('event:add', utf8('m'))
    expect(() => verifySignature(alice.memberIdBytes, 'event:add', utf8('m'), sig)).not.toThrow()

    const secpKeyFile = privateKeyToProtobuf(await generateKeyPair('secp256k1'))
    expect((await thrown(() => Identity.fromProtobuf(secpKeyFile))).name).toBe('InvalidMemberIdError')
  })
})

describe('crypto: hashing and key derivation', () => {
  it('SHA-256 and HKDF-SHA256 match their standard test vectors', () => {
    expect(hex(sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    // RFC 5869 A.3: SHA-256, empty salt, empty info
    const okm = hkdf(new Uint8Array(22).fill(0x0b), '', 42)
    expect(hex(okm)).toBe(
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    )
  })

  it('HKDF separates purposes: different info, different key', () => {
    const ikm = randomKey()
    expect(hkdf(ikm, 'a')).toHaveLength(KEY_LENGTH)
    expect(hkdf(ikm, 'a')).toEqual(hkdf(ikm, 'a'))
    expect(hkdf(ikm, 'a')).not.toEqual(hkdf(ikm, 'b'))
  })

  it('cidOf content-addresses bytes as CIDv1 dag-cbor sha2-256', () => {
    const cid = cidOf(utf8('x'))
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x71)
    expect(cid.multihash.code).toBe(0x12)
    expect(cid.multihash.digest).toEqual(sha256(utf8('x')))
    expect(cidOf(utf8('x')).equals(cid)).toBe(true)
    expect(cidOf(utf8('y')).equals(cid)).toBe(false)
  })
})

describe('crypto: ChaCha20-Poly1305', () => {
  it('matches the RFC 8439 §2.8.2 test vector', () => {
    const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f')
    const nonce = fromHex('070000004041424344454647')
    const aad = fromHex('50515253c0c1c2c3c4c5c6c7')
    const plaintext = utf8(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    )
    const sealed = aeadEncrypt(key, nonce, plaintext, aad)
    expect(hex(sealed)).toBe(
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' +
        '1ae10b594f09e26a7e902ecbd0600691',
    )
    expect(aeadDecrypt(key, nonce, sealed, aad)).toEqual(plaintext)
  })

  it('any change to key, nonce, ciphertext, tag or associated data is DecryptionError', async () => {
    const key = randomKey()
    const nonce = randomNonce()
    expect(nonce).toHaveLength(NONCE_LENGTH)
    const aad = utf8('header')
    const sealed = aeadEncrypt(key, nonce, utf8('secret'), aad)
    const flip = (bytes: Uint8Array, i: number): Uint8Array => {
      const out = new Uint8Array(bytes)
      out[i] = (out[i] as number) ^ 1
      return out
    }
    const cases: Array<[string, () => unknown]> = [
      ['wrong key', () => aeadDecrypt(randomKey(), nonce, sealed, aad)],
      ['wrong nonce', () => aeadDecrypt(key, flip(nonce, 0), sealed, aad)],
      ['short nonce', () => aeadDecrypt(key, nonce.subarray(1), sealed, aad)],
      ['changed aad', () => aeadDecrypt(key, nonce, sealed, utf8('headeR'))],
      ['truncated', () => aeadDecrypt(key, nonce, sealed.subarray(0, 15), aad)],
      ['empty', () => aeadDecrypt(key, nonce, new Uint8Array(0), aad)],
    ]
    for (let i = 0; i < sealed.length; i++)
      cases.push([`byte ${i}`, () => aeadDecrypt(key, nonce, flip(sealed, i), aad)])
    for (const [what, check] of cases) expect((await thrown(check)).name, what).toBe('DecryptionError')
  })
})

describe('crypto: sealed group keys (HPKE)', () => {
  const info = utf8('p2pchat/v1/epoch-key')
  const aad = utf8('event context')

  it('only the recipient opens a sealed key, and only with the same info and context', async () => {
    const [alice, bob] = [await Identity.generate(), await Identity.generate()]
    const key = randomKey()
    const sealed = sealKey(alice.memberIdBytes, key, info, aad)
    expect(sealed.enc).toHaveLength(32)
    expect(sealed.ct).toHaveLength(48)
    expect(openKey(alice, sealed, info, aad)).toEqual(key)

    const flip = (bytes: Uint8Array): Uint8Array => {
      const out = new Uint8Array(bytes)
      out[0] = (out[0] as number) ^ 1
      return out
    }
    const cases: Array<[string, () => unknown]> = [
      ['another identity', () => openKey(bob, sealed, info, aad)],
      ['other info', () => openKey(alice, sealed, utf8('p2pchat/v1/other'), aad)],
      ['other context', () => openKey(alice, sealed, info, utf8('another event'))],
      ['changed enc', () => openKey(alice, { ...sealed, enc: flip(sealed.enc) }, info, aad)],
      ['changed ct', () => openKey(alice, { ...sealed, ct: flip(sealed.ct) }, info, aad)],
    ]
    for (const [what, check] of cases) expect((await thrown(check)).name, what).toBe('DecryptionError')
  })

  it('seals to a member by id alone, and fresh ephemeral keys make every seal differ', async () => {
    const alice = await Identity.generate()
    const restored = Identity.fromProtobuf(alice.toProtobuf())
    const key = randomKey()
    const [a, b] = [
      sealKey(alice.memberIdBytes, key, info, aad),
      sealKey(alice.memberIdBytes, key, info, aad),
    ]
    expect(a.enc).not.toEqual(b.enc)
    expect(openKey(restored, a, info, aad)).toEqual(key)
    expect(openKey(restored, b, info, aad)).toEqual(key)
  })

  it('a fixed ephemeral seed gives a fixed seal (for test vectors only)', async () => {
    const alice = await Identity.generate()
    const key = randomKey()
    const seed = new Uint8Array(32).fill(7)
    const a = sealKey(alice.memberIdBytes, key, info, aad, { ephemeralSeedForTests: seed })
    const b = sealKey(alice.memberIdBytes, key, info, aad, { ephemeralSeedForTests: seed })
    expect(a).toEqual(b)
    expect(openKey(alice, a, info, aad)).toEqual(key)
  })
})
