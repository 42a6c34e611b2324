import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import {
  generateKeyPair,
  privateKeyFromProtobuf,
  privateKeyFromRaw,
  privateKeyToProtobuf,
} from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { peerIdFromMultihash, peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidKeyError, InvalidMemberIdError, InvalidSignatureError } from './errors.js'
import { perMember } from './member-cache.js'

/**
 * What a signature is for. The domain is part of the signed bytes, so a signature made for one kind of
 * object never verifies as another kind (an `add` cannot be replayed as a `remove`, an event as a message).
 */
export type SignatureDomain =
  | 'event:genesis'
  | 'event:add'
  | 'event:remove'
  | 'event:rekey'
  | 'event:rename'
  | 'envelope'
  | 'join-request'
  | 'invite'
  | 'invite-token'
  | 'invite-proof'

const SIGNATURE_VERSION = 'p2pchat/v1/'
const encoder = new TextEncoder()
const domainPrefixes = new Map<SignatureDomain, Uint8Array>()

function domainPrefix(domain: SignatureDomain): Uint8Array {
  let prefix = domainPrefixes.get(domain)
  if (prefix === undefined) {
    // "p2pchat/v1/<domain>" then a zero byte: no domain is a prefix of another.
    prefix = encoder.encode(`${SIGNATURE_VERSION}${domain}\u0000`)
    domainPrefixes.set(domain, prefix)
  }
  return prefix
}

/**
 * What is signed: a message, or the parts it is made of in order. Parts are joined into the one
 * buffer that also takes the domain prefix, so a message cut from other bytes is copied once.
 */
export type SignedMessage = Uint8Array | readonly Uint8Array[]

function signedBytes(domain: SignatureDomain, message: SignedMessage): Uint8Array {
  const prefix = domainPrefix(domain)
  const parts = message instanceof Uint8Array ? [message] : message
  let length = prefix.length
  for (const part of parts) length += part.length
  // only handed to node:crypto and dropped: a slice of Buffer's pool spares an allocation of its own
  const out = Buffer.allocUnsafe(length)
  out.set(prefix, 0)
  let at = prefix.length
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

// DER wrappers that let node:crypto (OpenSSL) use raw Ed25519 keys: PKCS#8 for the 32-byte seed,
// SPKI for the 32-byte public key (RFC 8410).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** The raw 32-byte Ed25519 public key inside a member id (an identity-multihash peer id). */
export function publicKeyOfMember(memberId: Uint8Array | string): Uint8Array {
  let peerId: PeerId
  try {
    peerId =
      typeof memberId === 'string' ? peerIdFromString(memberId) : peerIdFromMultihash(Digest.decode(memberId))
  } catch {
    throw new InvalidMemberIdError()
  }
  if (peerId.type !== 'Ed25519') throw new InvalidMemberIdError()
  return peerId.publicKey.raw
}

/**
 * How every Ed25519 member id is spelled: an identity multihash (code 0x00, length 36) of the libp2p
 * protobuf `PublicKey { Type: Ed25519 (1), Data: <32 bytes> }`.
 */
const ED25519_MEMBER_ID_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)
/** Length of an Ed25519 member id in bytes: the prefix and the 32-byte key. */
export const MEMBER_ID_BYTES = ED25519_MEMBER_ID_PREFIX.length + 32

/**
 * The raw Ed25519 key inside member id bytes, read by comparing a fixed prefix: no peer id or protobuf
 * parsing. Signature checks use it, so input from the network is checked before anything costly is
 * parsed. It accepts only the one canonical spelling every peer id has (as `PeerId.toMultihash()` writes
 * it), so one key has one member id.
 *
 * @throws {InvalidMemberIdError} when the bytes are not that spelling
 */
export function ed25519KeyOfMemberId(memberId: Uint8Array): Uint8Array {
  if (!isEd25519MemberId(memberId)) throw new InvalidMemberIdError()
  return memberId.subarray(ED25519_MEMBER_ID_PREFIX.length)
}

/**
 * Whether `memberId` is an Ed25519 member id in its one canonical spelling (see
 * {@link ed25519KeyOfMemberId}): a length and prefix comparison, no peer id parsing. Decoders check every
 * member id they read with it.
 */
