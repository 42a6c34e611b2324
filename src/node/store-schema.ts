/**
 * What a node's database holds: its tables, and the records read from them.
 *
 * @packageDocumentation
 */

import type { SQLInputValue } from 'node:sqlite'

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
CREATE TABLE IF NOT EXISTS messages (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  group_id TEXT NOT NULL, id TEXT NOT NULL, sender TEXT NOT NULL, seq INTEGER NOT NULL,
  epoch TEXT NOT NULL, received_at INTEGER NOT NULL, bytes BLOB NOT NULL, text TEXT, ts INTEGER,
  UNIQUE (group_id, id)
);
CREATE INDEX IF NOT EXISTS messages_by_sender ON messages (group_id, sender, seq);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (group_id, received_at);
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
