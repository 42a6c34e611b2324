import * as dagCbor from '@ipld/dag-cbor'
import { base58btc } from 'multiformats/bases/base58'
import type { CID } from 'multiformats/cid'
import {
  type AeadKey,
  aeadDecrypt,
  aeadSealInto,
  cidStringOf,
  ed25519KeyOfMemberId,
  type Identity,
  isEd25519MemberId,
  MESSAGE_AEAD,
  TAG_LENGTH,
  verifySignature,
} from '../crypto/index.js'
import { CborScanner, keyBytes, sameBytes } from './cbor-scan.js'
import {
  BODY_TEXT_KEY,
  BODY_TS_KEY,
  BYTES,
  CT_KEY,
  CT_START,
  checkAnyForm,
  ENVELOPE_VERSION,
  type EnvelopeLayout,
  EPOCH_KEY,
  GROUP_KEY,
  headLength,
  MAP_OF_2,
  MAP_OF_6,
  MAP_OF_7,
  MAP_OF_8,
  NEGATIVE_INT,
  NONCE_KEY,
  readBody,
  readEnvelope,
  SENDER_KEY,
  SEQ_KEY,
  SIG_ENTRY_HEAD,
  TEXT,
  UINT,
  V_ENTRY,
  writeHead,
} from './envelope-read.js'
import { MalformedError, TooLargeError } from './errors.js'
import { cidString, ed25519MemberIdString } from './id-strings.js'

export { ENVELOPE_VERSION }
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

/** Everything needed to seal one message. */
export interface SealInit {
  identity: Identity
  group: CID
  epoch: CID
  seq: number
  /** The epoch's message key (made once with `aeadKey` where many messages use it). */
  key: AeadKey
  body: MessageBody
  nonce: Uint8Array
}

const utf8 = new TextEncoder()

/** The canonical DAG-CBOR of a message body, `{ts, text}` in key order, written straight into its bytes. */
function encodeBody(body: MessageBody): Uint8Array {
  // a timestamp that is no safe integer is a float in DAG-CBOR (and refused when opened): the codec's job
  if (!Number.isSafeInteger(body.ts)) return dagCbor.encode({ text: body.text, ts: body.ts })
  const negative = body.ts < 0
  const ts = negative ? -1 - body.ts : body.ts
  const textLength = Buffer.byteLength(body.text)
  // only encrypted and dropped: a slice of Buffer's pool, every byte of it written below
  const out = Buffer.allocUnsafe(
    1 + BODY_TS_KEY.length + headLength(ts) + BODY_TEXT_KEY.length + headLength(textLength) + textLength,
  )
  out[0] = MAP_OF_2
  out.set(BODY_TS_KEY, 1)
  let at = writeHead(out, 1 + BODY_TS_KEY.length, negative ? NEGATIVE_INT : UINT, ts)
  out.set(BODY_TEXT_KEY, at)
  at = writeHead(out, at + BODY_TEXT_KEY.length, TEXT, textLength)
  utf8.encodeInto(body.text, out.subarray(at))
  return out
}

/** Writes the `epoch` or `group` entry: its key, then the CID as DAG-CBOR writes one (tag 42, 0x00, its bytes). */
function writeCidEntry(out: Uint8Array, at: number, key: Uint8Array, cid: CID): number {
  out.set(key, at)
  const next = writeHead(out, at + key.length, BYTES, cid.bytes.length + 1)
  out[next] = 0x00
  out.set(cid.bytes, next + 1)
  return next + 1 + cid.bytes.length
}

/** Writes a byte-string entry: its key, the head, the bytes. */
function writeBytesEntry(out: Uint8Array, at: number, key: Uint8Array, value: Uint8Array): number {
  out.set(key, at)
  const next = writeHead(out, at + key.length, BYTES, value.length)
  out.set(value, next)
  return next + value.length
}

/** Bytes of the entry {@link writeCidEntry} or {@link writeBytesEntry} writes for a value of `length` bytes. */
function entryLength(key: Uint8Array, length: number): number {
  return key.length + headLength(length) + length
}

const SIG_LENGTH = 64
const MAP_OF_7_BYTE = Uint8Array.of(MAP_OF_7)

/**
 * Encrypts and signs a message; returns the envelope bytes. Everything is written in its canonical
 * DAG-CBOR form directly (the codec took more time than the cipher): the header once, as the AEAD's
 * associated data, and the envelope once. In DAG-CBOR's key order the envelope is {v, ct, seq, sig,
 * epoch, group, nonce, sender}; what its sender signs is those bytes less the `sig` entry.
 */
