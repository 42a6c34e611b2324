import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import {
  cidOf,
  ed25519KeyOfMemberId,
  type Identity,
  isEd25519MemberId,
  type SignatureDomain,
  verifySignature,
} from '../crypto/index.js'
import { CborScanner, keyBytes, sameBytes } from './cbor-scan.js'
import { isDerivedAddShape, keyContext } from './epoch-derivation.js'
import { MalformedError, TooLargeError } from './errors.js'
import { cidString, ed25519MemberIdString } from './id-strings.js'
import { decodeInviteUse } from './invite-token.js'
import { isValidName, memberIdToString } from './member-ids.js'

export { isValidName, MAX_NAME_BYTES, memberIdFromString, memberIdToString } from './member-ids.js'

/**
 * The kinds of membership event. Every event but a rename starts a new epoch and carries its sealed
 * group key; a rename only changes its author's own display name.
 */
export type EventType = 'genesis' | 'add' | 'remove' | 'rekey' | 'rename'

/** Wire format version of events; part of every signature domain via `p2pchat/v1/`. */
export const EVENT_VERSION = 1
/** Upper bound on an encoded event; it holds one sealed key per member (~130 bytes each). */
export const MAX_EVENT_BYTES = 256 * 1024
/** Upper bound on parents of one event. */
export const MAX_PARENTS = 64
/** Upper bound on members of a group: the sealed keys of one event must fit {@link MAX_EVENT_BYTES}. */
export const MAX_MEMBERS = 1000
/** Length of an epoch key commitment. */
export const KEY_COMMITMENT_BYTES = 32

/** One group key sealed by HPKE to one recipient. */
export interface EventKey {
  /** Recipient member id (peer id multihash bytes). */
  to: Uint8Array
  enc: Uint8Array
  ct: Uint8Array
}

/** The signed content of a membership event, as encoded in DAG-CBOR. */
export interface EventPayload {
  v: number
  type: EventType
  /** Group id (the genesis CID); `null` in the genesis itself. */
  group: CID | null
  /** Author member id (peer id multihash bytes). */
  author: Uint8Array
  /** Heads the author had seen, sorted by their bytes; empty only in the genesis. */
  parents: CID[]
  /** The member added or removed; for the genesis, the founder. Absent in rekeys and renames. */
  subject?: Uint8Array
  /**
   * Display name of the subject (genesis and add), or the author's new name (rename). A label, never an
   * identity.
   */
  subjectName?: string
  /** Group name (genesis only). */
  groupName?: string
  /** 16 random bytes, so two groups with the same name and founder differ (genesis only). */
  nonce?: Uint8Array
  /**
   * Commitment to the epoch's group key (see `commitToKey` in epoch-keys.ts). It is signed, so every
   * recipient can check that it opened the same key as everyone else; absent in renames.
   */
  keyCommitment?: Uint8Array
  /** Derived adds only: the epoch its key is derived from; one seal, to the subject (epoch-derivation.ts). */
  base?: CID
  /** The epoch's group key, sealed to each member of the epoch, sorted by recipient; empty in renames. */
  keys: EventKey[]
  /** An add by invite only: the invite token and the joiner's proof (invite-token.ts). */
  invite?: Uint8Array
}

/**
 * An event from the wire whose size, framing, author and signature are checked, and whose payload is read
 * only as far as placing it in the DAG needs: type, author, group and parents. The rest (names, member
 * ids, sealed keys) is parsed by {@link completeEvent}, once the event can apply: an event nobody can
 * apply yet (its parents are unknown) or that cannot apply at all (its author was never added) costs no
 * more than its signature check.
 */
export interface EventHead {
  cid: CID
  id: string
  type: EventType
  /** The author as a peer id string. */
  author: string
  /** The group id the event claims; `null` in a genesis. */
  group: string | null
  /** Parent event ids. */
  parents: string[]
  /** The whole event as sent on the wire. */
  bytes: Uint8Array
  /** Where the signed payload starts in `bytes`; it runs to the end. */
  payloadStart: number
  /**
   * Read from this node's own store ({@link readEventHead} with `stored`): its signature and canonical
   * form were checked before it was written, and are not checked again.
   */
  stored?: true
}

/** Options for {@link readEventHead}. */
export interface ReadEventOptions {
  /**
   * The bytes come from this node's own store (0600, written only after the event was checked and
   * applied): skip the signature and canonical-form checks. Never for anything from the network.
   */
  stored?: boolean
}

