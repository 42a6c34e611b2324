/**
 * Invites: one copy-pasteable line, signed by the member who made it, that names a group, its founder,
 * the inviter, and where the inviter listens.
 *
 * The group id is the CID of the group's genesis, so the founder and the group name are fixed by the id.
 * An invite only claims them, and the claim is checked once the genesis arrives. The
 * signature makes the inviter answerable for the claim: nobody can alter an invite on its way, and an
 * inviter who lies is caught by the genesis ({@link forgedClaim}).
 *
 * @packageDocumentation
 */
import * as dagCbor from '@ipld/dag-cbor'
import { isLoopback } from '@libp2p/utils'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { Identity, publicKeyOfMember, verifySignature } from '../crypto/index.js'
import {
  decodeInviteToken,
  InvalidArgumentError,
  type InviteToken,
  isValidName,
  memberIdFromString,
  memberIdToString,
} from '../membership/index.js'
import { InvalidInviteError } from './errors.js'

/** How every invite of this format starts; the digit is the format version. */
export const INVITE_PREFIX = 'p2pchat2:'
/** Prefixes of earlier, unsigned formats: recognised only to say that they are out of date. */
const OLD_INVITE_PREFIXES = ['p2pchat1:']
/**
 * Most addresses an invite carries: enough for a few interfaces and a relay, few enough that the invite
 * stays one pasteable line.
 */
export const MAX_INVITE_ADDRS = 4
/** Longest invite text accepted: well above the longest real one (three 64-byte names, 4 addresses). */
const MAX_INVITE_CHARS = 4096
const PAYLOAD_FIELDS = ['a', 'f', 'g', 'i', 'n', 'fn', 'in'].sort()
const CODE_P2P = 421
const CODE_P2P_CIRCUIT = 290

/** A peer as an invite names it. */
export interface InvitePeer {
  peerId: string
  name: string
}

/** What an invite says: the group to join, who founded it, who invites, and where the inviter was. */
export interface Invite {
  groupId: string
  /** The group's name, as the inviter claims it. */
  groupName: string
  /** The group's founder, as the inviter claims it; the genesis confirms or refutes it. */
  founder: InvitePeer
  /** The member who made and signed the invite. */
  inviter: InvitePeer
  /** Multiaddrs, each ending in `/p2p/<inviter>`, where the inviter listens; dialled on join. */
  addrs: string[]
  /**
   * An invite that admits on its own: the token (signed by the inviter) any member checks and admits
   * with, and the seed of its one-time key, with which the joiner proves it holds the invite. Absent in
   * an invite made with `--ask`, which a member approves by hand.
   */
  admits?: InviteAdmits
}

/** The capability part of an invite that admits on its own; see {@link Invite.admits}. */
export interface InviteAdmits {
  token: InviteToken
  /** 32 bytes: the one-time key's seed (a secret: whoever holds the invite holds it). */
  seed: Uint8Array
}

/** What a group's genesis fixes, and an invite claims: the group's name and its founder. */
export interface GroupOrigin {
  groupName: string
  founder: InvitePeer
}

/**
 * Encodes `invite`, signed by its inviter, as one line for `--join`. Of `invite.addrs` it keeps at most
 * {@link MAX_INVITE_ADDRS}, leaving out loopback addresses when there are others (an invite goes to
 * another host) and the `/p2p/<inviter>` suffix (the inviter id is already in the invite).
 *
 * @throws {InvalidArgumentError} `signer` is not `invite.inviter`, or a name or id is not valid
 *
 * @example
 * ```ts
 * const text = encodeInvite(alice, {
 *   groupId, groupName: 'team',
 *   founder: { peerId: alice.memberId, name: 'alice' },
 *   inviter: { peerId: alice.memberId, name: 'alice' },
 *   addrs: node.addrs(),
 * })
 * decodeInvite(text).inviter.name // 'alice'
 * ```
 */
export function encodeInvite(signer: Identity, invite: Invite): string {
  if (invite.inviter.peerId !== signer.memberId) {
    throw new InvalidArgumentError(
      `an invite by ${invite.inviter.peerId} cannot be signed by ${signer.memberId}`,
    )
  }
  for (const name of [invite.groupName, invite.founder.name, invite.inviter.name]) {
    if (!isValidName(name)) throw new InvalidArgumentError(`not a valid name for an invite: ${name}`)
  }
  const payload = dagCbor.encode({
    g: CID.parse(invite.groupId),
    n: invite.groupName,
    f: memberIdFromString(invite.founder.peerId),
    fn: invite.founder.name,
    i: signer.memberIdBytes,
    in: invite.inviter.name,
    a: inviteAddrs(invite.addrs, signer.memberId).map((a) => a.bytes),
  })
  const signed = { p: payload, s: signer.sign('invite', payload) }
  const { admits } = invite
  if (admits !== undefined && admits.token.inviter !== signer.memberId)
    throw new InvalidArgumentError('an invite carries only its own inviter’s token')
  const bytes = dagCbor.encode(
    admits === undefined ? signed : { ...signed, t: admits.token.bytes, k: admits.seed },
  )
  return INVITE_PREFIX + Buffer.from(bytes).toString('base64url')
}

