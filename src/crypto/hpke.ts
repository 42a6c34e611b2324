import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { aeadOpen, aeadSeal } from './aead.js'
import { DecryptionError, InvalidKeyError, InvalidMemberIdError } from './errors.js'
import type { Identity } from './identity.js'
import { publicKeyOfMember } from './identity.js'
import { perMember } from './member-cache.js'

/**
 * HPKE (RFC 9180) base mode for exactly one suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM
 * (KEM 0x0020, KDF 0x0001, AEAD 0x0002), single-shot (sequence number 0), on synchronous node:crypto.
 *
 * A member's X25519 key is the birational image of its Ed25519 identity key (RFC 7748 §4.1, as in
 * libsodium's `crypto_sign_ed25519_pk_to_curve25519`), so a key can be sealed to anyone whose member id
 * is known, even while they are offline.
 *
 * Why not a library: `@hpke/core` runs every step as an async WebCrypto job, so a rekey of a 1,000-member
 * group was a chain of thousands of promises (5x its node:crypto floor). This is the same suite, byte for
 * byte; test/unit/hpke.test.ts checks it against the CFRG test vectors and against `@hpke/core` itself.
 */

const KEM_ID = 0x0020
const KDF_ID = 0x0001
const AEAD_ID = 0x0002
const MODE_BASE = 0x00
/** Nsecret, Nenc, Nsk of DHKEM(X25519, HKDF-SHA256); Nh of HKDF-SHA256; Nk, Nn of AES-256-GCM (Nt = 16). */
const N_SECRET = 32
const N_ENC = 32
const N_SK = 32
const N_H = 32
const N_K = 32
const N_N = 12

const encoder = new TextEncoder()
const VERSION_LABEL = encoder.encode('HPKE-v1')
const EMPTY = new Uint8Array(0)

function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = length - 1, v = value; i >= 0; i--, v >>>= 8) out[i] = v & 0xff
  return out
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

/** suite_id of the KEM (RFC 9180 §4.1) and of the whole suite (§5.1). */
export const KEM_SUITE_ID = concat(encoder.encode('KEM'), i2osp(KEM_ID, 2))
export const HPKE_SUITE_ID = concat(
  encoder.encode('HPKE'),
  i2osp(KEM_ID, 2),
  i2osp(KDF_ID, 2),
  i2osp(AEAD_ID, 2),
)

// ---- HKDF-SHA256 (RFC 5869) and its labeled forms (RFC 9180 §4) --------------------------------

/** HKDF-Extract (RFC 5869 §2.2). An empty salt is HashLen zero bytes, which HMAC pads to the same key. */
export function extract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', salt).update(ikm).digest())
}

/** HKDF-Expand (RFC 5869 §2.3). */
export function expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > 255 * N_H) throw new RangeError('HKDF-Expand: length too large')
  const out = new Uint8Array(length)
  let block: Uint8Array = EMPTY
  for (let i = 1, filled = 0; filled < length; i++) {
    block = new Uint8Array(createHmac('sha256', prk).update(block).update(info).update(i2osp(i, 1)).digest())
    out.set(block.subarray(0, Math.min(N_H, length - filled)), filled)
    filled += N_H
  }
  return out
}

function labeledIkm(suiteId: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return concat(VERSION_LABEL, suiteId, encoder.encode(label), ikm)
}

function labeledInfo(suiteId: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return concat(i2osp(length, 2), VERSION_LABEL, suiteId, encoder.encode(label), info)
}

/** LabeledExtract (RFC 9180 §4). */
export function labeledExtract(
  suiteId: Uint8Array,
  salt: Uint8Array,
  label: string,
  ikm: Uint8Array,
): Uint8Array {
  return extract(salt, labeledIkm(suiteId, label, ikm))
}

/** LabeledExpand (RFC 9180 §4). */
export function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return expand(prk, labeledInfo(suiteId, label, info, length), length)
}

/**
 * LabeledExpand(LabeledExtract(salt, extractLabel, ikm), expandLabel, info, length) in one native call:
 * node:crypto's `hkdfSync` is exactly RFC 5869 Extract-then-Expand, and the intermediate key is used
 * nowhere else, so the seal and open paths cross into C once per derivation instead of twice.
 */
function labeledExtractAndExpand(
  suiteId: Uint8Array,
  salt: Uint8Array,
  extractLabel: string,
  ikm: Uint8Array,
  expandLabel: string,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return new Uint8Array(
    hkdfSync(
      'sha256',
      labeledIkm(suiteId, extractLabel, ikm),
      salt,
      labeledInfo(suiteId, expandLabel, info, length),
      length,
    ),
  )
}

