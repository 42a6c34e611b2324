import { join } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { Logger } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { Group } from '../membership/index.js'
import { makeDataDir, makePrivateFile } from './data-dir.js'
import { inRanges, runsOf, type SeqRanges, watermarkOf } from './seq-ranges.js'
import {
  holdsOldMessagesTable,
  MIGRATE_MESSAGES,
  type Row,
  SCHEMA,
  type StoredEnvelope,
  type StoredGroup,
  type StoredMessage,
  type StoredPeer,
  toMessage,
  toPeer,
} from './store-schema.js'

export { loadOrCreateIdentity } from './data-dir.js'
export { inRanges, type SeqRanges } from './seq-ranges.js'
export type { StoredEnvelope, StoredGroup, StoredMessage, StoredPeer } from './store-schema.js'

const log = logger('p2pchat:node:store')

/** Ranges of sequence numbers reported per sender by {@link ChatStore.seqRanges}, at most. */
export const MAX_RANGES_PER_SENDER = 256

/**
 * Rows {@link ChatStore.envelopesAfter} selects from per query, with the bytes of those up to
 * {@link INLINE_ENVELOPE_BYTES} (a text of a few lines): a page holds at most 256 KiB of them. Larger
 * envelopes are read one at a time, as the caller takes them.
 */
const ENVELOPE_PAGE_ROWS = 128
const INLINE_ENVELOPE_BYTES = 2048
/** A page row of {@link ChatStore.envelopesAfter}: n, id, sender, seq, epoch, and the bytes if inline. */
type EnvelopeRow = [number, string, string, number, string, Uint8Array | null]

/**
 * The node's database: one SQLite file per data directory, in WAL mode. Every write is committed
 * before the caller acknowledges anything to the user, so it survives the process being killed; a
 * write is its own transaction, except the few that belong together ({@link ChatStore.addMessages}).
 */
export class ChatStore {
  readonly #db: DatabaseSync
  readonly #statements = new Map<string, StatementSync>()

  private constructor(db: DatabaseSync) {
    this.#db = db
  }

