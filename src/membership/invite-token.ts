/**
 * Invite tokens: the capability behind an invite that admits on its own, while its inviter is offline.
 *
 * A token is signed by the inviting member and names the group, an expiry, and the public half of a
 * one-time key. The invite carries the token and that key's secret; the joiner proves possession of the
 * secret by signing its own member id with it, so a token seen on the wire (in a join request, or in
 * the add that used it) cannot be presented again by anyone else under their own identity. Any member
 * that checks the token adds the joiner with it: the add carries the token and the proof, so every
 * replica can tell which token an add used, and who made it.
 *
 * What replicas rule (see docs/ARCHITECTURE.md, "Invite tokens"):
 * - an add whose token was used by an add in its causal past is refused ({@link InviteTokenUses});
 * - of concurrent adds with one token, only the one with the lowest event id counts
 *   ({@link losesTokenRace});
 * - an add whose inviter is not a member in its causal past is refused, and one whose inviter would not
 *   count as its author (removed concurrently with it, or brought in by a voided add) does not count.
 *
 * @packageDocumentation
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { cidOf, type Identity, isEd25519MemberId, verifySignature } from '../crypto/index.js'
import { InvalidInviteTokenError } from './errors.js'
import type { SignedEvent } from './event.js'
import { cidString, ed25519MemberIdString } from './id-strings.js'
import type { Ancestry, LogEntry } from './resolution.js'

/** How long an invite admits, unless its inviter says otherwise: 7 days. */
export const DEFAULT_INVITE_TTL_MS = 7 * 24 * 60 * 60 * 1000
/** Upper bound on an encoded token (the real ones are ~200 bytes). */
const MAX_TOKEN_BYTES = 512
/** Upper bound on an encoded use: a token and a proof. */
export const MAX_INVITE_USE_BYTES = MAX_TOKEN_BYTES + 96
const TOKEN_FIELDS = ['g', 'i', 'k', 'n', 'x']

/** A decoded, signature-checked invite token. */
export interface InviteToken {
  /** The token's id: the CID of its signed payload. */
  id: string
  /** The group it admits to. */
  group: string
  /** The member who signed it, as a peer id string. */
  inviter: string
  /** The public half of the one-time key, as Ed25519 member id bytes. */
  key: Uint8Array
  /** When it stops admitting, in ms since 1970, by the admitting member's clock. */
  expiresAt: number
  /** The token as signed: `{p: payload, s: signature}` in DAG-CBOR. */
  bytes: Uint8Array
}

/** What {@link signInviteToken} signs. */
export interface InviteTokenInit {
  group: string
  /** Public half of the one-time key, as member id bytes (`Identity.memberIdBytes`). */
  key: Uint8Array
  expiresAt: number
  /** 16 bytes; makes tokens with the same fields distinct. */
  nonce: Uint8Array
}

function invalid(reason: string): never {
  throw new InvalidInviteTokenError(`invalid invite token: ${reason}`)
}