/** A decoded, signature-checked event. */
export interface SignedEvent {
  /** Content address: CIDv1 of the payload bytes. */
  cid: CID
  /** `cid` as a string, the id used everywhere in the API. */
  id: string
  payload: EventPayload
  /** The author as a peer id string. */
  author: string
  /** The subject as a peer id string, when there is one. */
  subject?: string
  /** The whole event as sent on the wire and stored. */
  bytes: Uint8Array
}

const FIELDS: Record<EventType, readonly string[]> = {
  genesis: [
    'v',
    'type',
    'group',
    'author',
    'parents',
    'subject',
    'subjectName',
    'groupName',
    'nonce',
    'keyCommitment',
    'keys',
  ],
  add: ['v', 'type', 'group', 'author', 'parents', 'subject', 'subjectName', 'keyCommitment', 'keys'],
  remove: ['v', 'type', 'group', 'author', 'parents', 'subject', 'keyCommitment', 'keys'],
  rekey: ['v', 'type', 'group', 'author', 'parents', 'keyCommitment', 'keys'],
  rename: ['v', 'type', 'group', 'author', 'parents', 'subjectName', 'keys'],
}

/** An add may also carry the invite token it admits by, and the epoch its key is derived from. */
const ADD_OPTIONAL: readonly string[] = ['invite', 'base']

/** The most fields any event has: what the first decoding stage lets through before the signature. */
const MAX_FIELDS = Math.max(FIELDS.genesis.length, FIELDS.add.length + ADD_OPTIONAL.length)

function domainOf(type: EventType): SignatureDomain {
  return `event:${type}`
}

/** Compares byte strings lexicographically; the canonical order of parents and keys. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

function isBytes(value: unknown, length?: number): value is Uint8Array {
  return value instanceof Uint8Array && (length === undefined || value.length === length)
}

/**
 * Member ids in events are Ed25519 peer ids in their one canonical spelling (what `PeerId.toMultihash()`
 * writes), so one key has one id and ids compare as bytes.
 */
function isMemberId(value: unknown): value is Uint8Array {
  return isBytes(value) && isEd25519MemberId(value)
}

function fail(reason: string): never {
  throw new MalformedError(`malformed event: ${reason}`)
}

function validatePayload(value: unknown): EventPayload {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('payload is not a map')
  const p = value as Record<string, unknown>
  if (p.v !== EVENT_VERSION) fail(`unsupported version ${String(p.v)}`)
  const type = p.type
  if (typeof type !== 'string' || !Object.hasOwn(FIELDS, type)) fail('unknown type')
  const allowed = FIELDS[type as EventType]
  const present = Object.keys(p)
  const optional: readonly string[] = type === 'add' ? ADD_OPTIONAL : []
  for (const key of present)
    if (!allowed.includes(key) && !optional.includes(key)) fail(`unexpected field ${key}`)
  for (const key of allowed) if (!present.includes(key)) fail(`missing field ${key}`)
  if (!isMemberId(p.author)) fail('author is not an Ed25519 peer id')
  if (!Array.isArray(p.parents) || p.parents.length > MAX_PARENTS) fail('bad parents')
  for (const parent of p.parents) if (!(CID.asCID(parent) !== null)) fail('parent is not a CID')
  const parents = p.parents as CID[]
  for (let i = 1; i < parents.length; i++) {
    if (compareBytes((parents[i - 1] as CID).bytes, (parents[i] as CID).bytes) >= 0)
      fail('parents not sorted/unique')
  }
  if (type === 'genesis') {
    if (p.group !== null) fail('genesis has a group')
    if (parents.length !== 0) fail('genesis has parents')
    if (!isValidName(p.groupName)) fail('bad group name')
    if (!isBytes(p.nonce, 16)) fail('bad nonce')
    if (!isBytes(p.subject) || compareBytes(p.subject, p.author as Uint8Array) !== 0)
      fail('founder is not the author')
  } else {
    if (CID.asCID(p.group) === null) fail('group is not a CID')
    if (parents.length === 0) fail('no parents')
  }
  if (type === 'genesis' || type === 'add' || type === 'rename') {
    if (!isValidName(p.subjectName)) fail('bad subject name')
  }
  if (type === 'add' || type === 'remove') {
    if (!isMemberId(p.subject)) fail('subject is not an Ed25519 peer id')
  }
  if (p.invite !== undefined) {
    if (!isBytes(p.invite)) fail('bad invite')
    decodeInviteUse(p.invite, { group: cidString(p.group as CID), joiner: p.subject as Uint8Array })
  }
  if (type === 'rename') {
    // a rename changes a name, not the key: it starts no epoch
    if (!Array.isArray(p.keys) || p.keys.length !== 0) fail('a rename carries no keys')
    return p as unknown as EventPayload
  }
  if (!isBytes(p.keyCommitment, KEY_COMMITMENT_BYTES)) fail('bad key commitment')
  if (!Array.isArray(p.keys) || p.keys.length === 0 || p.keys.length > MAX_MEMBERS) fail('bad keys')
  let previous: Uint8Array | undefined
  for (const entry of p.keys as unknown[]) {
    if (typeof entry !== 'object' || entry === null) fail('bad key entry')
    const k = entry as Record<string, unknown>
    if (Object.keys(k).length !== 3 || !isMemberId(k.to) || !isBytes(k.enc, 32) || !isBytes(k.ct, 48)) {
      fail('bad key entry')
    }
    if (previous !== undefined && compareBytes(previous, k.to) >= 0) fail('keys not sorted/unique')
    previous = k.to
  }
  if (p.base !== undefined && !isDerivedAddShape(p))
    fail('a derived add names a CID base and seals to its subject only')
  return p as unknown as EventPayload
}