/**
 * Which of a node's addresses go into its invite, without the `/p2p/<inviter>` suffix: see
 * {@link encodeInvite}. When there are more than fit, direct and relayed addresses are taken in turn,
 * so neither kind crowds out the other; the order stays the node's.
 */
function inviteAddrs(addrs: readonly string[], inviter: string): Multiaddr[] {
  const candidates: Array<{ addr: Multiaddr; relayed: boolean }> = []
  const seen = new Set<string>()
  for (const text of addrs) {
    let components: ReturnType<Multiaddr['getComponents']>
    try {
      components = multiaddr(text).getComponents()
    } catch {
      continue
    }
    const last = components.at(-1)
    if (last?.code === CODE_P2P) {
      // someone else's address (a relay's, say) is no way to reach the inviter
      if (last.value !== inviter) continue
      components = components.slice(0, -1)
    }
    if (!isDialableWithoutPeerId(components)) continue
    const addr = multiaddr(components)
    if (seen.has(addr.toString())) continue
    seen.add(addr.toString())
    candidates.push({ addr, relayed: components.some((c) => c.code === CODE_P2P_CIRCUIT) })
  }
  // a loopback address (or a circuit through a relay on loopback) reaches only this host
  const remote = candidates.filter((c) => !isLoopback(c.addr))
  const reachable = remote.length > 0 ? remote : candidates
  const kinds = [reachable.filter((c) => !c.relayed), reachable.filter((c) => c.relayed)]
  const picked = new Set<(typeof candidates)[number]>()
  for (let i = 0; picked.size < Math.min(MAX_INVITE_ADDRS, reachable.length); i++) {
    for (const kind of kinds) {
      const candidate = kind[i]
      if (candidate !== undefined && picked.size < MAX_INVITE_ADDRS) picked.add(candidate)
    }
  }
  return reachable.filter((c) => picked.has(c)).map((c) => c.addr)
}

/**
 * Whether an address, once `/p2p/<inviter>` is added back, is one to dial: it names no peer at its end,
 * and a circuit names its relay (a circuit through an unnamed relay cannot be dialled).
 */
function isDialableWithoutPeerId(components: ReturnType<Multiaddr['getComponents']>): boolean {
  if (components.length === 0 || components.at(-1)?.code === CODE_P2P) return false
  return components.every((c, i) => c.code !== CODE_P2P_CIRCUIT || components[i - 1]?.code === CODE_P2P)
}

function damaged(reason: string): InvalidInviteError {
  return new InvalidInviteError(
    `the invite is damaged (${reason}): copy it again in full, as one line, or ask the inviter for a new one`,
  )
}

function isMemberId(value: unknown): value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length > 64) return false
  try {
    publicKeyOfMember(value)
    return true
  } catch {
    return false
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0
}

/**
 * Decodes and checks an invite: prefix, exact base64url, canonical DAG-CBOR with exactly the expected
 * fields and nothing after them, valid names, ids and addresses, and the inviter's signature. What it
 * returns is what the inviter signed; whether the inviter told the truth about the founder is checked
 * against the genesis later ({@link forgedClaim}).
 *
 * @throws {InvalidInviteError} with a one-line message that says what to do
 */
export function decodeInvite(text: string): Invite {
  const token = text.trim()
  if (token.length > MAX_INVITE_CHARS) {
    throw new InvalidInviteError(
      `that is ${token.length} characters, longer than any invite: copy only the line that starts with ${INVITE_PREFIX}`,
    )
  }
  if (!token.startsWith(INVITE_PREFIX)) {
    const old = OLD_INVITE_PREFIXES.find((prefix) => token.startsWith(prefix))
    throw new InvalidInviteError(
      old === undefined
        ? `that is not an invite: an invite starts with ${INVITE_PREFIX}`
        : `that invite (${old}) is from an older p2pchat and carries no signature: ask a member running this version for a new one`,
    )
  }
  const body = token.slice(INVITE_PREFIX.length)
  const stray = /[^A-Za-z0-9_-]/.exec(body)
  if (stray !== null) {
    throw damaged(
      `unexpected ${/\s/.test(stray[0]) ? 'space' : 'character'} at position ${INVITE_PREFIX.length + stray.index + 1}`,
    )
  }
  const bytes = Buffer.from(body, 'base64url')
  // Node's decoder skips what it cannot use; only an exact round trip shows nothing was lost or added
  if (bytes.toString('base64url') !== body) throw damaged('it is cut off, or has extra characters at its end')
  const { payload, sig, token: tokenBytes, seed } = decodeOuter(new Uint8Array(bytes))
  const invite = decodePayload(payload)
  const altered = new InvalidInviteError(
    'the invite does not match its signature: it was changed after it was made; do not use it, ask the inviter for a new one',
  )
  try {
    verifySignature(memberIdFromString(invite.inviter.peerId), 'invite', payload, sig)
  } catch {
    throw altered
  }
  if (tokenBytes === undefined || seed === undefined) return invite
  let admits: InviteAdmits
  try {
    admits = { token: decodeInviteToken(tokenBytes), seed }
  } catch {
    throw altered
  }
  const { group, inviter, key } = admits.token
  if (group !== invite.groupId || inviter !== invite.inviter.peerId) throw altered
  if (!sameBytes(Identity.fromSeed(seed).memberIdBytes, key)) throw altered
  return { ...invite, admits }
}