  /**
   * Opens (creating if needed) `dir/p2pchat.db`, readable by its owner only. Pass `':memory:'` as `dir`
   * for tests.
   */
  static open(dir: string): ChatStore {
    let path = ':memory:'
    if (dir !== ':memory:') {
      makeDataDir(dir)
      path = join(dir, 'p2pchat.db')
      // SQLite creates a new database 0644 (less the umask) and gives its -wal and -shm files the mode of
      // the database, so the database is created 0600 before SQLite opens it. Files an older p2pchat
      // created 0644 are restricted too, the -wal and -shm a crash left behind included.
      makePrivateFile(path, { create: true })
      for (const suffix of ['-wal', '-shm']) makePrivateFile(`${path}${suffix}`, { create: false })
    }
    const db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    const store = new ChatStore(db)
    if (holdsOldMessagesTable(db)) {
      log('moving the messages into the table unique by sender and seq')
      store.#transaction(() => db.exec(MIGRATE_MESSAGES))
    }
    db.exec(SCHEMA)
    return store
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql)
    if (statement === undefined) {
      statement = this.#db.prepare(sql)
      this.#statements.set(sql, statement)
    }
    return statement
  }

  /**
   * Closes the database. Idempotent. Later reads throw; later writes are dropped with a log line, since
   * network input still in flight when a node stops may try to store something.
   */
  close(): void {
    if (this.#db.isOpen) {
      this.#statements.clear()
      try {
        this.#db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
      } finally {
        this.#db.close()
      }
    }
  }

  /** Whether the database is open. */
  get isOpen(): boolean {
    return this.#db.isOpen
  }

  /** False (and a log line) when the database was closed: the write is dropped. */
  #writable(what: string): boolean {
    if (this.#db.isOpen) return true
    log('store closed, dropping write of %s', what)
    return false
  }

  getMeta(key: string): string | undefined {
    const row = this.#statement('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined
    return row?.value as string | undefined
  }

  setMeta(key: string, value: string): void {
    if (!this.#writable('meta')) return
    this.#statement(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, value)
  }

  deleteMeta(key: string): void {
    if (!this.#writable('meta')) return
    this.#statement('DELETE FROM meta WHERE key = ?').run(key)
  }

  /** Records a group; keeps an existing name or invite unless new ones are given. */
  saveGroup(group: { id: string; name?: string | null; invite?: string | null }, now = Date.now()): void {
    if (!this.#writable('a group')) return
    this.#statement(
      `INSERT INTO groups (id, name, invite, joined_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, name), invite = coalesce(excluded.invite, invite)`,
    ).run(group.id, group.name ?? null, group.invite ?? null, now)
  }

  groups(): StoredGroup[] {
    return (this.#statement('SELECT * FROM groups ORDER BY joined_at, id').all() as Row[]).map((row) => ({
      id: row.id as string,
      name: (row.name as string | null) ?? null,
      invite: (row.invite as string | null) ?? null,
      joinedAt: Number(row.joined_at),
    }))
  }

  /** Forgets a group's row (not its events or messages). */
  deleteGroup(groupId: string): void {
    if (!this.#writable('a group deletion')) return
    this.#statement('DELETE FROM groups WHERE id = ?').run(groupId)
  }

  /** Forgets a group with everything stored for it: its row, events and messages, in one transaction. */
  purgeGroup(groupId: string): void {
    if (!this.#writable('a group purge')) return
    this.#transaction(() => {
      for (const table of ['groups WHERE id', 'events WHERE group_id', 'messages WHERE group_id']) {
        this.#statement(`DELETE FROM ${table} = ?`).run(groupId)
      }
    })
  }

  /** Runs `writes` in one transaction: all of them are committed, or (it throws) none. */
  #transaction<T>(writes: () => T): T {
    this.#db.exec('BEGIN')
    try {
      const result = writes()
      this.#db.exec('COMMIT')
      return result
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /** Per sender of a group's stored messages, when the last of them was accepted. */
  senderActivity(groupId: string): Map<string, number> {
    const rows = this.#statement(
      'SELECT sender, max(received_at) AS last FROM messages WHERE group_id = ? GROUP BY sender',
    ).all(groupId) as Row[]
    return new Map(rows.map((row) => [row.sender as string, Number(row.last)]))
  }

  /** Stores an event; false when it was already stored (or the store is closed). */
  addEvent(groupId: string, id: string, bytes: Uint8Array): boolean {
    if (!this.#writable('an event')) return false
    const result = this.#statement('INSERT OR IGNORE INTO events (group_id, id, bytes) VALUES (?, ?, ?)').run(
      groupId,
      id,
      bytes,
    )
    return Number(result.changes) > 0
  }

  /** A group's events in the order they were stored (parents first). */
  events(groupId: string): Uint8Array[] {
    return (
      this.#statement('SELECT bytes FROM events WHERE group_id = ? ORDER BY n').all(groupId) as Row[]
    ).map((row) => row.bytes as Uint8Array)
  }

  /** Bytes of stored events of one group. */
  eventBytes(groupId: string): number {
    return this.#bytesOf('events', groupId)
  }

  /** Stores a message; false when its sender's seq was stored already (or the store is closed). */
  addMessage(message: StoredMessage): boolean {
    if (!this.#writable('a message')) return false
    const result = this.#statement(
      `INSERT OR IGNORE INTO messages (group_id, id, sender, seq, epoch, received_at, bytes, text, ts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      message.groupId,
      message.id,
      message.sender,
      message.seq,
      message.epoch,
      message.receivedAt,
      message.bytes,
      message.text,
      message.ts,
    )
    return Number(result.changes) > 0
  }

  /**
   * Stores messages with one commit (a sync frame's worth costs one transaction, not one each). When one
   * of them fails, the transaction is rolled back and each is stored on its own, so a bad one loses only
   * itself: `onError` is told of each that failed. Returns per message whether it was stored now (false:
   * stored already, failed, or the store is closed).
   */
  addMessages(
    messages: readonly StoredMessage[],
    onError: (message: StoredMessage, err: Error) => void,
  ): boolean[] {
    if (messages.length === 0 || !this.#writable('messages')) return messages.map(() => false)
    // one alone (gossip) needs no transaction of its own around it
    if (messages.length > 1) {
      try {
        return this.#transaction(() => messages.map((message) => this.addMessage(message)))
      } catch {
        // which one failed, and why, is told below: each is tried alone
      }
    }
    return messages.map((message) => {
      try {
        return this.addMessage(message)
      } catch (err) {
        onError(message, err as Error)
        return false
      }
    })
  }

  /** Every message of a group, in the order this peer accepted them. */
  messages(groupId: string): StoredMessage[] {
    return (
      this.#statement('SELECT * FROM messages WHERE group_id = ? ORDER BY n').all(groupId) as Row[]
    ).map(toMessage)
  }

  /**
   * The last `limit` readable messages to arrive, in the order they arrived. Not by sender time: a
   * sender's clock may be wrong, and one that claims a far future would stay the newest message forever.
   */
  history(groupId: string, limit: number): StoredMessage[] {
    const rows = this.#statement(
      `SELECT * FROM (SELECT * FROM messages WHERE group_id = ? AND text IS NOT NULL ORDER BY n DESC LIMIT ?)
       ORDER BY n`,
    ).all(groupId, limit) as Row[]
    return rows.map(toMessage)
  }

  /**
   * Per sender, the highest sequence number below which this peer has every message (-1 when it has
   * none from 0): what a sync peer needs to send only what is missing.
   */
  watermarks(groupId: string): Record<string, number> {
    const marks: Record<string, number> = {}
    for (const [sender, ranges] of Object.entries(this.seqRanges(groupId, 1)))
      marks[sender] = watermarkOf(ranges)
    return marks
  }

  /**
   * Per sender, the sequence numbers of the stored messages of a group, as sorted inclusive ranges: the
   * first `maxPerSender` of them (a peer sends the rest again, which is harmless). Unlike a watermark this
   * also covers a member added late, who never stores the messages of epochs before it was added.
   */
  seqRanges(groupId: string, maxPerSender = MAX_RANGES_PER_SENDER): Record<string, SeqRanges> {
    const out: Record<string, SeqRanges> = {}
    for (const [sender, from, to] of this.#seqRuns(groupId)) {
      const ranges = out[sender] ?? []
      out[sender] = ranges
      if (ranges.length < maxPerSender) ranges.push([from, to])
    }
    return out
  }

  /**
   * {@link runsOf} the group's stored seqs, read from their index as arrays, not a row object per message:
   * a restart and every sync ask read them all.
   */
  #seqRuns(groupId: string): Iterable<[string, number, number]> {
    const statement = this.#statement(
      'SELECT sender, seq FROM messages WHERE group_id = ? ORDER BY sender, seq',
    )
    statement.setReturnArrays(true)
    return runsOf(statement.iterate(groupId) as Iterable<[string, number]>)
  }

  /**
   * The envelopes a peer lacks, in acceptance order: those above its watermark for their sender and
   * outside the ranges it reported having, limited to `epochs` when given. Read as the caller iterates,
   * a page at a time (see {@link ENVELOPE_PAGE_ROWS}), as arrays, so memory stays bounded however many
   * match, and no read is left open between two steps (other syncs, and writes, go on meanwhile; an
   * envelope deleted meanwhile is skipped unless its page was read before).
   */
  *envelopesAfter(
    groupId: string,
    watermarks: Readonly<Record<string, number>>,
    epochs: ReadonlySet<string> | null,
    have: Readonly<Record<string, SeqRanges>> = {},
  ): Generator<StoredEnvelope, void, undefined> {
    const page = this.#statement(
      `SELECT n, id, sender, seq, epoch, CASE WHEN length(bytes) <= ${INLINE_ENVELOPE_BYTES} THEN bytes END
       FROM messages WHERE group_id = ? AND n > ? ORDER BY n LIMIT ?`,
    )
    page.setReturnArrays(true)
    const body = this.#statement('SELECT bytes FROM messages WHERE n = ?')
    for (let after = 0; ; ) {
      const rows = page.all(groupId, after, ENVELOPE_PAGE_ROWS) as unknown as EnvelopeRow[]
      for (const [n, id, sender, seq, epoch, inline] of rows) {
        after = n
        if (seq <= ((Object.hasOwn(watermarks, sender) ? watermarks[sender] : undefined) ?? -1)) continue
        if (epochs !== null && !epochs.has(epoch)) continue
        if (inRanges(Object.hasOwn(have, sender) ? have[sender] : undefined, seq)) continue
        const bytes = inline ?? ((body.get(n) as Row | undefined)?.bytes as Uint8Array | undefined)
        if (bytes !== undefined) yield { id, sender, seq, epoch, bytes }
      }
      if (rows.length < ENVELOPE_PAGE_ROWS) return
    }
  }

  /** The first `limit` of {@link ChatStore.envelopesAfter}, as an array. */
  messagesAfter(
    groupId: string,
    watermarks: Readonly<Record<string, number>>,
    epochs: ReadonlySet<string> | null,
    limit: number,
    have: Readonly<Record<string, SeqRanges>> = {},
  ): StoredEnvelope[] {
    const out: StoredEnvelope[] = []
    if (limit <= 0) return out
    for (const envelope of this.envelopesAfter(groupId, watermarks, epochs, have)) {
      out.push(envelope)
      if (out.length >= limit) break
    }
    return out
  }

  /** Number of stored messages, over all groups. */
  messageCount(): number {
    const row = this.#statement('SELECT count(*) AS n FROM messages').get() as Row
    return Number(row.n)
  }

  /** Bytes of stored envelopes of one group. */
  messageBytes(groupId: string): number {
    return this.#bytesOf('messages', groupId)
  }

  #bytesOf(table: 'events' | 'messages', groupId: string): number {
    const row = this.#statement(
      `SELECT coalesce(sum(length(bytes)), 0) AS n FROM ${table} WHERE group_id = ?`,
    ).get(groupId) as Row
    return Number(row.n)
  }

  /** Deletes messages accepted before `time`; returns how many. */
  deleteMessagesBefore(time: number): number {
    return Number(this.#statement('DELETE FROM messages WHERE received_at < ?').run(time).changes)
  }

  /**
   * Feeds a group's stored events and accepted messages back into `group` after a restart, so replays
   * of old messages are refused and own sequence numbers continue (a relay counts the envelopes' bytes
   * itself: summing them reads every row). An event that no longer applies is reported to `onError`.
   */
  restoreGroup(group: Group, onError: (err: Error) => void): void {
    for (const bytes of this.events(group.id)) {
      try {
        // only events that applied are written, to this 0600 file: their signatures are not checked again
        group.receiveEvent(bytes, { stored: true })
      } catch (err) {
        onError(err as Error)
      }
    }
    // the grace windows count from when this replica learned of a change, not from this restart
    group.expireGraceWindows()
    // sequence numbers only: the envelopes stay on disk
    for (const [sender, from, to] of this.#seqRuns(group.id)) {
      for (let seq = from; seq <= to; seq++) group.markSeen(sender, seq)
    }
  }

  upsertPeer(peer: { peerId: string; name?: string | null; addrs?: string[] }, now = Date.now()): void {
    if (!this.#writable('a peer')) return
    this.#statement(
      `INSERT INTO peers (peer_id, name, addrs, last_seen) VALUES (?, ?, ?, ?)
       ON CONFLICT (peer_id) DO UPDATE SET name = coalesce(excluded.name, name),
         addrs = CASE WHEN excluded.addrs = '[]' THEN addrs ELSE excluded.addrs END, last_seen = excluded.last_seen`,
    ).run(peer.peerId, peer.name ?? null, JSON.stringify(peer.addrs ?? []), now)
  }

  peers(): StoredPeer[] {
    return (this.#statement('SELECT * FROM peers ORDER BY last_seen DESC').all() as Row[]).map(toPeer)
  }

  /** A stored peer, if any. */
  peer(peerId: string): StoredPeer | undefined {
    const row = this.#statement('SELECT * FROM peers WHERE peer_id = ?').get(peerId) as Row | undefined
    return row === undefined ? undefined : toPeer(row)
  }

  /** The name a peer last announced, if known. */
  peerName(peerId: string): string | undefined {
    const row = this.#statement('SELECT name FROM peers WHERE peer_id = ?').get(peerId) as Row | undefined
    return (row?.name as string | null | undefined) ?? undefined
  }
}

/** Runs a store write whose failure must not escape (listeners, background work); logs it instead. */
export function persist(log: Logger, what: string, write: () => void): void {
  try {
    write()
  } catch (err) {
    log.error('could not store %s: %s', what, (err as Error).message)
  }
}