/** Encodes `payload` canonically (DAG-CBOR). */
export function encodePayload(payload: EventPayload): Uint8Array {
  return dagCbor.encode(payload)
}

export { keyContext }

/**
 * Drops the decoded sealed keys of an event the log has checked: a 1,000-member epoch holds thousands of
 * small objects, kept for every event of the log. Reading `payload.keys` afterwards decodes them again
 * from the event's bytes (a member opens its own key once per epoch).
 */
export function releaseKeys(event: SignedEvent): void {
  const { payload, bytes } = event
  if (payload.keys.length === 0) return
  Object.defineProperty(payload, 'keys', {
    enumerable: true,
    configurable: true,
    get: (): EventKey[] => {
      const decoded = dagCbor.decode(bytes.subarray(payloadStartOf(bytes))) as EventPayload
      return decoded.keys
    },
  })
}

/** Signs a payload and returns the decoded event. */
export function signEvent(identity: Identity, payload: EventPayload): SignedEvent {
  const payloadBytes = encodePayload(payload)
  const sig = identity.sign(domainOf(payload.type), payloadBytes)
  const bytes = dagCbor.encode({ payload: payloadBytes, sig })
  return toSignedEvent(payload, payloadBytes, bytes)
}

function toSignedEvent(payload: EventPayload, payloadBytes: Uint8Array, bytes: Uint8Array): SignedEvent {
  const cid = cidOf(payloadBytes)
  return {
    cid,
    id: cid.toString(),
    payload,
    author: memberIdToString(payload.author),
    ...(payload.subject === undefined ? {} : { subject: memberIdToString(payload.subject) }),
    bytes,
  }
}

/** The framing of every event, `{payload, sig}` in DAG-CBOR order: a 2-entry map, "sig", 64 bytes. */
const OUTER_PREFIX = Uint8Array.of(0xa2, 0x63, 0x73, 0x69, 0x67, 0x58, 0x40)
/** After the signature: the key "payload". */
const PAYLOAD_KEY = Uint8Array.of(0x67, ...keyBytes('payload'))
const SIG_START = OUTER_PREFIX.length
const PAYLOAD_KEY_START = SIG_START + 64
const TYPE_KEY = keyBytes('type')
const AUTHOR_KEY = keyBytes('author')
const GROUP_KEY = keyBytes('group')
const PARENTS_KEY = keyBytes('parents')
const TYPES = Object.keys(FIELDS) as EventType[]
const TYPE_BYTES = TYPES.map((type) => keyBytes(type))

/**
 * Where the payload starts in an event, from its byte string header. The framing must be the one
 * canonical encoding of `{payload, sig}` (the shortest length header, nothing after the payload), so one
 * event has one byte string.
 */
function payloadStartOf(bytes: Uint8Array): number {
  let at = PAYLOAD_KEY_START
  for (let i = 0; i < PAYLOAD_KEY.length; i++) {
    if (bytes[at + i] !== PAYLOAD_KEY[i]) fail('expected {payload, sig}')
  }
  at += PAYLOAD_KEY.length
  const first = bytes[at++]
  if (first === undefined || first >> 5 !== 2) fail('expected {payload, sig}')
  const info = first & 31
  const size = info < 24 ? 0 : info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : -1
  if (size < 0 || at + size > bytes.length) fail('event is not canonical')
  let length = info < 24 ? info : 0
  for (let i = 0; i < size; i++) length = length * 256 + (bytes[at++] as number)
  const shortest = length < 24 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 4
  if (size !== shortest || at + length !== bytes.length) fail('event is not canonical')
  return at
}

