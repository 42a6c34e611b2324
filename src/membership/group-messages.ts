/**
 * The messages of one group as one identity sees them: sealing and opening envelopes, refusing replays,
 * the grace window of superseded epochs, and the messages that wait for their epoch.
 *
 * @packageDocumentation
 */

import type { KeyObject } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { aeadKey, cidStringOf, type Identity, randomNonce } from '../crypto/index.js'
import {
  ciphertextPreview,
  decodeEnvelope,
  type Envelope,
  MAX_TEXT_BYTES,
  openEnvelope,
  sealEnvelope,
} from './envelope.js'
import type { EpochKeyring } from './epoch-keys.js'
import {
  NoCurrentEpochError,
  NotAMemberError,
  ReplayError,
  StaleEpochError,
  TooLargeError,
  UnknownAuthorError,
  UnknownEpochError,
  WrongGroupError,
} from './errors.js'
import type { SignedEvent } from './event.js'
import type { OpenedMessage, ReceiveOptions, SealedMessage } from './group-types.js'
import type { MembershipLog } from './log.js'
import { PENDING_ITEM_OVERHEAD, type PendingBudget, type PendingTicket } from './pending.js'
import type { LogEntry } from './resolution.js'

/** What {@link GroupMessages} works with: its group's identity, log and keys, and its limits. */
export interface GroupMessagesInit {
  groupId: string
  cid: CID
  identity: Identity
  log: MembershipLog
  keys: EpochKeyring
  /** Clock, in ms. */
  now: () => number
  /** How long a superseded epoch stays acceptable, in ms. */
  graceMs: number
  /** Where waiting messages are accounted. */
  budget: PendingBudget
  /** Messages that may wait for their epoch in this group. */
  maxPending: number
}

/** The message side of a `Group`; the group checks membership before it seals. */
export class GroupMessages {
  readonly #groupId: string
  readonly #cid: CID
  readonly #identity: Identity
  readonly #log: MembershipLog
  readonly #keys: EpochKeyring
  readonly #now: () => number
  readonly #graceMs: number
  readonly #maxPendingMessages: number
  readonly #budget: PendingBudget
  /** epoch id → when it stopped being (or was learned as not) the current epoch */
  readonly #supersededAt = new Map<string, number>()
  #current: string | undefined
  /** Per sender, the sequence numbers already accepted. The message id hashes sender and seq, so this
   * also catches a re-delivered id. */
  readonly #seen = new Map<string, SeqSet>()
  /** Messages waiting for their epoch, by id, oldest first. */
  readonly #pendingMessages = new Map<string, { epoch: string; bytes: Uint8Array; ticket: PendingTicket }>()
  #nextSeq = 0
  /**
   * Epoch id → its message key as a cipher key (null: none for this identity), once the keyring answered:
   * made once, since raw bytes cost a key import per message, and read without an await after that.
   */
  readonly #cipherKeys = new Map<string, KeyObject | null>()

  constructor(init: GroupMessagesInit) {
    this.#groupId = init.groupId
    this.#cid = init.cid
    this.#identity = init.identity
    this.#log = init.log
    this.#keys = init.keys
    this.#now = init.now
    this.#graceMs = init.graceMs
    this.#budget = init.budget
    this.#maxPendingMessages = init.maxPending
  }

