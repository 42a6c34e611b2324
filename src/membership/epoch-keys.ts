/**
 * The key schedule of a group's epochs: a fresh group key per epoch event, its signed commitment, and
 * its seal to each member; and, on the reading side, the message keys this identity can open, with the
 * epochs whose key sealed to it is unusable.
 *
 * @packageDocumentation
 */

import { logger } from '@libp2p/logger'
import { DecryptionError, hkdf, type Identity, openKey, randomKey, sealKey } from '../crypto/index.js'
import { BadEpochKeyError } from './errors.js'
import { compareBytes, type EventKey, type EventPayload, keyContext } from './event.js'
import type { EpochKeyProblem } from './group-types.js'
import { isEpoch, type LogEntry } from './resolution.js'

const log = logger('p2pchat:group')
const EPOCH_KEY_INFO = new TextEncoder().encode('p2pchat/v1/epoch-key')
const MESSAGE_KEY_INFO = 'p2pchat/v1/message-key'
const KEY_COMMITMENT_INFO = 'p2pchat/v1/epoch-key-commitment'

/**
 * The signed commitment to an epoch's group key: a one-way, domain-separated derivation of it (HKDF), so
 * it reveals nothing about the key, and two different keys give different commitments.
 */
export function commitToKey(groupKey: Uint8Array): Uint8Array {
  return hkdf(groupKey, KEY_COMMITMENT_INFO)
}

export /** A fresh group key for an event: its commitment, and the key sealed to each recipient, sorted by recipient. */
function sealEpochKey(
  base: Omit<EventPayload, 'keys' | 'keyCommitment'>,
  recipients: Uint8Array[],
): { keyCommitment: Uint8Array; keys: EventKey[] } {
  const groupKey = randomKey()
  const keyCommitment = commitToKey(groupKey)
  // the seals are bound to the whole payload but the keys, the commitment included
  const aad = keyContext({ ...base, keyCommitment })
  const sorted = [...recipients].sort(compareBytes)
  const keys = sorted.map((to) => {
    const sealed = sealKey(to, groupKey, EPOCH_KEY_INFO, aad)
    return { to, enc: sealed.enc, ct: sealed.ct }
  })
  return { keyCommitment, keys }
}

/** The message keys of one identity in one group, opened once per epoch from the key sealed to it. */
export class EpochKeyring {
  readonly #identity: Identity
  readonly #ciphertextOnly: boolean
  /** epoch id → message key, or null when this identity is not a recipient or its key is bad */
  readonly #messageKeys = new Map<string, Promise<Uint8Array | null>>()
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
      key = this.#openEpochKey(epoch)
      this.#messageKeys.set(epoch.event.id, key)
    }
    return key
  }

  async #openEpochKey(epoch: LogEntry): Promise<Uint8Array | null> {
    const { payload } = epoch.event
    if (this.#ciphertextOnly || !isEpoch(epoch)) return null
    const mine = payload.keys.find((k) => compareBytes(k.to, this.#identity.memberIdBytes) === 0)
    if (mine === undefined) return null
    let groupKey: Uint8Array
    try {
      groupKey = openKey(this.#identity, mine, EPOCH_KEY_INFO, keyContext(payload))
    } catch (err) {
      if ((err as Error).name !== DecryptionError.name) throw err
      return this.#badKey(epoch, 'the key sealed to this member does not open')
    }
    // Each member opens its own seal, so without the signed commitment an author could give each member
    // a different key (or garbage to one of them) and every replica would still accept the epoch.
    if (compareBytes(commitToKey(groupKey), payload.keyCommitment as Uint8Array) !== 0) {
      return this.#badKey(epoch, 'the key sealed to this member is not the key its author committed to')
    }
    return hkdf(groupKey, MESSAGE_KEY_INFO)
  }

  #badKey(epoch: LogEntry, reason: string): null {
    const problem = { epoch: epoch.event.id, author: epoch.event.author, reason }
    this.#badKeys.set(epoch.event.id, problem)
    log.error('epoch %s by %s: %s', problem.epoch, problem.author, new BadEpochKeyError(reason).message)
    return null
  }
}
