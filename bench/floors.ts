/**
 * Floors: the bare node:crypto work a figure cannot do without, with every key object made up front.
 * p2pchat's own wrappers are deliberately not used here, so a slow wrapper shows in the ratio.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto'

const TAG = 16
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** An Ed25519 key pair for floors that sign or verify. */
export function ed25519KeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519')
}

/** The verifying key of a raw 32-byte Ed25519 public key. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' })
}

/** One Ed25519 signature over `message`. */
export function ed25519Sign(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return sign(null, message, privateKey)
}

/** One Ed25519 verification. */
export function ed25519Verify(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  return verify(null, message, publicKey, signature)
}

/**
 * A ChaCha20-Poly1305 key as node:crypto holds it, made up front: the cipher then skips the key import
 * that raw bytes cost per call (p2pchat makes one per epoch key).
 */
export function chachaKey(): KeyObject {
  return createSecretKey(randomBytes(32))
}

/** ChaCha20-Poly1305 encryption, tag appended. */
export function chachaEncrypt(
  key: KeyObject,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
  cipher.setAAD(aad, { plaintextLength: plaintext.length })
  const body = cipher.update(plaintext)
  cipher.final()
  return Buffer.concat([body, cipher.getAuthTag()])
}

/** ChaCha20-Poly1305 decryption of {@link chachaEncrypt}'s output. */
export function chachaDecrypt(
  key: KeyObject,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
  decipher.setAAD(aad, { plaintextLength: sealed.length - TAG })
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG))
  const body = decipher.update(sealed.subarray(0, sealed.length - TAG))
  decipher.final()
  return body
}

/** X25519 public keys standing for recipients. */
export function x25519Recipients(n: number): KeyObject[] {
  return Array.from({ length: n }, () => generateKeyPairSync('x25519').publicKey)
}

/**
 * Seals a 32-byte key to each recipient with the least HPKE-shaped work: a fresh X25519 key pair, one
 * DH, one HKDF, one AES-256-GCM encryption. (HPKE proper adds a few HMACs of key schedule.)
 */
export function sealToEach(recipients: readonly KeyObject[], key: Uint8Array, aad: Uint8Array): number {
  let bytes = 0
  for (const recipient of recipients) {
    const ephemeral = generateKeyPairSync('x25519')
    const enc = Buffer.from(ephemeral.publicKey.export({ format: 'jwk' }).x as string, 'base64url')
    const secret = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient })
    const okm = Buffer.from(hkdfSync('sha256', secret, enc, 'floor', 44))
    const cipher = createCipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32), {
      authTagLength: TAG,
    })
    cipher.setAAD(aad)
    bytes += cipher.update(key).length + cipher.final().length + cipher.getAuthTag().length
  }
  return bytes
}

/** A sealed key and the private key that opens it, for {@link openOne}. */
export interface FloorSeal {
  privateKey: KeyObject
  enc: Buffer
  ct: Buffer
  aad: Uint8Array
}

/** A 32-byte key sealed the {@link sealToEach} way, to a fresh recipient. */
export function floorSeal(aad: Uint8Array): FloorSeal {
  const recipient = generateKeyPairSync('x25519')
  const ephemeral = generateKeyPairSync('x25519')
  const enc = Buffer.from(ephemeral.publicKey.export({ format: 'jwk' }).x as string, 'base64url')
  const secret = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient.publicKey })
  const okm = Buffer.from(hkdfSync('sha256', secret, enc, 'floor', 44))
  const cipher = createCipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32), { authTagLength: TAG })
  cipher.setAAD(aad)
  const ct = Buffer.concat([cipher.update(randomBytes(32)), cipher.final(), cipher.getAuthTag()])
  return { privateKey: recipient.privateKey, enc, ct, aad }
}

/** Opens a {@link floorSeal}: import the encapsulated key, one DH, one HKDF, one AES-256-GCM decryption. */
export function openOne(sealed: FloorSeal): Buffer {
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_X25519_PREFIX, sealed.enc]),
    format: 'der',
    type: 'spki',
  })
  const secret = diffieHellman({ privateKey: sealed.privateKey, publicKey })
  const okm = Buffer.from(hkdfSync('sha256', secret, sealed.enc, 'floor', 44))
  const decipher = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32), {
    authTagLength: TAG,
  })
  decipher.setAAD(sealed.aad)
  decipher.setAuthTag(sealed.ct.subarray(sealed.ct.length - TAG))
  const body = decipher.update(sealed.ct.subarray(0, sealed.ct.length - TAG))
  decipher.final()
  return body
}
