/**
 * The key schedule of a group's epochs: a fresh group key per epoch event sealed to each member, or, for
 * an add, a key derived one-way from the current epoch's and sealed to the newcomer only; its signed
 * commitment; and, on the reading side, the message keys this identity can open or derive, with the
 * epochs whose key is unusable to it. Who can derive which key is epoch-derivation.ts.
 *
 * @packageDocumentation
 */

import { logger } from '@libp2p/logger'
import type { CID } from 'multiformats/cid'
import { DecryptionError, hkdf, type Identity, openKey, randomKey, sealKey, sha256 } from '../crypto/index.js'
import { derivationContext } from './epoch-derivation.js'
import { BadEpochKeyError } from './errors.js'
import { compareBytes, type EventKey, type EventPayload, keyContext } from './event.js'
import type { EpochKeyProblem } from './group-types.js'
import { isEpoch, type LogEntry } from './resolution.js'

const log = logger('p2pchat:group')
const EPOCH_KEY_INFO = new TextEncoder().encode('p2pchat/v1/epoch-key')
const MESSAGE_KEY_INFO = 'p2pchat/v1/message-key'
const KEY_COMMITMENT_INFO = 'p2pchat/v1/epoch-key-commitment'
const ADD_EPOCH_INFO = 'p2pchat/v1/add-epoch'

/**
 * The signed commitment to an epoch's group key: a one-way, domain-separated derivation of it (HKDF), so
 * it reveals nothing about the key, and two different keys give different commitments.
 */
export function commitToKey(groupKey: Uint8Array): Uint8Array {
  return hkdf(groupKey, KEY_COMMITMENT_INFO)
}

/**
 * The group key of a derived add: HKDF-SHA256 of its base epoch's group key, with info
 * `p2pchat/v1/add-epoch\0` + hex SHA-256 of the add's payload without keys and commitment (which names
 * the base, parents, author and subject). One-way: the newcomer cannot compute the base key from it.
 */
export function deriveAddKey(
  baseKey: Uint8Array,
  payload: Omit<EventPayload, 'keys' | 'keyCommitment'>,
): Uint8Array {
  const context = Buffer.from(sha256(derivationContext(payload))).toString('hex')
  return hkdf(baseKey, `${ADD_EPOCH_INFO}\0${context}`)
}

/**
 * An add's key derived from `base`'s group key (`baseKey`), its commitment, and its one seal, to the
 * subject. The caller checked that exactly the members before the add hold the base key.
 */
export function sealDerivedAddKey(
  payload: Omit<EventPayload, 'keys' | 'keyCommitment' | 'base'>,
  base: CID,
  baseKey: Uint8Array,
): { base: CID; keyCommitment: Uint8Array; keys: EventKey[] } {
  const groupKey = deriveAddKey(baseKey, { ...payload, base })
  const keyCommitment = commitToKey(groupKey)
  const to = payload.subject as Uint8Array
  const sealed = sealKey(to, groupKey, EPOCH_KEY_INFO, keyContext({ ...payload, base, keyCommitment }))
  return { base, keyCommitment, keys: [{ to, enc: sealed.enc, ct: sealed.ct }] }
}

/**
 * Seals made per turn of the event loop (~0.1-0.2 ms each): a rekey of 1,000 members then holds the loop
 * a few ms at a time instead of ~100 ms at once, so a node keeps answering gossip and sync meanwhile.
 */
const SEALS_PER_TURN = 32

/**
 * A fresh group key for an event: its commitment, and the key sealed to each recipient, sorted by
 * recipient. Between every {@link SEALS_PER_TURN} seals it lets the event loop turn.
 */
export async function sealEpochKey(
  base: Omit<EventPayload, 'keys' | 'keyCommitment'>,
  recipients: Uint8Array[],
): Promise<{ keyCommitment: Uint8Array; keys: EventKey[] }> {
  const groupKey = randomKey()
  const keyCommitment = commitToKey(groupKey)
  // the seals are bound to the whole payload but the keys, the commitment included
  const aad = keyContext({ ...base, keyCommitment })
  const sorted = [...recipients].sort(compareBytes)
  const keys: EventKey[] = []
  for (const to of sorted) {
    if (keys.length % SEALS_PER_TURN === SEALS_PER_TURN - 1) await new Promise(setImmediate)
    const sealed = sealKey(to, groupKey, EPOCH_KEY_INFO, aad)
    keys.push({ to, enc: sealed.enc, ct: sealed.ct })
  }
  return { keyCommitment, keys }
}

