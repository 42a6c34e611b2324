import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core'
import { ed25519 } from '@noble/curves/ed25519.js'
import { DecryptionError } from './errors.js'
import type { Identity } from './identity.js'
import { publicKeyOfMember } from './identity.js'

/**
 * HPKE (RFC 9180) base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
 *
 * A member's X25519 key is the birational image of its Ed25519 identity key (RFC 7748 §4.1, as in
 * libsodium's `crypto_sign_ed25519_pk_to_curve25519`), so a key can be sealed to anyone whose member id
 * is known, even while they are offline.
 */
const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
})

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
   * Fixed ephemeral key material, for committed test vectors only: reusing it leaks the sealed key.
   */
  ephemeralSeedForTests?: Uint8Array
}

type HpkeKey = Awaited<ReturnType<typeof suite.kem.deserializePublicKey>>

const recipientKeys = new Map<string, HpkeKey>()

async function recipientPublicKey(memberId: Uint8Array): Promise<HpkeKey> {
  const cacheKey = Buffer.from(memberId).toString('base64')
  let key = recipientKeys.get(cacheKey)
  if (key === undefined) {
    const x25519 = ed25519.utils.toMontgomery(publicKeyOfMember(memberId))
    key = await suite.kem.deserializePublicKey(x25519)
    if (recipientKeys.size > 4096) recipientKeys.clear()
    recipientKeys.set(cacheKey, key)
  }
  return key
}

/**
 * Seals `key` to the member `recipient`, binding it to `info` (what the key is for) and `aad` (the
 * context it was issued in).
 */
export async function sealKey(
  recipient: Uint8Array,
  key: Uint8Array,
  info: Uint8Array,
  aad: Uint8Array,
  options: SealKeyOptions = {},
): Promise<SealedKey> {
  const sealed = await suite.seal(
    {
      recipientPublicKey: await recipientPublicKey(recipient),
      info,
      ...(options.ephemeralSeedForTests === undefined
        ? {}
        : { ekm: await suite.kem.deriveKeyPair(options.ephemeralSeedForTests) }),
    },
    key,
    aad,
  )
  return { enc: new Uint8Array(sealed.enc), ct: new Uint8Array(sealed.ct) }
}

const ownKeys = new WeakMap<Identity, Promise<HpkeKey>>()

function ownPrivateKey(identity: Identity): Promise<HpkeKey> {
  let key = ownKeys.get(identity)
  if (key === undefined) {
    key = suite.kem.deserializePrivateKey(ed25519.utils.toMontgomerySecret(identity.seed))
    ownKeys.set(identity, key)
  }
  return key
}

/**
 * Opens a key sealed to `identity` by {@link sealKey}.
 *
 * @throws {DecryptionError} when it was sealed to someone else or any input changed
 */
export async function openKey(
  identity: Identity,
  sealed: SealedKey,
  info: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  try {
    const plaintext = await suite.open(
      { recipientKey: await ownPrivateKey(identity), enc: sealed.enc, info },
      sealed.ct,
      aad,
    )
    return new Uint8Array(plaintext)
  } catch {
    throw new DecryptionError('sealed key does not open with this identity')
  }
}
