import * as dagCbor from '@ipld/dag-cbor'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import {
  aeadDecrypt,
  aeadEncrypt,
  cidOf,
  ed25519KeyOfMemberId,
  type Identity,
  isEd25519MemberId,
  NONCE_LENGTH,
  verifySignature,
} from '../crypto/index.js'
import { CborScanner, keyBytes, sameBytes } from './cbor-scan.js'
import { MalformedError, TooLargeError } from './errors.js'
import { compareBytes } from './event.js'
import { cidString, ed25519MemberIdString } from './id-strings.js'

/** Envelope wire format version. */
export const ENVELOPE_VERSION = 1
/** Largest message text, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 64 * 1024
/** Largest encoded envelope: the text plus header, timestamp, tag and signature. */
export const MAX_ENVELOPE_BYTES = MAX_TEXT_BYTES + 1024

/** The authenticated, unencrypted part of an envelope; its encoding is the AEAD associated data. */
export interface EnvelopeHeader {
  v: number
  /** Group id. */
  group: CID
  /** Epoch id: the id of the membership event whose key encrypts this message. */
  epoch: CID
  /** Sender member id (peer id multihash bytes). */
  sender: Uint8Array
  /** Per-sender sequence number, strictly increasing across the sender's messages in the group. */
  seq: number
  nonce: Uint8Array
}

/** A decoded, signature-checked envelope. Its text is still encrypted. */
export interface Envelope {
  header: EnvelopeHeader
  /** AEAD ciphertext with tag. */
  ct: Uint8Array
  /** Message id: CID of the envelope bytes. Equal bytes, equal id. */
  id: string
  /** Sender as a peer id string. */
  sender: string
  groupId: string
  epochId: string
  bytes: Uint8Array
  /** The canonical encoding of `header`: the AEAD associated data, cut from `bytes`. */
  aad: Uint8Array
}

/** The encrypted content of a message. */
export interface MessageBody {
  text: string
  /** Sender's clock at sending, in ms since the epoch. Display only: nothing is decided by it. */
  ts: number
}

function fail(reason: string): never {
  throw new MalformedError(`malformed envelope: ${reason}`)
}

/** `"ct"` and `"sig"` as DAG-CBOR text, and the head of a 64-byte byte string. */
const CT_KEY_BYTES = Uint8Array.of(0x62, 0x63, 0x74)
const SIG_ENTRY_HEAD = Uint8Array.of(0x63, 0x73, 0x69, 0x67, 0x58, 0x40)
/** Length of the `v` entry (`"v"`, then the version as a one-byte uint) after the map head. */
const V_ENTRY_END = 1 + 3
/** Length of the `"seq"` key. */
const SEQ_KEY_LENGTH = 4