/** The message keys of one identity in one group, opened once per epoch from the key sealed to it. */
export class EpochKeyring {
  readonly #identity: Identity
  readonly #ciphertextOnly: boolean
  /** epoch id → message key, or null when this identity is not a recipient or its key is bad */
  readonly #messageKeys = new Map<string, Promise<Uint8Array | null>>()
  /** epoch id → group key, or null when this identity holds none or it is unusable */
  readonly #groupKeys = new Map<string, Uint8Array | null>()
  /** epoch id → why the key sealed to this identity is unusable */
  readonly #badKeys = new Map<string, EpochKeyProblem>()

  /** With `ciphertextOnly` (a relay), no key is ever opened, even one sealed to this identity. */
  constructor(identity: Identity, ciphertextOnly: boolean) {
    this.#identity = identity
    this.#ciphertextOnly = ciphertextOnly
  }

  /** Why the key sealed to this identity in `epochId` is unusable, once it was tried and found so. */
  problem(epochId: string): EpochKeyProblem | undefined {
    return this.#badKeys.get(epochId)
  }

  /** The message key of `epoch`, or null when this identity holds none or it is unusable. */
  messageKey(epoch: LogEntry): Promise<Uint8Array | null> {
    let key = this.#messageKeys.get(epoch.event.id)
    if (key === undefined) {
      const groupKey = this.groupKey(epoch)
      key = Promise.resolve(groupKey === null ? null : hkdf(groupKey, MESSAGE_KEY_INFO))
      this.#messageKeys.set(epoch.event.id, key)
    }
    return key
  }

  /**
   * The group key of `epoch`, or null when this identity holds none or it is unusable: opened from the
   * seal to this identity, else derived from the base of a derived add. A chain of derived adds is walked
   * back to the first key this identity has, then derived forward, each step checked against its
   * commitment; every key is kept (32 bytes an epoch).
   */
  groupKey(epoch: LogEntry): Uint8Array | null {
    const chain: LogEntry[] = []
    let at: LogEntry | undefined = epoch
    while (at !== undefined && !this.#groupKeys.has(at.event.id)) {
      chain.push(at)
      // a fresh key is opened from its seal; a derived one too when this identity is the newcomer
      at = at.keyBase !== undefined && !this.#sealedTo(at) ? at.keyBase : undefined
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const entry = chain[i] as LogEntry
      this.#groupKeys.set(entry.event.id, this.#openGroupKey(entry))
    }
    return this.#groupKeys.get(epoch.event.id) ?? null
  }

  #sealedTo(epoch: LogEntry): boolean {
    const { keys } = epoch.event.payload
    return keys.some((k) => compareBytes(k.to, this.#identity.memberIdBytes) === 0)
  }

  /** The group key of `epoch`, its base's (if any) already settled. */
  #openGroupKey(epoch: LogEntry): Uint8Array | null {
    const { payload } = epoch.event
    if (this.#ciphertextOnly || !isEpoch(epoch)) return null
    const mine = payload.keys.find((k) => compareBytes(k.to, this.#identity.memberIdBytes) === 0)
    let groupKey: Uint8Array
    if (mine !== undefined) {
      try {
        groupKey = openKey(this.#identity, mine, EPOCH_KEY_INFO, keyContext(payload))
      } catch (err) {
        if ((err as Error).name !== DecryptionError.name) throw err
        return this.#badKey(epoch, 'the key sealed to this member does not open')
      }
    } else if (epoch.keyBase !== undefined) {
      const baseKey = this.#groupKeys.get(epoch.keyBase.event.id) ?? null
      if (baseKey === null) {
        // the base is unusable to this member, so is every key derived from it: rekey
        const bad = this.#badKeys.get(epoch.keyBase.event.id)
        if (bad === undefined) return null
        return this.#badKey(epoch, `it is derived from epoch ${bad.epoch}, whose key is unusable`)
      }
      groupKey = deriveAddKey(baseKey, payload)
    } else return null
    // Each member opens its own seal or derives its key, so without the signed commitment an author could
    // give each member a different key (or garbage to one of them) and every replica would still accept
    // the epoch.
    if (compareBytes(commitToKey(groupKey), payload.keyCommitment as Uint8Array) !== 0) {
      return this.#badKey(
        epoch,
        'the key sealed to or derived by this member is not the key its author committed to',
      )
    }
    return groupKey
  }

  #badKey(epoch: LogEntry, reason: string): null {
    const problem = { epoch: epoch.event.id, author: epoch.event.author, reason }
    this.#badKeys.set(epoch.event.id, problem)
    log.error('epoch %s by %s: %s', problem.epoch, problem.author, new BadEpochKeyError(reason).message)
    return null
  }
}