// ---- DHKEM(X25519, HKDF-SHA256) (RFC 9180 §4.1, §7.1) ------------------------------------------

// DER wrappers that let node:crypto (OpenSSL) use raw X25519 keys (RFC 8410).
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

/** An X25519 public key: its KeyObject for node:crypto and its 32 serialized bytes (for kem_context). */
export interface X25519PublicKey {
  key: KeyObject
  bytes: Uint8Array
}

/** An X25519 key pair; the private half stays a KeyObject. */
export interface X25519KeyPair {
  privateKey: KeyObject
  publicKey: Uint8Array
}

/** DeserializePublicKey: any 32 bytes (RFC 7748 §5: the high bit is masked, non-canonical values reduced). */
export function x25519PublicKey(bytes: Uint8Array): X25519PublicKey {
  const key = createPublicKey({
    key: Buffer.concat([SPKI_X25519_PREFIX, bytes]),
    format: 'der',
    type: 'spki',
  })
  return { key, bytes: new Uint8Array(bytes) }
}

/** DeserializePrivateKey, with its public key (SerializePublicKey(pk(skR)), needed by Decap). */
export function x25519KeyPair(secretKey: Uint8Array): X25519KeyPair {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, secretKey]),
    format: 'der',
    type: 'pkcs8',
  })
  return { privateKey, publicKey: publicKeyBytes(privateKey) }
}

// The JWK export carries the public key of either half, and is ~20x cheaper than a DER export.
function publicKeyBytes(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url'))
}

/** DeriveKeyPair (RFC 9180 §7.1.3): X25519 takes the expanded bytes as they are (it clamps them itself). */
export function deriveKeyPair(ikm: Uint8Array): X25519KeyPair & { secretKey: Uint8Array } {
  const secretKey = labeledExtractAndExpand(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm, 'sk', EMPTY, N_SK)
  return { ...x25519KeyPair(secretKey), secretKey }
}

/** GenerateKeyPair: a random X25519 key pair. */
function generateKeyPair(): X25519KeyPair {
  const { privateKey } = generateKeyPairSync('x25519')
  return { privateKey, publicKey: publicKeyBytes(privateKey) }
}

/**
 * DH: X25519.
 *
 * @throws {InvalidKeyError} for a low-order public key: OpenSSL refuses the all-zero result, as RFC 9180
 * §7.1.4 requires
 */
function dh(privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  try {
    return new Uint8Array(diffieHellman({ privateKey, publicKey }))
  } catch {
    throw new InvalidKeyError()
  }
}

function extractAndExpand(dhResult: Uint8Array, kemContext: Uint8Array): Uint8Array {
  return labeledExtractAndExpand(
    KEM_SUITE_ID,
    EMPTY,
    'eae_prk',
    dhResult,
    'shared_secret',
    kemContext,
    N_SECRET,
  )
}

/** Encap(pkR), with a fresh ephemeral key unless one is given. */
export function encap(
  recipient: X25519PublicKey,
  ephemeral: X25519KeyPair = generateKeyPair(),
): { sharedSecret: Uint8Array; enc: Uint8Array } {
  const enc = ephemeral.publicKey
  const sharedSecret = extractAndExpand(dh(ephemeral.privateKey, recipient.key), concat(enc, recipient.bytes))
  return { sharedSecret, enc }
}

/** Decap(enc, skR). */
export function decap(enc: Uint8Array, recipient: X25519KeyPair): Uint8Array {
  const dhResult = dh(recipient.privateKey, x25519PublicKey(enc).key)
  return extractAndExpand(dhResult, concat(enc, recipient.publicKey))
}

// ---- key schedule (RFC 9180 §5.1), base mode ---------------------------------------------------

const contexts = new Map<string, Uint8Array>()

/** key_schedule_context for base mode (default psk and psk_id); there are only a few `info`s, so cached. */
export function keyScheduleContext(info: Uint8Array): Uint8Array {
  const cacheKey = Buffer.from(info).toString('base64')
  let context = contexts.get(cacheKey)
  if (context === undefined) {
    const pskIdHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'psk_id_hash', EMPTY)
    const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, 'info_hash', info)
    context = concat(i2osp(MODE_BASE, 1), pskIdHash, infoHash)
    if (contexts.size >= 64) contexts.clear()
    contexts.set(cacheKey, context)
  }
  return context
}

/** KeySchedule<Role>(mode_base, shared_secret, info): the AEAD key and base nonce. */
export function keySchedule(
  sharedSecret: Uint8Array,
  info: Uint8Array,
): { key: Uint8Array; baseNonce: Uint8Array } {
  const context = keyScheduleContext(info)
  // secret = LabeledExtract(shared_secret, "secret", psk = ""); each output is one Extract-then-Expand.
  return {
    key: labeledExtractAndExpand(HPKE_SUITE_ID, sharedSecret, 'secret', EMPTY, 'key', context, N_K),
    baseNonce: labeledExtractAndExpand(
      HPKE_SUITE_ID,
      sharedSecret,
      'secret',
      EMPTY,
      'base_nonce',
      context,
      N_N,
    ),
  }
}