/**
 * First, cheap stage of decoding an event: size, framing, then the author's signature over the raw
 * payload bytes. Before the signature only what it needs is read: the type (it picks the signature
 * domain) and the author, whose key is read straight from its bytes; group and parents come with the
 * same pass. Junk costs one pass over its bytes and one signature check, whatever it claims to hold.
 *
 * @throws {TooLargeError | MalformedError | InvalidSignatureError}
 */
export function readEventHead(bytes: Uint8Array, options: ReadEventOptions = {}): EventHead {
  if (bytes.length > MAX_EVENT_BYTES)
    throw new TooLargeError(`event is ${bytes.length} bytes; the limit is ${MAX_EVENT_BYTES}`)
  for (let i = 0; i < OUTER_PREFIX.length; i++) {
    if (bytes[i] !== OUTER_PREFIX[i]) fail('expected {payload, sig}')
  }
  const payloadStart = payloadStartOf(bytes)
  const scan = new CborScanner(bytes, 'event', payloadStart)
  const entries = scan.readMapHeader()
  if (entries > MAX_FIELDS) fail('unexpected fields')
  let type: EventType | undefined
  let author: Uint8Array | undefined
  let group: CID | null = null
  let parents: CID[] = []
  for (let i = 0; i < entries; i++) {
    const key = scan.readTextBytes()
    if (sameBytes(key, TYPE_KEY)) {
      const value = scan.readTextBytes()
      type = TYPES[TYPE_BYTES.findIndex((t) => sameBytes(t, value))]
    } else if (sameBytes(key, AUTHOR_KEY)) author = scan.readBytes()
    else if (sameBytes(key, GROUP_KEY)) group = scan.readCid(true)
    else if (sameBytes(key, PARENTS_KEY)) parents = scan.readCids(MAX_PARENTS)
    else scan.skip()
  }
  if (!scan.done) fail('bytes after the payload')
  if (type === undefined) fail('unknown type')
  if (author === undefined) fail('author is not an Ed25519 peer id')
  try {
    ed25519KeyOfMemberId(author)
  } catch {
    fail('author is not an Ed25519 peer id')
  }
  const payload = bytes.subarray(payloadStart)
  const stored = options.stored === true
  if (!stored) verifySignature(author, domainOf(type), payload, bytes.subarray(SIG_START, SIG_START + 64))
  // the only structure a head carries: a genesis names no group, every other event one
  if ((type === 'genesis') !== (group === null)) fail(type === 'genesis' ? 'genesis has a group' : 'no group')
  const cid = cidOf(payload)
  return {
    cid,
    // remembered: the next event names it as a parent
    id: cidString(cid),
    type,
    // an Ed25519 peer id string is the base58btc of its multihash: no peer id parsing needed
    author: ed25519MemberIdString(author),
    group: group === null ? null : cidString(group),
    parents: parents.map(cidString),
    bytes,
    payloadStart,
    ...(stored ? { stored } : {}),
  }
}

/**
 * Second stage of decoding an event: strict canonical DAG-CBOR, the exact schema, and every member id in
 * it (author, subject, each key's recipient).
 *
 * @throws {MalformedError | InvalidInviteTokenError}
 */
export function completeEvent(head: EventHead): SignedEvent {
  const payloadBytes = head.bytes.subarray(head.payloadStart)
  let value: unknown
  try {
    value = dagCbor.decode(payloadBytes)
  } catch (err) {
    fail(`payload is not DAG-CBOR (${(err as Error).message})`)
  }
  const payload = validatePayload(value)
  // DAG-CBOR decoding is strict, but a second encoding guarantees one byte string per event, hence one id.
  if (head.stored !== true && compareBytes(encodePayload(payload), payloadBytes) !== 0)
    fail('payload is not canonical')
  // a canonical map has no duplicate keys, so the head read the same type and author the signature
  // was checked with; asserted all the same, as the signature's meaning rests on it
  if (payload.type !== head.type || ed25519MemberIdString(payload.author) !== head.author)
    fail('payload does not match its head')
  return {
    cid: head.cid,
    id: head.id,
    payload,
    author: head.author,
    ...(payload.subject === undefined ? {} : { subject: memberIdToString(payload.subject) }),
    bytes: head.bytes,
  }
}

/**
 * Decodes and checks an event from the wire, cheap checks first: size, framing, the author's signature
 * over the raw payload, then strict canonical DAG-CBOR and the schema ({@link readEventHead}, then
 * {@link completeEvent}). It does not judge membership; the log does.
 *
 * @throws {TooLargeError | MalformedError | InvalidSignatureError}
 */
export function decodeEvent(bytes: Uint8Array): SignedEvent {
  return completeEvent(readEventHead(bytes))
}
