/**
 * Who can derive each epoch key, as the log checks it (no cryptography here; epoch-keys.ts derives and
 * seals). Every epoch's key is known to exactly its *holders*: the members after it and its author.
 *
 * - A fresh key (genesis, remove, rekey, an add without `base`) is sealed to exactly the members after the
 *   event, and its author chose it.
 * - A derived add names a `base` epoch in its causal past whose holders are exactly the members before
 *   the add; its key is derived one-way from the base's key (epoch-keys.ts) and sealed only to the
 *   subject. Whoever can compute the base key can compute this one, and nobody else but the subject, so
 *   its holders are the members before it plus the subject: the members after it, as for a fresh key.
 *
 * By induction every epoch's holders are its members after it plus its author, so a member removed in an
 * epoch's causal past (and not re-added after) never holds its key, and the current epoch (chosen among
 * epochs whose holders are all current members) reaches no one else.
 *
 * @packageDocumentation
 */

import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { bytesKey } from '../crypto/index.js'
import { InvalidEpochError } from './errors.js'
import { type EventPayload, MAX_MEMBERS, type SignedEvent } from './event.js'
import { isEpoch, type LogEntry, type MemberMap } from './resolution.js'

/** The payload without its keys: what each sealed key is bound to (HPKE associated data). */
export function keyContext(payload: Omit<EventPayload, 'keys'> | EventPayload): Uint8Array {
  return encodeWithout(payload, 'keys')
}

/**
 * What a derived add's key is derived for (with the base key): the payload without its keys and its key
 * commitment, which is computed from the derived key. It names the base, the parents, author and subject,
 * so two adds never derive the same key unless they are the same add.
 */
export function derivationContext(payload: Omit<EventPayload, 'keys' | 'keyCommitment'>): Uint8Array {
  return encodeWithout(payload, 'keys', 'keyCommitment')
}

function encodeWithout(payload: object, ...without: string[]): Uint8Array {
  // copied field by field: reading `keys` of an event whose keys were released would decode them again
  const rest: Record<string, unknown> = {}
  for (const field of Object.keys(payload)) {
    if (!without.includes(field)) rest[field] = payload[field as keyof typeof payload]
  }
  return dagCbor.encode(rest)
}

/** The decoder's check of a derived add: its base is a CID and its one sealed key goes to its subject. */
export function isDerivedAddShape(p: Record<string, unknown>): boolean {
  const keys = p.keys as Array<{ to: Uint8Array }>
  const subject = p.subject as Uint8Array
  return (
    CID.asCID(p.base) !== null &&
    keys.length === 1 &&
    Buffer.compare(keys[0]?.to as Uint8Array, subject) === 0
  )
}

/** Whether exactly `members` hold `epoch`'s key: its members after it, and its author. */
export function heldExactlyBy(epoch: LogEntry, members: MemberMap): boolean {
  const after = epoch.membersAfter
  if (!members.has(epoch.event.author)) return false
  if (after.size + (after.has(epoch.event.author) ? 0 : 1) !== members.size) return false
  if (after === members) return true
  for (const id of after.keys()) if (!members.has(id)) return false
  return true
}

/**
 * The epoch a derived add's key comes from, checked: an epoch of the log in the add's causal past, held by
 * exactly `before`, the members in the add's causal past. `undefined` for every other event.
 *
 * @throws {InvalidEpochError} when the base is anything else: deriving from it would give the key to
 *   someone who is not a member after the add
 */
export function keyBaseOf(
  event: SignedEvent,
  parents: readonly LogEntry[],
  before: MemberMap,
  lookup: (id: string) => LogEntry | undefined,
  precedes: (x: LogEntry, y: LogEntry) => boolean,
): LogEntry | undefined {
  const { base } = event.payload
  if (base === undefined) return undefined
  const entry = lookup(base.toString())
  if (entry === undefined || !isEpoch(entry) || !parents.some((p) => p === entry || precedes(entry, p))) {
    throw new InvalidEpochError(`add ${event.id} derives its key from ${base}, which is no epoch in its past`)
  }
  if (!heldExactlyBy(entry, before)) {
    throw new InvalidEpochError(
      `add ${event.id} derives its key from epoch ${entry.event.id}, whose key is not held by exactly the members before the add`,
    )
  }
  return entry
}

/**
 * Checks that a fresh key goes to exactly `members`, comparing member id bytes: each recipient's id is
 * looked up among the ids adds have named (anyone else is no member), without converting it to a peer id.
 * A derived add's one key goes to its subject (checked by the decoder), a member after it; its members
 * are counted here, as the decoder's bound on keys does not count them.
 */
export function checkRecipients(
  event: SignedEvent,
  members: MemberMap,
  idOfBytes: ReadonlyMap<string, string>,
): void {
  if (event.payload.type === 'rename') return
  if (members.size > MAX_MEMBERS) {
    // the next removal would have to seal more keys than an event may hold
    throw new InvalidEpochError(
      `epoch ${event.id} would make ${members.size} members; the limit is ${MAX_MEMBERS}`,
    )
  }
  if (event.payload.base !== undefined) return
  const keys = event.payload.keys
  if (keys.length !== members.size) {
    throw new InvalidEpochError(`epoch ${event.id} seals ${keys.length} keys for ${members.size} members`)
  }
  // keys are sorted and unique (checked by the decoder), so equal sizes plus inclusion means equality
  for (const key of keys) {
    const id = idOfBytes.get(bytesKey(key.to))
    if (id === undefined || !members.has(id)) {
      throw new InvalidEpochError(`epoch ${event.id} seals a key to a non-member`)
    }
  }
}
