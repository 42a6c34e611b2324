/**
 * Every cryptographic operation p2pchat performs lives here, as thin wrappers over node:crypto
 * (Ed25519, X25519, ChaCha20-Poly1305, AES-256-GCM, HKDF, SHA-256). Group keys are sealed with RFC 9180
 * HPKE, composed in hpke.ts from those primitives for its one suite and checked against the RFC's test
 * vectors. Nothing here invents a primitive.
 *
 * @packageDocumentation
 */
export type { AeadKey } from './aead.js'
export {
  aeadDecrypt,
  aeadEncrypt,
  aeadKey,
  aeadSealInto,
  hkdf,
  KEY_LENGTH,
  MESSAGE_AEAD,
  NONCE_LENGTH,
  randomKey,
  randomNonce,
  TAG_LENGTH,
} from './aead.js'
export { DecryptionError, InvalidKeyError, InvalidMemberIdError, InvalidSignatureError } from './errors.js'
export { cidOf, cidStringOf, sha256 } from './hash.js'
export type { SealedKey, SealKeyOptions } from './hpke.js'
export { openKey, sealKey } from './hpke.js'
export type { SignatureDomain, SignedMessage } from './identity.js'
export {
  ed25519KeyOfMemberId,
  Identity,
  isEd25519MemberId,
  MEMBER_ID_BYTES,
  publicKeyOfMember,
  verifySignature,
} from './identity.js'
export { bytesKey } from './member-cache.js'
