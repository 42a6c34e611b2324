/** The bytes are not a valid signature by the claimed key for this domain. */
export class InvalidSignatureError extends Error {
  static override readonly name = 'InvalidSignatureError'
  override readonly name = 'InvalidSignatureError'
  constructor(message = 'signature does not verify') {
    super(message)
  }
}

/** A member id is not an Ed25519 libp2p peer id, so it cannot sign or receive keys. */
export class InvalidMemberIdError extends Error {
  static override readonly name = 'InvalidMemberIdError'
  override readonly name = 'InvalidMemberIdError'
  constructor(message = 'member id is not an Ed25519 peer id') {
    super(message)
  }
}

/** Authenticated decryption failed: wrong key, or the ciphertext or its associated data was changed. */
export class DecryptionError extends Error {
  static override readonly name = 'DecryptionError'
  override readonly name = 'DecryptionError'
  constructor(message = 'ciphertext does not authenticate') {
    super(message)
  }
}

/** An X25519 public key of low order: Diffie-Hellman with it gives no shared secret (RFC 9180 §7.1.4). */
export class InvalidKeyError extends Error {
  static override readonly name = 'InvalidKeyError'
  override readonly name = 'InvalidKeyError'
  constructor(message = 'X25519 public key is of low order') {
    super(message)
  }
}
