import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import {
  aeadDecrypt,
  aeadEncrypt,
  cidOf,
  ed25519KeyOfMemberId,
  type Identity,
  NONCE_LENGTH,
  publicKeyOfMember,
  verifySignature,
} from '../crypto/index.js'
import { CborScanner, keyBytes, sameBytes } from './cbor-scan.js'
import { MalformedError, TooLargeError } from './errors.js'
import { compareBytes, memberIdToString } from './event.js'

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

function headerBytes(header: EnvelopeHeader): Uint8Array {
  return dagCbor.encode(header)
}

function signedPart(header: EnvelopeHeader, ct: Uint8Array): Uint8Array {
  return dagCbor.encode({ ...header, ct })
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
  const ct = aeadEncrypt(init.key, init.nonce, plaintext, headerBytes(header))
  const sig = init.identity.sign('envelope', signedPart(header, ct))
  return dagCbor.encode({ ...header, ct, sig })
}

const FIELDS = ['ct', 'epoch', 'group', 'nonce', 'sender', 'seq', 'sig', 'v']
const SIG_KEY = keyBytes('sig')
const SENDER_KEY = keyBytes('sender')
/** Head of a DAG-CBOR map of 8 entries (the envelope) and of 7 (what its sender signed: all but `sig`). */
const MAP_OF_8 = 0xa8
const MAP_OF_7 = 0xa7

/**
 * The sender's signature over an envelope, checked before anything else is parsed. The sender signed the
 * canonical encoding of every field but `sig`, and in a canonical envelope those are its own bytes with
 * the `sig` entry cut out, so the signed bytes are taken from the input as they are: one pass over its
 * top-level map, and the sender's key read straight from its bytes. A non-canonical envelope fails here
 * or at the canonical check after.
 *
 * @throws {MalformedError | InvalidSignatureError}
 */
function verifyRawEnvelope(bytes: Uint8Array): void {
  const scan = new CborScanner(bytes, 'envelope')
  if (bytes[0] !== MAP_OF_8 || scan.readMapHeader() !== FIELDS.length) fail('unexpected fields')
  let sig: { start: number; end: number; value: Uint8Array } | undefined
  let sender: Uint8Array | undefined
  for (let i = 0; i < FIELDS.length; i++) {
    const start = scan.position
    const key = scan.readTextBytes()
    if (sameBytes(key, SIG_KEY)) sig = { start, value: scan.readBytes(), end: scan.position }
    else if (sameBytes(key, SENDER_KEY)) sender = scan.readBytes()
    else scan.skip()
  }
  if (!scan.done) fail('bytes after the envelope')
  if (sig === undefined || sig.value.length !== 64) fail('bad ct or sig')
  if (sender === undefined) fail('bad sender')
  try {
    ed25519KeyOfMemberId(sender)
  } catch {
    fail('sender is not an Ed25519 peer id')
  }
  const signed = new Uint8Array(bytes.length - (sig.end - sig.start))
  signed[0] = MAP_OF_7
  signed.set(bytes.subarray(1, sig.start), 1)
  signed.set(bytes.subarray(sig.end), sig.start)
  verifySignature(sender, 'envelope', signed, sig.value)
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
  verifyRawEnvelope(bytes)
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
  try {
    publicKeyOfMember(e.sender)
  } catch {
    fail('sender is not an Ed25519 peer id')
  }
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
    sender: memberIdToString(e.sender),
    groupId: group.toString(),
    epochId: epoch.toString(),
    bytes,
  }
}

/**
 * Decrypts an envelope's body with the epoch's message key.
 *
 * @throws {DecryptionError} wrong key or altered bytes
 * @throws {MalformedError} the plaintext is not a well-formed message body
 */
export function openEnvelope(envelope: Envelope, key: Uint8Array): MessageBody {
  const plaintext = aeadDecrypt(key, envelope.header.nonce, envelope.ct, headerBytes(envelope.header))
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
