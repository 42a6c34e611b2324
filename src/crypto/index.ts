/**
 * Every cryptographic operation p2pchat performs lives here, as thin wrappers over standard,
 * well-kept implementations: node:crypto (Ed25519, ChaCha20-Poly1305, HKDF, SHA-256) and @hpke/core
 * (RFC 9180) for sealing group keys. Nothing here invents a primitive.
 *
 * @packageDocumentation
 */
export { aeadDecrypt, aeadEncrypt, hkdf, KEY_LENGTH, NONCE_LENGTH, randomKey, randomNonce } from './aead.js'
export { DecryptionError, InvalidMemberIdError, InvalidSignatureError } from './errors.js'
export { cidOf, sha256 } from './hash.js'
export type { SealedKey, SealKeyOptions } from './hpke.js'
export { openKey, sealKey } from './hpke.js'
export type { SignatureDomain } from './identity.js'
export {
  ed25519KeyOfMemberId,
  Identity,
  MEMBER_ID_BYTES,
  publicKeyOfMember,
  verifySignature,
} from './identity.js'