  /**
   * After events were applied to the log: starts the grace windows of the epochs they superseded, and
   * returns the waiting envelopes whose epoch is now known, in the order they arrived, to open again.
   */
  eventsApplied(applied: SignedEvent[]): Uint8Array[] {
    this.#trackEpochs(applied)
    const released: Uint8Array[] = []
    for (const [id, pending] of this.#pendingMessages) {
      if (!this.#log.has(pending.epoch)) continue
      released.push(pending.bytes)
      this.#dropPendingMessage(id)
    }
    return released
  }

  #trackEpochs(applied: SignedEvent[]): void {
    const now = this.#now()
    const current = this.#log.currentEpoch()?.event.id
    if (this.#current !== undefined && this.#current !== current && !this.#supersededAt.has(this.#current)) {
      this.#supersededAt.set(this.#current, now)
    }
    for (const event of applied) {
      if (event.id !== current && !this.#supersededAt.has(event.id)) this.#supersededAt.set(event.id, now)
    }
    // an older epoch can become current again (e.g. after mutual removals): it is not stale then
    if (current !== undefined) this.#supersededAt.delete(current)
    this.#current = current
  }

  /**
   * Encrypts `text` under the current epoch and signs it. The caller checked that this identity is a
   * member. Synchronous once the epoch's cipher key is known (every message after the epoch's first):
   * the promise is only the API's, already settled, so a message costs no chain of awaits.
   *
   * @throws {NoCurrentEpochError} no epoch key reaches only members; wait for a rekey
   * @throws {TooLargeError} the text is over 64 KiB
   */
  seal(text: string, ts: number = this.#now()): Promise<SealedMessage> {
    try {
      if (Buffer.byteLength(text) > MAX_TEXT_BYTES) throw new TooLargeError('message text is over 64 KiB')
      const epoch = this.#log.currentEpoch()
      if (epoch === undefined) throw new NoCurrentEpochError()
      const known = this.#cipherKeyOf(epoch)
      if (known instanceof Promise) return known.then((key) => this.#sealUnder(epoch, key, text, ts))
      return Promise.resolve(this.#sealUnder(epoch, known, text, ts))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #sealUnder(epoch: LogEntry, key: KeyObject | null, text: string, ts: number): SealedMessage {
    if (key === null) {
      const bad = this.#keys.problem(epoch.event.id)
      throw new NoCurrentEpochError(
        bad === undefined
          ? 'this member holds no key for the current epoch yet'
          : `the key of the current epoch, chosen by ${bad.author}, is unusable (${bad.reason}); waiting for a rekey`,
      )
    }
    const seq = this.#nextSeq++
    const bytes = sealEnvelope({
      identity: this.#identity,
      group: this.#cid,
      epoch: epoch.event.cid,
      seq,
      key,
      body: { text, ts },
      nonce: randomNonce(),
    })
    // the id is the envelope's content address; no need to decode (and re-verify) what we just signed
    const id = cidStringOf(bytes)
    this.markSeen(this.#identity.memberId, seq)
    return { bytes, id, seq, ts, epoch: epoch.event.id }
  }

  /**
   * Checks and, where this identity holds the epoch key, decrypts a message envelope.
   *
   * Rejections, in order of checking: too large; bad signature; malformed; wrong group; a replay (an id
   * or a sender's sequence number already seen); an unknown epoch (kept, accounted against `options.from`
   * and its sender in the pending budget, and returned later by {@link GroupMessages.eventsApplied}; not
   * kept when the sender was never added in the known log, or there is no room); a sender who is not a
   * member of that epoch; from a sender who is no longer a member, a voided epoch or a superseded epoch
   * past the grace window; ciphertext that does not authenticate.
   *
   * @returns the decrypted message, or `kind: 'encrypted'` when this identity has no key for the epoch
   * @throws {TooLargeError | MalformedError | WrongGroupError | InvalidSignatureError | ReplayError |
   *   UnknownEpochError | UnknownAuthorError | NotAMemberError | StaleEpochError | DecryptionError |
   *   PendingLimitError}
   */
  open(bytes: Uint8Array, options: ReceiveOptions = {}): Promise<OpenedMessage> {
    try {
      const { envelope, epoch } = this.#admit(bytes, options)
      const known = this.#cipherKeyOf(epoch)
      if (!(known instanceof Promise)) return Promise.resolve(this.#openWith(envelope, known))
      return known.then((key) => {
        // a second delivery may have raced through the wait for the key
        this.#checkReplay(envelope)
        return this.#openWith(envelope, key)
      })
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The checks of {@link GroupMessages.open} before decryption: the envelope and the epoch it is under. */
  #admit(bytes: Uint8Array, options: ReceiveOptions): { envelope: Envelope; epoch: LogEntry } {
    const envelope = decodeEnvelope(bytes)
    if (envelope.groupId !== this.#groupId)
      throw new WrongGroupError(`message is for group ${envelope.groupId}`)
    this.#checkReplay(envelope)
    const epoch = this.#log.get(envelope.epochId)
    if (epoch === undefined) {
      if (!this.#pendingMessages.has(envelope.id)) this.#keepPendingMessage(envelope, options.from ?? '')
      throw new UnknownEpochError(
        `message ${envelope.id} is under unknown epoch ${envelope.epochId}; it waits`,
      )
    }
    if (!epoch.membersAfter.has(envelope.sender)) {
      throw new NotAMemberError(`${envelope.sender} is not a member of epoch ${envelope.epochId}`)
    }
    if (!this.#log.members().has(envelope.sender)) {
      // Someone who is no longer a member may only have in-flight posts accepted: under an epoch it
      // held before its removal, and only within the grace window. Any epoch it signed later (back-dated
      // to look concurrent) is refused, whatever the resolution made of that event.
      if (!this.#log.precedesRemovalOf(epoch, envelope.sender)) {
        throw new NotAMemberError(
          `${envelope.sender} is not a member, and epoch ${envelope.epochId} does not precede their removal`,
        )
      }
      const supersededAt = this.#supersededAt.get(envelope.epochId)
      if (supersededAt !== undefined && this.#now() - supersededAt > this.#graceMs) {
        throw new StaleEpochError(
          `${envelope.sender} is no longer a member and epoch ${envelope.epochId} was superseded more than ${this.#graceMs} ms ago`,
        )
      }
    }
    // A current member may post under an older epoch (a message written offline, sealed before it
    // learned of a change): it holds the current key anyway, so accepting it reveals nothing.
    return { envelope, epoch }
  }

  /** Decrypts an admitted envelope with its epoch's cipher key (null: none for this identity). */
  #openWith(envelope: Envelope, key: KeyObject | null): OpenedMessage {
    const body = key === null ? undefined : openEnvelope(envelope, key)
    this.markSeen(envelope.sender, envelope.header.seq)
    const { id, sender, epochId } = envelope
    const seq = envelope.header.seq
    if (body === undefined) {
      const preview = ciphertextPreview(envelope.ct)
      return { kind: 'encrypted', id, sender, seq, epoch: epochId, bytes: envelope.ct.length, preview }
    }
    return { kind: 'message', id, sender, seq, epoch: epochId, text: body.text, ts: body.ts }
  }

  /**
   * Keeps a message until its epoch arrives. Once the log is known, only a sender that some event of it
   * adds may have a message wait: a member's message always comes from such a sender. Before the genesis
   * is known nobody can be told apart, so every message from the network waits as a stranger's (see
   * {@link PendingBudget}).
   */
  #keepPendingMessage(envelope: Envelope, from: string): void {
    const known = this.#log.genesis !== undefined
    if (known && !this.#log.wasEverAdded(envelope.sender)) {
      throw new UnknownAuthorError(
        `message ${envelope.id} is under unknown epoch ${envelope.epochId}, and its sender ${envelope.sender} was never added to this group: it does not wait`,
      )
    }
    const { bytes, id } = envelope
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    const ticket = this.#budget.admit(
      {
        group: this.#groupId,
        kind: 'message',
        from,
        author: envelope.sender,
        member: known || from === '',
        bytes: bytes.length + PENDING_ITEM_OVERHEAD,
        groupLimit: { items: this.#maxPendingMessages, bytes: Number.POSITIVE_INFINITY },
      },
      () => this.#pendingMessages.delete(id),
    )
    this.#pendingMessages.set(id, { epoch: envelope.epochId, bytes: own ? bytes : bytes.slice(), ticket })
  }

  #dropPendingMessage(id: string): void {
    const pending = this.#pendingMessages.get(id)
    if (pending === undefined) return
    this.#pendingMessages.delete(id)
    this.#budget.release(pending.ticket)
  }

  /** How many messages wait for their epoch. */
  get pendingCount(): number {
    return this.#pendingMessages.size
  }

  /** Drops every waiting message and gives its room back to the pending budget. */
  clearPending(): void {
    for (const id of [...this.#pendingMessages.keys()]) this.#dropPendingMessage(id)
  }

  /**
   * Ends the grace window of every epoch that is not current. Call after replaying stored events on
   * restart: the window counts from when this replica learned of a change, and a restart must not
   * reopen it for a removed member's posts.
   */
  expireGraceWindows(): void {
    for (const id of this.#supersededAt.keys()) this.#supersededAt.set(id, Number.NEGATIVE_INFINITY)
  }

  /** Next sequence number this identity will use. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /** The cipher key of `epoch`'s message key: at once when known, else once the keyring opened it. */
  #cipherKeyOf(epoch: LogEntry): KeyObject | null | Promise<KeyObject | null> {
    const known = this.#cipherKeys.get(epoch.event.id)
    if (known !== undefined) return known
    return this.#keys.messageKey(epoch).then((key) => {
      const cipherKey = key === null ? null : aeadKey(key)
      this.#cipherKeys.set(epoch.event.id, cipherKey)
      return cipherKey
    })
  }

  #checkReplay(envelope: Envelope): void {
    if (this.#seen.get(envelope.sender)?.has(envelope.header.seq)) {
      throw new ReplayError(
        `message ${envelope.id} replays sequence number ${envelope.header.seq} of ${envelope.sender}`,
      )
    }
  }

  /**
   * Records a message as accepted, so a replay of it is refused, and so this identity's own sequence
   * numbers continue after it.
   */
  markSeen(sender: string, seq: number): void {
    let seqs = this.#seen.get(sender)
    if (seqs === undefined) {
      seqs = new SeqSet()
      this.#seen.set(sender, seqs)
    }
    seqs.add(seq)
    if (sender === this.#identity.memberId && seq >= this.#nextSeq) this.#nextSeq = seq + 1
  }
}

/**
 * A set of sequence numbers stored as "every number up to `contiguous`" plus the ones above it, so a
 * sender's whole history costs a few bytes once it has arrived without gaps.
 */
class SeqSet {
  #contiguous = -1
  readonly #above = new Set<number>()

  has(seq: number): boolean {
    return seq <= this.#contiguous || this.#above.has(seq)
  }

  add(seq: number): void {
    if (this.has(seq)) return
    this.#above.add(seq)
    while (this.#above.delete(this.#contiguous + 1)) this.#contiguous++
  }
}
