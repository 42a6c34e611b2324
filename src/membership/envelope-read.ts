/**
 * Reading an envelope's bytes without decoding them into objects: the one canonical DAG-CBOR layout an
 * envelope can have, checked byte by byte in place, and the permissive reading of its top-level map that
 * a non-canonical input gets, so that it is refused with the error the order of checks gives it.
 *
 * @packageDocumentation
 */

import { LRUCache } from 'lru-cache'
import { CID } from 'multiformats/cid'
import { bytesKey, ed25519KeyOfMemberId, verifySignature } from '../crypto/index.js'
import { CborScanner, keyBytes, sameBytes } from './cbor-scan.js'
import { MalformedError } from './errors.js'

/** A map key as DAG-CBOR writes it (a short text string), then what must follow it. */
function entryHead(key: string, ...after: number[]): Uint8Array {
  const text = keyBytes(key)
  return Uint8Array.of(0x60 | text.length, ...text, ...after)
}

/** CBOR major types. */
export const UINT = 0
export const NEGATIVE_INT = 1
export const BYTES = 2
export const TEXT = 3
/** DAG-CBOR's CID: tag 42, then a byte string. */
const CID_TAG = [0xd8, 42]

/** Heads of maps of 8 entries (the envelope), 7 (what its sender signs: all but `sig`) and 6 (the header). */
export const MAP_OF_8 = 0xa8
export const MAP_OF_7 = 0xa7
export const MAP_OF_6 = 0xa6

/** Envelope wire format version. */
export const ENVELOPE_VERSION = 1

/** The envelope's entries in DAG-CBOR key order (shorter keys first): v, ct, seq, sig, epoch, group, nonce, sender. */
export const V_ENTRY = entryHead('v', ENVELOPE_VERSION)
export const CT_KEY = entryHead('ct')
export const SEQ_KEY = entryHead('seq')
/** `"sig"` and the head of a 64-byte byte string. */
export const SIG_ENTRY_HEAD = entryHead('sig', 0x58, 64)
export const EPOCH_KEY = entryHead('epoch', ...CID_TAG)
export const GROUP_KEY = entryHead('group', ...CID_TAG)
export const NONCE_KEY = entryHead('nonce')
export const SENDER_KEY = entryHead('sender')
/** The map head and the `v` key, then the version. */
const ENVELOPE_START = Uint8Array.of(MAP_OF_8, ...V_ENTRY.subarray(0, 2))
const VERSION = V_ENTRY.subarray(2)
/** Where the `ct` entry starts: after the map head and the `v` entry. */
export const CT_START = 1 + V_ENTRY.length
const SIG_LENGTH = 64
const NONCE_LENGTH = 12

/** Bytes of the shortest CBOR head with argument `n` (the same for every major type). */
export function headLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 2 ** 32 ? 5 : 9
}

/** Writes the shortest head of major type `major` with argument `n` (a safe integer) at `at`; returns its end. */
export function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  const m = major << 5
  if (n < 24) {
    out[at] = m | n
    return at + 1
  }
  const size = headLength(n) - 1
  out[at] = m | (size === 1 ? 24 : size === 2 ? 25 : size === 4 ? 26 : 27)
  // split into two 32-bit halves: bit operators work on 32 bits
  let high = Math.floor(n / 2 ** 32)
  let low = n >>> 0
  for (let i = size; i >= 1; i--) {
    out[at + i] = low & 0xff
    low = i === 5 ? high : low >>> 8
    if (i === 5) high = 0
  }
  return at + 1 + size
}

/** The smallest argument each head size may carry in canonical CBOR: one byte from 24 up, and so on. */
const SMALLEST = [24, 0x100, 0x10000, 2 ** 32]

/**
 * The CIDs read last, by the exact bytes they were read from (0x00 included): every message of a group
 * names the same group and a few epochs, so each is decoded and checked once. Only bytes that passed
 * the checks are kept, so a hit is an answer those checks already gave.
 */
const acceptedCids = new LRUCache<string, CID>({ max: 1024 })

/** A canonical envelope's fields, as views into its bytes, and where its entries are. */
export interface EnvelopeLayout {
  /** Start of the `seq` entry (the `ct` entry runs from {@link CT_START} to it). */
  seqStart: number
  /** The `sig` entry runs from `sigStart` to `sigEnd`; epoch, group, nonce and sender follow it. */
  sigStart: number
  sigEnd: number
  ct: Uint8Array
  seq: number
  sig: Uint8Array
  epoch: CID
  group: CID
  nonce: Uint8Array
  sender: Uint8Array
}

/**
 * A forward reader that accepts only the canonical encoding: each head in its shortest form, each key
 * where DAG-CBOR's order puts it, and nothing after the last entry. It reads in place (values are views
 * into the input) and never recurses.
 */