export function isEd25519MemberId(memberId: Uint8Array): boolean {
  if (memberId.length !== MEMBER_ID_BYTES) return false
  for (let i = 0; i < ED25519_MEMBER_ID_PREFIX.length; i++) {
    if (memberId[i] !== ED25519_MEMBER_ID_PREFIX[i]) return false
  }
  return true
}

/** The node:crypto verify key of a member, kept for the members seen last. */
const verifyKeyFor = perMember(
  (memberId): KeyObject =>
    createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, ed25519KeyOfMemberId(memberId)]),
      format: 'der',
      type: 'spki',
    }),
)

/**
 * Verifies an Ed25519 signature by `memberId` over `message` (or its parts, in order) in `domain`.
 *
 * @throws {InvalidSignatureError} when it does not verify
 * @throws {InvalidMemberIdError} when `memberId` is not an Ed25519 peer id in its canonical spelling
 */
export function verifySignature(
  memberId: Uint8Array,
  domain: SignatureDomain,
  message: SignedMessage,
  signature: Uint8Array,
): void {
  if (signature.length !== 64) throw new InvalidSignatureError('signature must be 64 bytes')
  const ok = verify(null, signedBytes(domain, message), verifyKeyFor(memberId), signature)
  if (!ok) throw new InvalidSignatureError()
}

/**
 * A member's identity: the libp2p Ed25519 peer key. Its member id is the peer id; display names are
 * only labels carried in signed events.
 *
 * @example
 * ```ts
 * const alice = await Identity.generate()
 * const sig = alice.sign('envelope', bytes)
 * verifySignature(alice.memberIdBytes, 'envelope', bytes, sig)
 * ```
 */
export class Identity {
  /** The libp2p private key, handed to libp2p so the peer id and the member id are one. */
  readonly privateKey: Ed25519PrivateKey
  readonly peerId: PeerId
  /** The peer id string, e.g. `12D3KooW…`. */
  readonly memberId: string
  /** The peer id as multihash bytes: the compact form used inside signed events and envelopes. */
  readonly memberIdBytes: Uint8Array
  readonly #signingKey: KeyObject

  constructor(privateKey: Ed25519PrivateKey) {
    this.privateKey = privateKey
    this.peerId = peerIdFromPrivateKey(privateKey)
    this.memberId = this.peerId.toString()
    this.memberIdBytes = this.peerId.toMultihash().bytes
    this.#signingKey = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, privateKey.raw.subarray(0, 32)]),
      format: 'der',
      type: 'pkcs8',
    })
  }

  /** A fresh random identity. */
  static async generate(): Promise<Identity> {
    return new Identity(await generateKeyPair('Ed25519'))
  }

  /** The identity of a 32-byte Ed25519 seed: a one-time key an invite carries as its seed. */
  static fromSeed(seed: Uint8Array): Identity {
    if (seed.length !== 32) throw new InvalidKeyError('an Ed25519 seed is 32 bytes')
    const key = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
      format: 'der',
      type: 'pkcs8',
    })
    const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
    const raw = Buffer.concat([seed, spki.subarray(SPKI_ED25519_PREFIX.length)])
    return new Identity(privateKeyFromRaw(raw) as Ed25519PrivateKey)
  }

  /** Restores an identity from the libp2p protobuf encoding written by {@link Identity.toProtobuf}. */
  static fromProtobuf(bytes: Uint8Array): Identity {
    const key = privateKeyFromProtobuf(bytes)
    if (key.type !== 'Ed25519') throw new InvalidMemberIdError('identity key must be Ed25519')
    return new Identity(key)
  }

  /** The private key in libp2p's protobuf encoding, for the key file. */
  toProtobuf(): Uint8Array {
    return privateKeyToProtobuf(this.privateKey)
  }

  /** The 32-byte Ed25519 seed; the X25519 key for sealed group keys derives from it. */
  get seed(): Uint8Array {
    return this.privateKey.raw.subarray(0, 32)
  }

  /** Signs `message` for `domain` (see {@link SignatureDomain}). */
  sign(domain: SignatureDomain, message: SignedMessage): Uint8Array {
    const sig = sign(null, signedBytes(domain, message), this.#signingKey)
    // node returns the signature in a buffer of its own: take it without a copy (copy one from a pool)
    if (sig.byteLength !== sig.buffer.byteLength) return new Uint8Array(sig)
    return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)
  }
}