export function sealEnvelope(init: SealInit): Uint8Array {
  const plaintext = encodeBody(init.body)
  const sender = init.identity.memberIdBytes
  const seqLength = SEQ_KEY.length + headLength(init.seq)
  const tailLength =
    entryLength(EPOCH_KEY, init.epoch.bytes.length + 1) +
    entryLength(GROUP_KEY, init.group.bytes.length + 1) +
    entryLength(NONCE_KEY, init.nonce.length) +
    entryLength(SENDER_KEY, sender.length)
  // the header, {v, seq, epoch, group, nonce, sender}: the AEAD's associated data (only read here, so a
  // slice of Buffer's pool; every byte of it is written)
  const aad = Buffer.allocUnsafe(CT_START + seqLength + tailLength)
  aad[0] = MAP_OF_6
  aad.set(V_ENTRY, 1)
  aad.set(SEQ_KEY, CT_START)
  const tailStart = writeHead(aad, CT_START + SEQ_KEY.length, UINT, init.seq)
  let at = writeCidEntry(aad, tailStart, EPOCH_KEY, init.epoch)
  at = writeCidEntry(aad, at, GROUP_KEY, init.group)
  at = writeBytesEntry(aad, at, NONCE_KEY, init.nonce)
  writeBytesEntry(aad, at, SENDER_KEY, sender)

  // the envelope: the header with `ct` after `v` and `sig` after `seq`; the cipher writes `ct` in place
  const ctLength = plaintext.length + TAG_LENGTH
  const out = new Uint8Array(aad.length + entryLength(CT_KEY, ctLength) + SIG_ENTRY_HEAD.length + SIG_LENGTH)
  out[0] = MAP_OF_8
  out.set(V_ENTRY, 1)
  out.set(CT_KEY, CT_START)
  at = writeHead(out, CT_START + CT_KEY.length, BYTES, ctLength)
  aeadSealInto(MESSAGE_AEAD, init.key, init.nonce, plaintext, aad, out, at)
  at += ctLength
  out.set(aad.subarray(CT_START, tailStart), at)
  const sigStart = at + seqLength
  out.set(SIG_ENTRY_HEAD, sigStart)
  const sigEnd = sigStart + SIG_ENTRY_HEAD.length + SIG_LENGTH
  out.set(aad.subarray(tailStart), sigEnd)
  const signed = [MAP_OF_7_BYTE, out.subarray(1, sigStart), out.subarray(sigEnd)]
  out.set(init.identity.sign('envelope', signed), sigEnd - SIG_LENGTH)
  return out
}

/**
 * Decodes an envelope, cheap checks first: size, then its canonical layout read in place (no decode and
 * no re-encode: its bytes are checked against the one encoding its fields have), then the sender's
 * signature over those bytes less `sig`. A non-canonical input is refused after the checks it had
 * before the canonical reading existed ({@link checkAnyForm}), so it gets the same error as then.
 *
 * @throws {TooLargeError | MalformedError | InvalidSignatureError}
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw new TooLargeError(`envelope is ${bytes.length} bytes; the limit is ${MAX_ENVELOPE_BYTES}`)
  }
  let e: EnvelopeLayout
  try {
    e = readEnvelope(bytes)
  } catch (err) {
    checkAnyForm(bytes)
    throw err
  }
  try {
    ed25519KeyOfMemberId(e.sender)
  } catch {
    fail('sender is not an Ed25519 peer id')
  }
  const signed = [MAP_OF_7_BYTE, bytes.subarray(1, e.sigStart), bytes.subarray(e.sigEnd)]
  verifySignature(e.sender, 'envelope', signed, e.sig)
  // the one parse of the sender attack 8's test counts: after the signature (its key was read above)
  if (!isEd25519MemberId(e.sender)) fail('sender is not an Ed25519 peer id')
  // the header alone, for the AEAD: the envelope less its `ct` and `sig` entries
  const aad = new Uint8Array(bytes.length - (e.seqStart - CT_START) - (e.sigEnd - e.sigStart))
  aad[0] = MAP_OF_6
  aad.set(bytes.subarray(1, CT_START), 1)
  aad.set(bytes.subarray(e.seqStart, e.sigStart), CT_START)
  aad.set(bytes.subarray(e.sigEnd), CT_START + e.sigStart - e.seqStart)
  const header: EnvelopeHeader = {
    v: ENVELOPE_VERSION,
    group: e.group,
    epoch: e.epoch,
    sender: e.sender,
    seq: e.seq,
    nonce: e.nonce,
  }
  return {
    header,
    ct: e.ct,
    id: cidStringOf(bytes),
    sender: ed25519MemberIdString(e.sender),
    groupId: cidString(e.group),
    epochId: cidString(e.epoch),
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
export function openEnvelope(envelope: Envelope, key: AeadKey): MessageBody {
  const plaintext = aeadDecrypt(key, envelope.header.nonce, envelope.ct, envelope.aad)
  const b = readBody(plaintext) ?? decodeBody(plaintext)
  if (Object.keys(b).length !== 2 || typeof b.text !== 'string' || typeof b.ts !== 'number') fail('bad body')
  if (Buffer.byteLength(b.text) > MAX_TEXT_BYTES) throw new TooLargeError('message text is over 64 KiB')
  if (!Number.isSafeInteger(b.ts)) fail('bad timestamp')
  return { text: b.text, ts: b.ts }
}

/** A body in any encoding the DAG-CBOR decoder takes, as a plain object to check. */
function decodeBody(plaintext: Uint8Array): Record<string, unknown> {
  let body: unknown
  try {
    body = dagCbor.decode(plaintext)
  } catch {
    fail('body is not DAG-CBOR')
  }
  if (typeof body !== 'object' || body === null) fail('body is not a map')
  return body as Record<string, unknown>
}

/** What a notice of an envelope it cannot read shows of it: the first 8 bytes of its ciphertext, in hex. */
export function ciphertextPreview(ct: Uint8Array): string {
  return Buffer.from(ct.subarray(0, 8)).toString('hex')
}

const SENDER_KEY_TEXT = keyBytes('sender')

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
      if (sameBytes(key, SENDER_KEY_TEXT)) return base58btc.baseEncode(scan.readBytes())
      scan.skip()
    }
  } catch {
    // not even the shape of an envelope: it claims nothing
  }
  return undefined
}