class CanonicalReader {
  readonly #bytes: Uint8Array
  #pos = 0

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes
  }

  get position(): number {
    return this.#pos
  }

  get done(): boolean {
    return this.#pos === this.#bytes.length
  }

  fail(reason: string): never {
    throw new MalformedError(`malformed envelope: ${reason}`)
  }

  /** The exact bytes `expected`, e.g. a key and the head of its value. */
  literal(expected: Uint8Array, what: string): void {
    const bytes = this.#bytes
    const at = this.#pos
    if (at + expected.length > bytes.length) this.fail(`truncated at ${what}`)
    for (let i = 0; i < expected.length; i++) if (bytes[at + i] !== expected[i]) this.fail(`bad ${what}`)
    this.#pos = at + expected.length
  }

  /** The argument of a head of major type `major`, which must be in its shortest form. */
  head(major: number, what: string): number {
    const bytes = this.#bytes
    if (this.#pos >= bytes.length) this.fail(`truncated at ${what}`)
    const first = bytes[this.#pos++] as number
    if (first >> 5 !== major) this.fail(`${what} has the wrong type`)
    const info = first & 31
    if (info < 24) return info
    if (info > 27) this.fail(`${what} has an indefinite length or a reserved head`)
    const size = 1 << (info - 24)
    if (this.#pos + size > bytes.length) this.fail(`truncated at ${what}`)
    let n = 0
    for (let i = 0; i < size; i++) n = n * 256 + (bytes[this.#pos++] as number)
    if (n < (SMALLEST[info - 24] as number)) this.fail(`${what} is not in its shortest form`)
    if (!Number.isSafeInteger(n)) this.fail(`${what} is out of range`)
    return n
  }

  /** A byte string (or the UTF-8 of a text string, with `TEXT`), as a view into the input. */
  byteString(what: string, major = BYTES): Uint8Array {
    const length = this.head(major, what)
    if (length > this.#bytes.length - this.#pos) this.fail(`truncated at ${what}`)
    this.#pos += length
    return this.#bytes.subarray(this.#pos - length, this.#pos)
  }

  /** `n` raw bytes, as a view into the input. */
  raw(n: number, what: string): Uint8Array {
    if (n > this.#bytes.length - this.#pos) this.fail(`truncated at ${what}`)
    this.#pos += n
    return this.#bytes.subarray(this.#pos - n, this.#pos)
  }

  /** The byte string of a CID after its tag: 0x00, then a CID whose own encoding is these bytes. */
  cid(what: string): CID {
    const bytes = this.byteString(what)
    const key = bytesKey(bytes)
    const seen = acceptedCids.get(key)
    if (seen !== undefined) return seen
    if (bytes[0] !== 0x00) this.fail(`${what} lacks the 0x00 prefix of a CID`)
    let cid: CID
    try {
      cid = CID.decode(bytes.subarray(1))
    } catch {
      this.fail(`${what} is not a CID`)
    }
    // a CID decodes from some spellings it does not encode to (e.g. a longer varint)
    if (!sameBytes(cid.bytes, bytes.subarray(1))) this.fail(`${what} is not a CID in canonical form`)
    acceptedCids.set(key, cid)
    return cid
  }
}

/**
 * The fields of an envelope in the canonical DAG-CBOR encoding of `{v: 1, ct, seq, sig, epoch, group,
 * nonce, sender}`, with `seq` a safe integer, a 64-byte `sig`, a 12-byte `nonce` and CIDs in
 * canonical form. With the sender then checked as an Ed25519 member id (decodeEnvelope does),
 * these are exactly the bytes a full decode and re-encode give back. The signature is not checked here.
 *
 * @throws {MalformedError} anything else
 */
export function readEnvelope(bytes: Uint8Array): EnvelopeLayout {
  const r = new CanonicalReader(bytes)
  r.literal(ENVELOPE_START, 'fields')
  r.literal(VERSION, 'version')
  r.literal(CT_KEY, 'fields')
  const ct = r.byteString('ct')
  const seqStart = r.position
  r.literal(SEQ_KEY, 'fields')
  const seq = r.head(UINT, 'seq')
  const sigStart = r.position
  r.literal(SIG_ENTRY_HEAD, 'sig')
  const sig = r.raw(SIG_LENGTH, 'sig')
  const sigEnd = r.position
  r.literal(EPOCH_KEY, 'epoch')
  const epoch = r.cid('epoch')
  r.literal(GROUP_KEY, 'group')
  const group = r.cid('group')
  r.literal(NONCE_KEY, 'fields')
  if (r.head(BYTES, 'nonce') !== NONCE_LENGTH) r.fail('bad nonce')
  const nonce = r.raw(NONCE_LENGTH, 'nonce')
  r.literal(SENDER_KEY, 'fields')
  // its length and prefix are checked by reading the key from it, with the same error as before
  const sender = r.byteString('sender')
  if (!r.done) r.fail('bytes after the envelope')
  return { seqStart, sigStart, sigEnd, ct, seq, sig, epoch, group, nonce, sender }
}

const FIELD_COUNT = 8
const SIG_KEY_TEXT = keyBytes('sig')
const SENDER_KEY_TEXT = keyBytes('sender')
const CT_KEY_TEXT = keyBytes('ct')

/** Where one entry of the envelope's map runs in its bytes. */
interface EntryRange {
  start: number
  end: number
}

/** `bytes` (a map) less the entries `cut` (in order), under a new map head `head`, as parts to sign. */
function withoutEntries(bytes: Uint8Array, head: number, cut: readonly EntryRange[]): Uint8Array[] {
  const parts: Uint8Array[] = [Uint8Array.of(head)]
  let from = 1
  for (const range of cut) {
    parts.push(bytes.subarray(from, range.start))
    from = range.end
  }
  parts.push(bytes.subarray(from))
  return parts
}

/**
 * The checks a non-canonical envelope gets before it is refused as such, in the order every envelope
 * had them before the canonical reading above: the shape of its top-level map (in any key order), the
 * sender's key read from its bytes, and the sender's signature over the map less `sig`. So junk is a
 * MalformedError, and a forgery an InvalidSignatureError, whatever else is wrong with it.
 *
 * @throws {MalformedError | InvalidSignatureError}
 */
export function checkAnyForm(bytes: Uint8Array): void {
  // typed, so that TypeScript sees `scan.fail` end the function
  const scan: CborScanner = new CborScanner(bytes, 'envelope')
  if (bytes[0] !== MAP_OF_8 || scan.readMapHeader() !== FIELD_COUNT) scan.fail('unexpected fields')
  let sig: (EntryRange & { value: Uint8Array }) | undefined
  let ct: EntryRange | undefined
  let sender: Uint8Array | undefined
  for (let i = 0; i < FIELD_COUNT; i++) {
    const start = scan.position
    const key = scan.readTextBytes()
    if (sameBytes(key, SIG_KEY_TEXT)) sig = { start, value: scan.readBytes(), end: scan.position }
    else if (sameBytes(key, SENDER_KEY_TEXT)) sender = scan.readBytes()
    else {
      scan.skip()
      if (sameBytes(key, CT_KEY_TEXT)) ct = { start, end: scan.position }
    }
  }
  if (!scan.done) scan.fail('bytes after the envelope')
  if (sig === undefined || sig.value.length !== SIG_LENGTH || ct === undefined) scan.fail('bad ct or sig')
  if (sender === undefined) scan.fail('bad sender')
  try {
    ed25519KeyOfMemberId(sender)
  } catch {
    scan.fail('sender is not an Ed25519 peer id')
  }
  verifySignature(sender, 'envelope', withoutEntries(bytes, MAP_OF_7, [sig]), sig.value)
}

/** The `"ts"` and `"text"` keys of a message body, in DAG-CBOR key order. */
export const BODY_TS_KEY = entryHead('ts')
export const BODY_TEXT_KEY = entryHead('text')
export const MAP_OF_2 = 0xa2
const BODY_START = Uint8Array.of(MAP_OF_2, ...BODY_TS_KEY)
/** How DAG-CBOR's decoder reads text (a leading BOM dropped, bad UTF-8 replaced), so the fast path reads alike. */
const utf8 = new TextDecoder()

/**
 * A message body in its canonical encoding, `{ts, text}` with an integer `ts`, read in place; or
 * `undefined` for any other bytes, which the caller gives to the full decoder (a body comes from a
 * member, authenticated, so an odd one is rare and is judged as before).
 */
export function readBody(plaintext: Uint8Array): { ts: number; text: string } | undefined {
  try {
    const r = new CanonicalReader(plaintext)
    r.literal(BODY_START, 'body')
    const negative =
      plaintext[r.position] !== undefined && (plaintext[r.position] as number) >> 5 === NEGATIVE_INT
    const arg = r.head(negative ? NEGATIVE_INT : UINT, 'ts')
    const ts = negative ? -1 - arg : arg
    r.literal(BODY_TEXT_KEY, 'body')
    const text = r.byteString('text', TEXT)
    if (!r.done) return undefined
    // a `ts` of -2^53 is no safe integer: the caller refuses it, as it does the decoder's
    return { ts, text: utf8.decode(text) }
  } catch {
    return undefined
  }
}
