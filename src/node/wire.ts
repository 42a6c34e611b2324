import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { type Identity, InvalidSignatureError, publicKeyOfMember, verifySignature } from '../crypto/index.js'
import {
  isValidName,
  MAX_ENVELOPE_BYTES,
  MAX_EVENT_BYTES,
  MAX_INVITE_USE_BYTES,
  memberIdToString,
} from '../membership/index.js'
import { MalformedFrameError } from './errors.js'

/** What travels on a group's gossipsub topic. */
export type GossipFrame =
  | { kind: 'event'; data: Uint8Array }
  | { kind: 'message'; data: Uint8Array }
  | { kind: 'join'; data: Uint8Array }

/** Largest gossip frame: an event plus framing. */
export const MAX_GOSSIP_BYTES = MAX_EVENT_BYTES + 1024
const MAX_JOIN_BYTES = 1024

/** The canonical spelling of a group id (a CID), or undefined if it is none. */
export function canonicalGroupId(groupId: string): string | undefined {
  try {
    return CID.parse(groupId).toString()
  } catch {
    return undefined
  }
}

export { topicOf } from './topics.js'

export function encodeGossip(frame: GossipFrame): Uint8Array {
  return dagCbor.encode({ k: frame.kind, d: frame.data })
}

/**
 * @throws {MalformedFrameError}
 */
export function decodeGossip(bytes: Uint8Array): GossipFrame {
  if (bytes.length > MAX_GOSSIP_BYTES)
    throw new MalformedFrameError(`gossip frame of ${bytes.length} bytes is too large`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch {
    throw new MalformedFrameError('gossip frame is not DAG-CBOR')
  }
  const v = value as Record<string, unknown>
  if (typeof v !== 'object' || v === null || Object.keys(v).length !== 2 || !(v.d instanceof Uint8Array)) {
    throw new MalformedFrameError('gossip frame is not {k, d}')
  }
  const limit =
    v.k === 'event'
      ? MAX_EVENT_BYTES
      : v.k === 'message'
        ? MAX_ENVELOPE_BYTES
        : v.k === 'join'
          ? MAX_JOIN_BYTES
          : -1
  if (limit < 0) throw new MalformedFrameError(`unknown gossip frame kind ${String(v.k)}`)
  if (v.d.length > limit) throw new MalformedFrameError(`${String(v.k)} of ${v.d.length} bytes is too large`)
  return { kind: v.k as GossipFrame['kind'], data: v.d }
}

/** A signed "please add me" announcement from a peer that is not a member. */
export interface JoinRequest {
  group: string
  peerId: string
  name: string
  ts: number
  /**
   * The invite token this peer presents, with its proof (membership's `useInviteToken`): any member
   * that checks it admits the peer. Absent when a member is to approve by hand.
   */
  invite?: Uint8Array
}

export function encodeJoinRequest(
  identity: Identity,
  group: string,
  name: string,
  ts = Date.now(),
  invite?: Uint8Array,
): Uint8Array {
  const fields = { v: 1, group: CID.parse(group), peer: identity.memberIdBytes, name, ts }
  const payload = dagCbor.encode(invite === undefined ? fields : { ...fields, invite })
  return dagCbor.encode({ payload, sig: identity.sign('join-request', payload) })
}

/**
 * @throws {MalformedFrameError | InvalidSignatureError}
 */
export function decodeJoinRequest(bytes: Uint8Array): JoinRequest {
  try {
    const outer = dagCbor.decode(bytes) as Record<string, unknown>
    if (!(outer.payload instanceof Uint8Array) || !(outer.sig instanceof Uint8Array)) throw new Error('shape')
    const p = dagCbor.decode(outer.payload) as Record<string, unknown>
    const group = CID.asCID(p.group)
    if (p.v !== 1 || group === null || !(p.peer instanceof Uint8Array) || !isValidName(p.name))
      throw new Error('shape')
    if (typeof p.ts !== 'number') throw new Error('shape')
    const { invite } = p
    if (invite !== undefined && (!(invite instanceof Uint8Array) || invite.length > MAX_INVITE_USE_BYTES))
      throw new Error('shape')
    publicKeyOfMember(p.peer)
    verifySignature(p.peer, 'join-request', outer.payload, outer.sig)
    const request = { group: group.toString(), peerId: memberIdToString(p.peer), name: p.name, ts: p.ts }
    return invite === undefined ? request : { ...request, invite }
  } catch (err) {
    if ((err as Error).name === InvalidSignatureError.name) throw err
    throw new MalformedFrameError('malformed join request')
  }
}