/** Bytes of the shortest CBOR head of major type `major` with argument `n` (n < 2^32). */
function cborHead(major: number, n: number): Uint8Array {
  const m = major << 5
  if (n < 24) return Uint8Array.of(m | n)
  if (n < 0x100) return Uint8Array.of(m | 24, n)
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff)
  return Uint8Array.of(m | 26, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/** Length of the shortest CBOR encoding of the unsigned integer `n`. */
function uintLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 2 ** 32 ? 5 : 9
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** Everything needed to seal one message. */
export interface SealInit {
  identity: Identity
  group: CID
  epoch: CID
  seq: number
  /** The epoch's message key. */
  key: Uint8Array
  body: MessageBody
  nonce: Uint8Array
}

/** Encrypts and signs a message; returns the envelope bytes. */
export function sealEnvelope(init: SealInit): Uint8Array {
  const header: EnvelopeHeader = {
    v: ENVELOPE_VERSION,
    group: init.group,
    epoch: init.epoch,
    sender: init.identity.memberIdBytes,
    seq: init.seq,
    nonce: init.nonce,
  }
  const plaintext = dagCbor.encode({ text: init.body.text, ts: init.body.ts })
  // The header is encoded once. In DAG-CBOR's key order (shorter keys first) the envelope is
  // {v, ct, seq, sig, epoch, group, nonce, sender}: what is signed is the header with `ct` spliced in
  // after `v`, and the envelope is that with `sig` spliced in after `seq`.
  const aad = dagCbor.encode(header)
  const ct = aeadEncrypt(init.key, init.nonce, plaintext, aad)
  const ctEntry = concat([CT_KEY_BYTES, cborHead(2, ct.length), ct])
  const seqEnd = V_ENTRY_END + SEQ_KEY_LENGTH + uintLength(init.seq)
  const v = aad.subarray(1, V_ENTRY_END)
  const seq = aad.subarray(V_ENTRY_END, seqEnd)
  const rest = aad.subarray(seqEnd)
  const sig = init.identity.sign('envelope', concat([Uint8Array.of(MAP_OF_7), v, ctEntry, seq, rest]))
  return concat([Uint8Array.of(MAP_OF_8), v, ctEntry, seq, SIG_ENTRY_HEAD, sig, rest])
}

const FIELDS = ['ct', 'epoch', 'group', 'nonce', 'sender', 'seq', 'sig', 'v']
const SIG_KEY = keyBytes('sig')
const SENDER_KEY = keyBytes('sender')
/** Head of a DAG-CBOR map of 8 entries (the envelope) and of 7 (what its sender signed: all but `sig`). */
const MAP_OF_8 = 0xa8
const MAP_OF_7 = 0xa7
const MAP_OF_6 = 0xa6
const CT_KEY = keyBytes('ct')

/** Where one entry of the envelope's map runs in its bytes. */
interface EntryRange {
  start: number
  end: number
}

/** `bytes` (a map) without the entries `cut` (in order), under a new map head `head`. */
function withoutEntries(bytes: Uint8Array, head: number, cut: readonly EntryRange[]): Uint8Array {
  const out = new Uint8Array(bytes.length - cut.reduce((n, r) => n + r.end - r.start, 0))
  out[0] = head
  let from = 1
  let at = 1
  for (const range of cut) {
    out.set(bytes.subarray(from, range.start), at)
    at += range.start - from
    from = range.end
  }
  out.set(bytes.subarray(from), at)
  return out
}

/**
 * The sender's signature over an envelope, checked before anything else is parsed. The sender signed the
 * canonical encoding of every field but `sig`, and in a canonical envelope those are its own bytes with
 * the `sig` entry cut out, so the signed bytes are taken from the input as they are: one pass over its
 * top-level map, and the sender's key read straight from its bytes. A non-canonical envelope fails here
 * or at the canonical check after.
 *
 * @throws {MalformedError | InvalidSignatureError}
 */
function verifyRawEnvelope(bytes: Uint8Array): Uint8Array {
  const scan = new CborScanner(bytes, 'envelope')
  if (bytes[0] !== MAP_OF_8 || scan.readMapHeader() !== FIELDS.length) fail('unexpected fields')
  let sig: (EntryRange & { value: Uint8Array }) | undefined
  let ct: EntryRange | undefined
  let sender: Uint8Array | undefined
  for (let i = 0; i < FIELDS.length; i++) {
    const start = scan.position
    const key = scan.readTextBytes()
    if (sameBytes(key, SIG_KEY)) sig = { start, value: scan.readBytes(), end: scan.position }
    else if (sameBytes(key, SENDER_KEY)) sender = scan.readBytes()
    else {
      scan.skip()
      if (sameBytes(key, CT_KEY)) ct = { start, end: scan.position }
    }
  }
  if (!scan.done) fail('bytes after the envelope')
  if (sig === undefined || sig.value.length !== 64 || ct === undefined) fail('bad ct or sig')
  if (sender === undefined) fail('bad sender')
  try {
    ed25519KeyOfMemberId(sender)
  } catch {
    fail('sender is not an Ed25519 peer id')
  }
  verifySignature(sender, 'envelope', withoutEntries(bytes, MAP_OF_7, [sig]), sig.value)
  // the header alone, for the AEAD; it is the canonical encoding of the header once the envelope is
  const cut = ct.start < sig.start ? [ct, sig] : [sig, ct]
  return withoutEntries(bytes, MAP_OF_6, cut)
}

/**
 * Decodes an envelope, cheap checks first: size, then the sender's signature over header and ciphertext
 * (read from the raw bytes), then strict canonical DAG-CBOR and the exact fields.
 *
 * @throws {TooLargeError | MalformedError | InvalidSignatureError}
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw new TooLargeError(`envelope is ${bytes.length} bytes; the limit is ${MAX_ENVELOPE_BYTES}`)
  }
  const aad = verifyRawEnvelope(bytes)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    fail(`not DAG-CBOR (${(err as Error).message})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('not a map')
  const e = value as Record<string, unknown>
  const keys = Object.keys(e).sort()
  if (keys.length !== FIELDS.length || keys.some((k, i) => k !== FIELDS[i])) fail('unexpected fields')
  if (e.v !== ENVELOPE_VERSION) fail(`unsupported version ${String(e.v)}`)
  const group = CID.asCID(e.group)
  const epoch = CID.asCID(e.epoch)
  if (group === null || epoch === null) fail('group or epoch is not a CID')
  if (!(e.sender instanceof Uint8Array) || e.sender.length > 64) fail('bad sender')
  if (!isEd25519MemberId(e.sender)) fail('sender is not an Ed25519 peer id')
  if (typeof e.seq !== 'number' || !Number.isSafeInteger(e.seq) || e.seq < 0) fail('bad seq')
  if (!(e.nonce instanceof Uint8Array) || e.nonce.length !== NONCE_LENGTH) fail('bad nonce')
  if (!(e.ct instanceof Uint8Array) || !(e.sig instanceof Uint8Array) || e.sig.length !== 64)
    fail('bad ct or sig')
  const header: EnvelopeHeader = {
    v: ENVELOPE_VERSION,
    group,
    epoch,
    sender: e.sender,
    seq: e.seq,
    nonce: e.nonce,
  }
  // the signature was checked over these bytes less `sig`; canonical form makes that the signed encoding
  if (compareBytes(dagCbor.encode({ ...header, ct: e.ct, sig: e.sig }), bytes) !== 0) fail('not canonical')
  return {
    header,
    ct: e.ct,
    id: cidOf(bytes).toString(),
    sender: ed25519MemberIdString(e.sender),
    groupId: cidString(group),
    epochId: cidString(epoch),
    bytes,
    aad,
  }
}

/**
 * Decrypts an envelope's body with the epoch's message key.
 *
 * @throws {DecryptionError} wrong key or altered bytes
 * @throws {MalformedError} the plaintext is not a well-formed message body
 */
export function openEnvelope(envelope: Envelope, key: Uint8Array): MessageBody {
  const plaintext = aeadDecrypt(key, envelope.header.nonce, envelope.ct, envelope.aad)
  let body: unknown
  try {
    body = dagCbor.decode(plaintext)
  } catch {
    fail('body is not DAG-CBOR')
  }
  if (typeof body !== 'object' || body === null) fail('body is not a map')
  const b = body as Record<string, unknown>
  if (Object.keys(b).length !== 2 || typeof b.text !== 'string' || typeof b.ts !== 'number') fail('bad body')
  if (Buffer.byteLength(b.text) > MAX_TEXT_BYTES) throw new TooLargeError('message text is over 64 KiB')
  if (!Number.isSafeInteger(b.ts)) fail('bad timestamp')
  return { text: b.text, ts: b.ts }
}

/** What a notice of an envelope it cannot read shows of it: the first 8 bytes of its ciphertext, in hex. */
export function ciphertextPreview(ct: Uint8Array): string {
  return Buffer.from(ct.subarray(0, 8)).toString('hex')
}

/**
 * The member id an envelope names as its sender, unverified; `undefined` if its top level is no map.
 * For policies that sort input before paying for a signature check (a relay's rate limit for
 * non-members), never for trust: a false claim of a member's id fails the signature check after. Not
 * cached as verified ids are (`id-strings.ts`): the claim is the sender's to choose.
 */
export function claimedSender(bytes: Uint8Array): string | undefined {
  try {
    const scan = new CborScanner(bytes, 'envelope')
    const entries = scan.readMapHeader()
    for (let i = 0; i < entries; i++) {
      const key = scan.readTextBytes()
      if (sameBytes(key, SENDER_KEY)) return base58btc.baseEncode(scan.readBytes())
      scan.skip()
    }
  } catch {
    // not even the shape of an envelope: it claims nothing
  }
  return undefined
}
