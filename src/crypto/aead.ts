import {
  type CipherGCMTypes,
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
  randomFillSync,
} from 'node:crypto'
import { DecryptionError } from './errors.js'

/** Length in bytes of a group key, of an AEAD key and of an AEAD nonce. */
export const KEY_LENGTH = 32
export const NONCE_LENGTH = 12
/** Length in bytes of an AEAD tag, appended to every ciphertext. */
export const TAG_LENGTH = 16
/** The AEAD of message bodies (aeadEncrypt, aeadDecrypt). */
export const MESSAGE_AEAD: AeadAlgorithm = 'chacha20-poly1305'

/** A fresh random 256-bit key. */
export function randomKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_LENGTH))
}

/**
 * Random bytes drawn from the CSPRNG in blocks: one `randomBytes` call per nonce cost a third of
 * sealing a message once the rest was fast. Each byte is handed out once.
 */
const noncePool = new Uint8Array(NONCE_LENGTH * 256)
let noncePoolAt = noncePool.length

/** A fresh random 96-bit nonce. */
export function randomNonce(): Uint8Array {
  if (noncePoolAt === noncePool.length) {
    randomFillSync(noncePool)
    noncePoolAt = 0
  }
  noncePoolAt += NONCE_LENGTH
  return noncePool.slice(noncePoolAt - NONCE_LENGTH, noncePoolAt)
}

/**
 * A key as node:crypto holds it. Made once per key and passed to {@link aeadEncrypt} and
 * {@link aeadDecrypt}, it saves the key import that raw bytes cost on every call (two thirds of a
 * 200-byte message's encryption).
 */
export function aeadKey(key: Uint8Array): KeyObject {
  return createSecretKey(key)
}

/** An AEAD key: raw bytes, or made once with {@link aeadKey}. */
export type AeadKey = Uint8Array | KeyObject

/**
 * The key as a KeyObject for `createCipheriv`/`createDecipheriv`: given raw bytes, node:crypto (v24)
 * checks them against every key type it knows before using them, which costs three times as much as
 * making a KeyObject first (17 against 5 µs an AES-256-GCM seal of 32 bytes, in the 1,000-member rekey).
 */
function asKeyObject(key: AeadKey): KeyObject {
  return key instanceof Uint8Array ? createSecretKey(key) : key
}

/** HKDF-SHA256 (RFC 5869), for deriving single-purpose keys from a group key. */
export function hkdf(ikm: Uint8Array, info: string, length = KEY_LENGTH): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, new Uint8Array(0), info, length))
}

/** The AEADs p2pchat uses: ChaCha20-Poly1305 for messages, AES-256-GCM inside HPKE (hpke.ts). */
export type AeadAlgorithm = 'chacha20-poly1305' | 'aes-256-gcm'

/** Encryption with `algorithm`; the 16-byte tag is appended to the ciphertext. */
export function aeadSeal(
  algorithm: AeadAlgorithm,
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_LENGTH)
  aeadSealInto(algorithm, key, nonce, plaintext, aad, out, 0)
  return out
}

/**
 * {@link aeadSeal} writing ciphertext and tag straight into `out` from `at` on (`plaintext.length` +
 * {@link TAG_LENGTH} bytes), for a caller that frames them: one buffer and one copy fewer per message.
 */
export function aeadSealInto(
  algorithm: AeadAlgorithm,
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  out: Uint8Array,
  at: number,
): void {
  // one overload per AEAD family in @types/node, and both take the same options
  const cipher = createCipheriv(algorithm as CipherGCMTypes, asKeyObject(key), nonce, {
    authTagLength: TAG_LENGTH,
  })
  cipher.setAAD(aad, { plaintextLength: plaintext.length })
  const body = cipher.update(plaintext)
  out.set(body, at)
  // a stream cipher: nothing is held back for final()
  out.set(cipher.final(), at + body.length)
  out.set(cipher.getAuthTag(), at + plaintext.length)
}

/**
 * Decryption with `algorithm`.
 *
 * @throws {DecryptionError} when the key is wrong or any byte of ciphertext, tag or `aad` changed
 */
export function aeadOpen(
  algorithm: AeadAlgorithm,
  key: AeadKey,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  if (ciphertext.length < TAG_LENGTH || nonce.length !== NONCE_LENGTH) throw new DecryptionError()
  try {
    const decipher = createDecipheriv(algorithm as CipherGCMTypes, asKeyObject(key), nonce, {
      authTagLength: TAG_LENGTH,
    })
    decipher.setAAD(aad, { plaintextLength: ciphertext.length - TAG_LENGTH })
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_LENGTH))
    const body = decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_LENGTH))
    decipher.final()
    return new Uint8Array(body)
  } catch {
    throw new DecryptionError()
  }
}

/** ChaCha20-Poly1305 (RFC 8439) encryption; the 16-byte tag is appended to the ciphertext. */
export function aeadEncrypt(
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return aeadSeal(MESSAGE_AEAD, key, nonce, plaintext, aad)
}

/**
 * ChaCha20-Poly1305 decryption.
 *
 * @throws {DecryptionError} when the key is wrong or any byte of ciphertext, tag or `aad` changed
 */
export function aeadDecrypt(
  key: AeadKey,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return aeadOpen(MESSAGE_AEAD, key, nonce, ciphertext, aad)
}