function decodeMap(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch {
    invalid(`${what} is not one DAG-CBOR value`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(`${what} is not a map`)
  // one encoding per value, so one token has one id and one byte string
  if (Buffer.compare(dagCbor.encode(value), bytes) !== 0) invalid(`${what} is not canonical`)
  return value as Record<string, unknown>
}

/** Signs a token for `init.group` as `inviter`; returns its bytes. */
export function signInviteToken(inviter: Identity, init: InviteTokenInit): Uint8Array {
  const payload = dagCbor.encode({
    g: CID.parse(init.group),
    i: inviter.memberIdBytes,
    k: init.key,
    n: init.nonce,
    x: init.expiresAt,
  })
  return dagCbor.encode({ p: payload, s: inviter.sign('invite-token', payload) })
}

/**
 * Decodes a token strictly (exact fields, canonical DAG-CBOR) and checks its inviter's signature.
 *
 * @throws {InvalidInviteTokenError}
 */
export function decodeInviteToken(bytes: Uint8Array): InviteToken {
  if (bytes.length > MAX_TOKEN_BYTES) invalid('too large')
  const outer = decodeMap(bytes, 'the token')
  const { p, s } = outer
  if (Object.keys(outer).length !== 2 || !(p instanceof Uint8Array) || !(s instanceof Uint8Array))
    invalid('not a signed token')
  const fields = decodeMap(p, 'its content')
  const keys = Object.keys(fields).sort()
  if (keys.length !== TOKEN_FIELDS.length || keys.some((k, i) => k !== TOKEN_FIELDS[i]))
    invalid('other fields than a token')
  const group = CID.asCID(fields.g)
  const { i, k, n, x } = fields
  if (group === null) invalid('the group is not a CID')
  if (!(i instanceof Uint8Array) || !isEd25519MemberId(i)) invalid('the inviter is not an Ed25519 peer id')
  if (!(k instanceof Uint8Array) || !isEd25519MemberId(k)) invalid('the key is not an Ed25519 key')
  if (!(n instanceof Uint8Array) || n.length !== 16) invalid('bad nonce')
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x <= 0) invalid('bad expiry')
  try {
    verifySignature(i, 'invite-token', p, s)
  } catch {
    invalid('its signature does not match: forged or altered')
  }
  return {
    id: cidString(cidOf(p)),
    group: cidString(group),
    inviter: ed25519MemberIdString(i),
    key: k,
    expiresAt: x,
    bytes,
  }
}

function proofMessage(token: InviteToken, joiner: Uint8Array): Uint8Array {
  return dagCbor.encode([CID.parse(token.id), joiner])
}

/**
 * A use of `token` by `joiner` (member id bytes): the token and the joiner's proof that it holds the
 * token's one-time key, made with that key. This is what a join request presents and an add carries.
 */
export function useInviteToken(oneTimeKey: Identity, token: InviteToken, joiner: Uint8Array): Uint8Array {
  if (Buffer.compare(oneTimeKey.memberIdBytes, token.key) !== 0)
    invalid('this one-time key is not the token’s')
  const proof = oneTimeKey.sign('invite-proof', proofMessage(token, joiner))
  return dagCbor.encode({ t: token.bytes, u: proof })
}

/**
 * Decodes a use ({@link useInviteToken}) and checks it: the token's signature, its group, and that the
 * proof was made with the token's one-time key for `expected.joiner`. A token presented for another
 * identity than the one it was proved for is refused here.
 *
 * @throws {InvalidInviteTokenError}
 */
export function decodeInviteUse(
  bytes: Uint8Array,
  expected: { group: string; joiner: Uint8Array },
): InviteToken {
  if (bytes.length > MAX_INVITE_USE_BYTES) invalid('too large')
  const outer = decodeMap(bytes, 'the use')
  const { t, u } = outer
  if (Object.keys(outer).length !== 2 || !(t instanceof Uint8Array) || !(u instanceof Uint8Array))
    invalid('not a token and a proof')
  const token = decodeInviteToken(t)
  if (token.group !== expected.group) invalid(`it is for group ${token.group}`)
  try {
    verifySignature(token.key, 'invite-proof', proofMessage(token, expected.joiner), u)
  } catch {
    invalid('the joiner did not prove it holds the invite (a token taken from someone else)')
  }
  return token
}

const tokenOfEvent = new WeakMap<SignedEvent, InviteToken>()

/** The token an add used, if any; the event was checked when decoded, so this only reads it (once). */
export function inviteTokenOf(event: SignedEvent): InviteToken | undefined {
  const use = event.payload.invite
  if (use === undefined) return undefined
  let token = tokenOfEvent.get(event)
  if (token === undefined) {
    token = decodeInviteToken((dagCbor.decode(use) as { t: Uint8Array }).t)
    tokenOfEvent.set(event, token)
  }
  return token
}

/** The adds of a log that used a token, by token id: what a later use of the token is checked against. */
export class InviteTokenUses {
  readonly #uses = new Map<string, LogEntry[]>()

  /** Records an applied entry (only adds with a token are kept). */
  record(entry: LogEntry): void {
    const token = inviteTokenOf(entry.event)
    if (token === undefined) return
    const list = this.#uses.get(token.id)
    if (list === undefined) this.#uses.set(token.id, [entry])
    else list.push(entry)
  }

  /** Whether some add used `tokenId` in the causal past of an event with these `parents`. */
  usedBefore(tokenId: string, parents: readonly LogEntry[], ancestry: Ancestry): boolean {
    const uses = this.#uses.get(tokenId) ?? []
    return uses.some((use) => parents.some((p) => p === use || ancestry.precedes(use, p)))
  }

  /** Whether any add of the log used `tokenId`, counted or not. */
  used(tokenId: string): boolean {
    return this.#uses.has(tokenId)
  }
}

/**
 * Whether `entry` loses its token to another add of the set that used it concurrently: of concurrent
 * uses, only the one with the lowest event id counts, at every replica.
 */
export function losesTokenRace(
  entry: LogEntry,
  usesOf: ReadonlyMap<string, readonly LogEntry[]>,
  ancestry: Ancestry,
): boolean {
  const token = inviteTokenOf(entry.event)
  if (token === undefined) return false
  return (usesOf.get(token.id) ?? []).some(
    (other) => other.event.id < entry.event.id && ancestry.concurrent(other, entry),
  )
}