/** A DAG-CBOR map, decoded strictly: anything after the value, or a non-canonical form, fails. */
function decodeMap(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch {
    throw damaged(`${what} is not one DAG-CBOR value, or has more after its end`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw damaged(`${what} is not a map`)
  return value as Record<string, unknown>
}

/** The outer map: `{p, s}`, or `{k, p, s, t}` for an invite that admits on its own. */
function decodeOuter(bytes: Uint8Array): {
  payload: Uint8Array
  sig: Uint8Array
  token?: Uint8Array
  seed?: Uint8Array
} {
  const v = decodeMap(bytes, 'it')
  const size = Object.keys(v).length
  const admits = size === 4 && v.t instanceof Uint8Array && v.k instanceof Uint8Array && v.k.length === 32
  if (
    (size !== 2 && !admits) ||
    !(v.p instanceof Uint8Array) ||
    !(v.s instanceof Uint8Array) ||
    v.s.length !== 64
  ) {
    throw damaged('it is not a signed invite')
  }
  const signed = { p: v.p, s: v.s }
  const parts = admits ? { ...signed, t: v.t as Uint8Array, k: v.k as Uint8Array } : signed
  if (!sameBytes(dagCbor.encode(parts), bytes)) throw damaged('it is not encoded canonically')
  return admits
    ? { payload: v.p, sig: v.s, token: v.t as Uint8Array, seed: v.k as Uint8Array }
    : { payload: v.p, sig: v.s }
}

function decodePayload(payload: Uint8Array): Invite {
  const p = decodeMap(payload, 'its content')
  const fields = Object.keys(p).sort()
  if (fields.length !== PAYLOAD_FIELDS.length || fields.some((f, i) => f !== PAYLOAD_FIELDS[i])) {
    throw damaged('its content has other fields than an invite')
  }
  const group = CID.asCID(p.g)
  if (group === null) throw damaged('the group id is not a CID')
  if (!isValidName(p.n) || !isValidName(p.fn) || !isValidName(p.in)) throw damaged('a name is not valid')
  if (!isMemberId(p.f) || !isMemberId(p.i)) throw damaged('a peer id is not valid')
  if (!Array.isArray(p.a)) throw damaged('the addresses are not a list')
  if (p.a.length > MAX_INVITE_ADDRS) throw damaged('too many addresses')
  const inviter = memberIdToString(p.i)
  const addrs = p.a.map((entry: unknown) => {
    let addr: Multiaddr
    try {
      if (!(entry instanceof Uint8Array)) throw new Error('not bytes')
      addr = multiaddr(entry)
    } catch {
      throw damaged('an address is not valid')
    }
    const components = addr.getComponents()
    if (!sameBytes(addr.bytes, entry as Uint8Array) || !isDialableWithoutPeerId(components)) {
      throw damaged('an address is not valid')
    }
    return multiaddr([...components, { code: CODE_P2P, name: 'p2p', value: inviter }]).toString()
  })
  if (!sameBytes(dagCbor.encode(p), payload)) throw damaged('its content is not encoded canonically')
  return {
    groupId: group.toString(),
    groupName: p.n,
    founder: { peerId: memberIdToString(p.f), name: p.fn },
    inviter: { peerId: inviter, name: p.in },
    addrs,
  }
}

/**
 * What an invite claimed, when the group's genesis contradicts it (another founder, by id or name, or
 * another group name); `undefined` when the claim holds. The group id is the genesis CID, so the genesis
 * is the truth and a contradiction means the inviter lied: the invite is forged.
 */
export function forgedClaim(invite: Invite, genesis: GroupOrigin): GroupOrigin | undefined {
  const { founder, groupName } = invite
  const holds =
    founder.peerId === genesis.founder.peerId &&
    founder.name === genesis.founder.name &&
    groupName === genesis.groupName
  return holds ? undefined : { groupName, founder }
}
