/** Member ids (Ed25519 peer ids as bytes and strings) and display names, as events carry them. */
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidMemberIdError, isEd25519MemberId } from '../crypto/index.js'
import { ed25519MemberIdString } from './id-strings.js'

/** Upper bound on display names and group names, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64

const textEncoder = new TextEncoder()

/** Peer id string of member id bytes. */
export function memberIdToString(bytes: Uint8Array): string {
  // an Ed25519 peer id string is the base58btc of its multihash: no peer id parsing needed
  if (isEd25519MemberId(bytes)) return ed25519MemberIdString(bytes)
  return peerIdFromMultihash(Digest.decode(bytes)).toString()
}

/**
 * Member id bytes of a peer id string.
 *
 * @throws {InvalidMemberIdError} when it is not an Ed25519 peer id
 */
export function memberIdFromString(id: string): Uint8Array {
  try {
    const peerId = peerIdFromString(id)
    if (peerId.type !== 'Ed25519') throw new InvalidMemberIdError()
    return peerId.toMultihash().bytes
  } catch {
    throw new InvalidMemberIdError(`not an Ed25519 peer id: ${id.slice(0, 80)}`)
  }
}

/** True when `name` is a usable display or group name. */
export function isValidName(name: unknown): name is string {
  if (typeof name !== 'string' || name.trim().length === 0) return false
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name)) return false
  return textEncoder.encode(name).length <= MAX_NAME_BYTES
}
