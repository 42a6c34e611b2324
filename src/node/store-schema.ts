/**
 * What a node's database holds: its tables, and the records read from them.
 *
 * @packageDocumentation
 */

import type { DatabaseSync, SQLInputValue } from 'node:sqlite'

/** A message envelope as stored: the ciphertext always, the decrypted text only on a member's own disk. */
export interface StoredMessage {
  groupId: string
  id: string
  sender: string
  seq: number
  epoch: string
  /** Local clock when this peer accepted it. */
  receivedAt: number
  bytes: Uint8Array
  /** Decrypted text, when this peer could read it. Never set by a relay. */
  text: string | null
  /**
   * Sender's timestamp from the decrypted body, when readable; its arrival time instead when it claimed
   * a time more than 5 minutes ahead of this peer's clock (see `shownTime`).
   */
  ts: number | null
}

/** An envelope as sync reads it: the ciphertext and what sync selects by, never the decrypted text. */
export interface StoredEnvelope {
  id: string
  sender: string
  seq: number
  epoch: string
  bytes: Uint8Array
}

/** A group this peer takes part in (as member, applicant, or relay). */
export interface StoredGroup {
  id: string
  name: string | null
  /** Invite this peer joined or created with, for `/invite`. */
  invite: string | null
  joinedAt: number
}

/** A peer this node has seen, with the name it announced. */
export interface StoredPeer {
  peerId: string
  name: string | null
  addrs: string[]
  lastSeen: number
}

/**
 * The messages table. A message is stored once per sender and sequence number: the core refuses a seq
 * it has seen (a replay), so that is the one key a message needs, and its index grows at the end as a
 * sender's messages come. The message id (a hash) is kept but not indexed: a unique index on it took
 * writes all over its pages, which were two thirds of the cost of a sync frame's commit. The other
 * index serves the reads by group in acceptance order (`n`); the seq index also serves what sync and
 * a restart read (seqs per sender, in order).
 */
const MESSAGES_TABLE = `CREATE TABLE IF NOT EXISTS messages (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id TEXT NOT NULL, id TEXT NOT NULL, sender TEXT NOT NULL, seq INTEGER NOT NULL,
  epoch TEXT NOT NULL, received_at INTEGER NOT NULL, bytes BLOB NOT NULL, text TEXT, ts INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_seq ON messages (group_id, sender, seq);`

/**
 * Moves the messages of a database written before {@link MESSAGES_TABLE} (unique by id, three more
 * indexes) into it, in one transaction, keeping each row's `n` and so the order they were accepted in.
 * Run when the old table is found (an index SQLite made for a UNIQUE clause), before {@link SCHEMA}.
 */
export const MIGRATE_MESSAGES = `
ALTER TABLE messages RENAME TO messages_v0;
${MESSAGES_TABLE}
INSERT OR IGNORE INTO messages (n, group_id, id, sender, seq, epoch, received_at, bytes, text, ts)
  SELECT n, group_id, id, sender, seq, epoch, received_at, bytes, text, ts FROM messages_v0 ORDER BY n;
UPDATE sqlite_sequence SET seq = (SELECT max(seq) FROM sqlite_sequence WHERE name IN ('messages', 'messages_v0'))
  WHERE name = 'messages';
DROP TABLE messages_v0;
`

/** Whether `db` holds the messages table of an older p2pchat (unique by id), which {@link MIGRATE_MESSAGES} moves. */
export function holdsOldMessagesTable(db: DatabaseSync): boolean {
  // the index SQLite made for that table's UNIQUE clause; the current table has none
  return db.prepare("SELECT 1 FROM pragma_index_list('messages') WHERE origin = 'u'").get() !== undefined
}

/** The tables, created when missing. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
  id TEXT PRIMARY KEY, name TEXT, invite TEXT, joined_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id TEXT NOT NULL, id TEXT NOT NULL, bytes BLOB NOT NULL,
  UNIQUE (group_id, id)
);
${MESSAGES_TABLE}
CREATE INDEX IF NOT EXISTS messages_by_group ON messages (group_id);
CREATE TABLE IF NOT EXISTS peers (
  peer_id TEXT PRIMARY KEY, name TEXT, addrs TEXT NOT NULL, last_seen INTEGER NOT NULL
);
`

/** A row as node:sqlite returns it. */
export type Row = Record<string, SQLInputValue>

/** A `messages` row as a {@link StoredMessage}. */
export function toMessage(row: Row): StoredMessage {
  return {
    groupId: row.group_id as string,
    id: row.id as string,
    sender: row.sender as string,
    seq: Number(row.seq),
    epoch: row.epoch as string,
    receivedAt: Number(row.received_at),
    bytes: row.bytes as Uint8Array,
    text: (row.text as string | null) ?? null,
    ts: row.ts === null || row.ts === undefined ? null : Number(row.ts),
  }
}

/** A `peers` row as a {@link StoredPeer}. */
export function toPeer(row: Row): StoredPeer {
  return {
    peerId: row.peer_id as string,
    name: (row.name as string | null) ?? null,
    addrs: JSON.parse(row.addrs as string) as string[],
    lastSeen: Number(row.last_seen),
  }
}
