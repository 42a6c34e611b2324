import { namedError } from '../named-error.js'

/** The bytes are not a valid signature by the claimed key for this domain. */
export class InvalidSignatureError extends namedError('InvalidSignatureError', 'signature does not verify') {}

/** A member id is not an Ed25519 libp2p peer id, so it cannot sign or receive keys. */
export class InvalidMemberIdError extends namedError('InvalidMemberIdError', 'not an Ed25519 peer id') {}

/** Authenticated decryption failed: wrong key, or the ciphertext or its associated data was changed. */
export class DecryptionError extends namedError('DecryptionError', 'ciphertext does not authenticate') {}

/** An X25519 public key of low order: Diffie-Hellman with it gives no shared secret (RFC 9180 §7.1.4). */
export class InvalidKeyError extends namedError('InvalidKeyError', 'X25519 public key is of low order') {}