// ---- single-shot base mode (RFC 9180 §6.1) -----------------------------------------------------

/** SealBase(pkR, info, aad, pt) → (enc, ct); `ephemeral` only for test vectors. */
export function sealBase(
  recipient: X25519PublicKey,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  ephemeral?: X25519KeyPair,
): { enc: Uint8Array; ct: Uint8Array } {
  const { sharedSecret, enc } = encap(recipient, ephemeral)
  const { key, baseNonce } = keySchedule(sharedSecret, info)
  // sequence number 0: the nonce is the base nonce
  return { enc, ct: aeadSeal('aes-256-gcm', key, baseNonce, plaintext, aad) }
}

/**
 * OpenBase(enc, skR, info, aad, ct).
 *
 * @throws {DecryptionError} when it was sealed to another key or any input changed
 */
export function openBase(
  enc: Uint8Array,
  recipient: X25519KeyPair,
  info: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  if (enc.length !== N_ENC) throw new DecryptionError('encapsulated key must be 32 bytes')
  let sharedSecret: Uint8Array
  try {
    sharedSecret = decap(enc, recipient)
  } catch (err) {
    if ((err as Error).name !== InvalidKeyError.name) throw err
    throw new DecryptionError('encapsulated key is a low-order X25519 key')
  }
  const { key, baseNonce } = keySchedule(sharedSecret, info)
  return aeadOpen('aes-256-gcm', key, baseNonce, ciphertext, aad)
}

// ---- p2pchat: keys sealed to member ids ------------------------------------------------------------

/** A group key sealed to one recipient. */
export interface SealedKey {
  /** The HPKE encapsulated key (32 bytes). */
  enc: Uint8Array
  /** The AEAD ciphertext of the group key. */
  ct: Uint8Array
}

/** Options for {@link sealKey}. */
export interface SealKeyOptions {
  /**
   * Fixed ephemeral key material (the `ikmE` of DeriveKeyPair), for committed test vectors only: reusing
   * it leaks the sealed key.
   */
  ephemeralSeedForTests?: Uint8Array
}

/** The X25519 key of a recipient, kept for the recipients sealed to last. */
const recipientPublicKey = perMember((memberId): X25519PublicKey => {
  let montgomery: Uint8Array
  try {
    montgomery = ed25519.utils.toMontgomery(publicKeyOfMember(memberId))
  } catch {
    throw new InvalidMemberIdError('member id is not a valid Ed25519 public key')
  }
  return x25519PublicKey(montgomery)
})

/**
 * Seals `key` to the member `recipient`, binding it to `info` (what the key is for) and `aad` (the
 * context it was issued in). Synchronous: a few node:crypto calls, ~0.2 ms.
 *
 * @throws {InvalidMemberIdError} when `recipient` is not an Ed25519 member id that can receive keys (not a
 * point on the curve, or one of low order)
 */
export function sealKey(
  recipient: Uint8Array,
  key: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  options: SealKeyOptions = {},
): SealedKey {
  const to = recipientPublicKey(recipient)
  const ephemeral =
    options.ephemeralSeedForTests === undefined ? undefined : deriveKeyPair(options.ephemeralSeedForTests)
  try {
    return sealBase(to, info, aad, key, ephemeral)
  } catch (err) {
    if ((err as Error).name !== InvalidKeyError.name) throw err
    throw new InvalidMemberIdError('member id has a low-order key, so nothing sealed to it could be opened')
  }
}

const ownKeys = new WeakMap<Identity, X25519KeyPair>()

function ownKeyPair(identity: Identity): X25519KeyPair {
  let pair = ownKeys.get(identity)
  if (pair === undefined) {
    pair = x25519KeyPair(ed25519.utils.toMontgomerySecret(identity.seed))
    ownKeys.set(identity, pair)
  }
  return pair
}

/**
 * Opens a key sealed to `identity` by {@link sealKey}.
 *
 * @throws {DecryptionError} when it was sealed to someone else or any input changed
 */
export function openKey(
  identity: Identity,
  sealed: SealedKey,
  info: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  try {
    return openBase(sealed.enc, ownKeyPair(identity), info, aad, sealed.ct)
  } catch (err) {
    if ((err as Error).name === DecryptionError.name) {
      throw new DecryptionError('sealed key does not open with this identity')
    }
    throw err
  }
}
