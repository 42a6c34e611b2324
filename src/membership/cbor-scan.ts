import { CID } from 'multiformats/cid'
import { MalformedError } from './errors.js'

/** CBOR major types used here (RFC 8949 §3.1). */
const Major = { bytes: 2, text: 3, array: 4, map: 5, tag: 6 } as const
/** DAG-CBOR's tag for a CID: a byte string of 0x00 then the CID bytes. */
const CID_TAG = 42
/** `null` (major 7, simple value 22). */
const NULL = 0xf6

/**
 * A forward-only reader of DAG-CBOR items over a byte array, for reading a few fields of a signed
 * payload before paying for a full decode: it allocates nothing for the items it skips and never
 * recurses, so a hostile input costs time in proportion to its length. It does not check canonical form
 * (the full decode after the signature check does), so what it reads only picks the key and domain to
 * check a signature with, and is compared with the full decode afterwards.
 */
export class CborScanner {
  readonly #bytes: Uint8Array
  #pos: number
  readonly #end: number
  readonly #what: string

  /** Reads `bytes[start, end)`; `what` names the input in error messages. */
  constructor(bytes: Uint8Array, what: string, start = 0, end = bytes.length) {
    this.#bytes = bytes
    this.#pos = start
    this.#end = end
    this.#what = what
  }

  /** Offset of the next item. */
  get position(): number {
    return this.#pos
  }

  /** True when every byte was read. */
  get done(): boolean {
    return this.#pos === this.#end
  }

  fail(reason: string): never {
    throw new MalformedError(`malformed ${this.#what}: ${reason}`)
  }

  /** Major type of the item whose head {@link #head} read last. */
  #major = 0
  /** Its argument: a length, a count, a value or a tag. */
  #arg = 0

  /** Reads the head of the next item into `#major` and `#arg` (no allocation: skipping is a hot loop). */
  #head(): void {
    if (this.#pos >= this.#end) this.fail('truncated')
    const first = this.#bytes[this.#pos++] as number
    this.#major = first >> 5
    const info = first & 31
    if (info < 24) {
      this.#arg = info
      return
    }
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0
    if (size === 0) this.fail('indefinite length or reserved value')
    if (this.#pos + size > this.#end) this.fail('truncated')
    let arg = 0
    for (let i = 0; i < size; i++) arg = arg * 256 + (this.#bytes[this.#pos++] as number)
    if (!Number.isSafeInteger(arg)) this.fail('length out of range')
    this.#arg = arg
  }

  #take(length: number): Uint8Array {
    if (length > this.#end - this.#pos) this.fail('truncated')
    const out = this.#bytes.subarray(this.#pos, this.#pos + length)
    this.#pos += length
    return out
  }

  /** The entry count of a map; fails on anything else. */
  readMapHeader(): number {
    this.#head()
    if (this.#major !== Major.map) this.fail('expected a map')
    return this.#arg
  }

  /** A byte string, as a view into the input (no copy). */
  readBytes(): Uint8Array {
    this.#head()
    if (this.#major !== Major.bytes) this.fail('expected bytes')
    return this.#take(this.#arg)
  }

  /** A text string's raw UTF-8 bytes, as a view into the input (no copy, no decoding). */
  readTextBytes(): Uint8Array {
    this.#head()
    if (this.#major !== Major.text) this.fail('expected a text string')
    return this.#take(this.#arg)
  }

  /** A CID (tag 42), or `null` when `nullable` and the item is null. */
  readCid(nullable: true): CID | null
  readCid(nullable?: false): CID
  readCid(nullable = false): CID | null {
    if (nullable && this.#pos < this.#end && this.#bytes[this.#pos] === NULL) {
      this.#pos++
      return null
    }
    this.#head()
    if (this.#major !== Major.tag || this.#arg !== CID_TAG) this.fail('expected a CID')
    const bytes = this.readBytes()
    if (bytes[0] !== 0x00) this.fail('a CID lacks its 0x00 prefix')
    try {
      return CID.decode(bytes.subarray(1))
    } catch (err) {
      this.fail(`bad CID (${(err as Error).message})`)
    }
  }

  /** An array of at most `max` CIDs. */
  readCids(max: number): CID[] {
    this.#head()
    if (this.#major !== Major.array) this.fail('expected an array')
    const count = this.#arg
    if (count > max) this.fail(`more than ${max} CIDs`)
    const out: CID[] = []
    for (let i = 0; i < count; i++) out.push(this.readCid())
    return out
  }

  /** Skips one whole item, nested ones included, without recursion. */
  skip(): void {
    // every head read consumes at least one byte, so a huge claimed count ends at the end of the input
    let items = 1
    while (items > 0) {
      items--
      this.#head()
      const major = this.#major
      if (major === Major.bytes || major === Major.text) {
        if (this.#arg > this.#end - this.#pos) this.fail('truncated')
        this.#pos += this.#arg
      } else if (major === Major.array) items += this.#arg
      else if (major === Major.map) items += 2 * this.#arg
      else if (major === Major.tag) items += 1
    }
  }
}

const encoder = new TextEncoder()

/** The UTF-8 bytes of a map key, to compare with {@link CborScanner.readTextBytes} without decoding. */
export function keyBytes(key: string): Uint8Array {
  return encoder.encode(key)
}

/** Byte equality of two short arrays. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
