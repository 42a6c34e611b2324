/**
 * The node's store on its own (SQLite in memory): what it reports to sync about the messages it has, the
 * order history comes back in, and how it behaves once closed while network input is still arriving.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { runsOf } from '../../src/node/seq-ranges.js'
import { ChatStore, inRanges, type StoredMessage } from '../../src/node/store.js'

const GROUP = 'group-a'

function message(sender: string, seq: number, epoch = 'e1'): StoredMessage {
  return {
    groupId: GROUP,
    id: `${sender}/${seq}`,
    sender,
    seq,
    epoch,
    receivedAt: 1000 + seq,
    bytes: new TextEncoder().encode(`${sender}/${seq}`),
    text: null,
    ts: null,
  }
}

function storeWith(messages: StoredMessage[]): ChatStore {
  const store = ChatStore.open(':memory:')
  for (const m of messages) store.addMessage(m)
  return store
}

const seqs = (messages: ReadonlyArray<{ bytes: Uint8Array }>): string[] =>
  messages.map((m) => new TextDecoder().decode(m.bytes))

describe('ChatStore: what a sync peer is told', () => {
  it('reports per sender the ranges of seqs it has, also when the first ones are missing', () => {
    // a member added late never stores what came before its first epoch
    const store = storeWith([
      ...[5, 6, 7, 9, 10, 3].map((seq) => message('alice', seq)),
      ...[0, 1, 2].map((seq) => message('bob', seq)),
    ])
    expect(store.seqRanges(GROUP)).toEqual({
      alice: [
        [3, 3],
        [5, 7],
        [9, 10],
      ],
      bob: [[0, 2]],
    })
    // the watermark of alice says nothing: she has no message 0
    expect(store.watermarks(GROUP)).toEqual({ alice: -1, bob: 2 })
    expect(store.seqRanges('another group')).toEqual({})
  })

  it('reports at most the first 256 ranges of a sender', () => {
    const store = storeWith(Array.from({ length: 300 }, (_, k) => message('alice', 2 * k)))
    const ranges = store.seqRanges(GROUP).alice ?? []
    expect(ranges).toHaveLength(256)
    expect(ranges[0]).toEqual([0, 0])
    expect(ranges.at(-1)).toEqual([510, 510])
  })

  it('sends a peer only the messages outside the ranges it has', () => {
    const store = storeWith([
      ...Array.from({ length: 10 }, (_, seq) => message('alice', seq, seq < 4 ? 'e1' : 'e2')),
      message('bob', 0, 'e2'),
    ])
    const have = {
      alice: [
        [4, 5],
        [8, 8],
      ] as Array<[number, number]>,
    }
    expect(seqs(store.messagesAfter(GROUP, { alice: -1 }, new Set(['e2']), 100, have))).toEqual([
      'alice/6',
      'alice/7',
      'alice/9',
      'bob/0',
    ])
    // watermarks still count; the limit is on what is sent
    expect(seqs(store.messagesAfter(GROUP, { alice: 6 }, null, 2, have))).toEqual(['alice/7', 'alice/9'])
  })

  it('sends every envelope lacked across pages, large ones too, in the order they were accepted', () => {
    const large = (seq: number): StoredMessage => ({
      ...message('bob', seq),
      bytes: new Uint8Array(40_000).fill(seq),
    })
    const store = storeWith([
      ...Array.from({ length: 300 }, (_, seq) => message('alice', seq)),
      large(0),
      message('alice', 300),
      large(1),
    ])
    const sent = store.messagesAfter(GROUP, { alice: 9 }, null, 1000)
    expect(sent.map((m) => `${m.sender}/${m.seq}`)).toEqual([
      ...Array.from({ length: 290 }, (_, k) => `alice/${k + 10}`),
      'bob/0',
      'alice/300',
      'bob/1',
    ])
    expect(sent.filter((m) => m.sender === 'bob').map((m) => [m.bytes.length, m.bytes[0]])).toEqual([
      [40_000, 0],
      [40_000, 1],
    ])
  })

  it('finds a seq in sorted ranges', () => {
    const ranges: Array<[number, number]> = [
      [0, 2],
      [5, 5],
      [8, 20],
    ]
    expect([0, 1, 2, 3, 4, 5, 6, 8, 20, 21].map((seq) => inRanges(ranges, seq))).toEqual([
      true,
      true,
      true,
      false,
      false,
      true,
      false,
      true,
      true,
      false,
    ])
    expect(inRanges(undefined, 0)).toBe(false)
    expect(inRanges([], 0)).toBe(false)
  })
})

describe('ChatStore history', () => {
  it('returns the last messages to arrive in arrival order, whatever times their senders claim', () => {
    const readable = (sender: string, seq: number, ts: number): StoredMessage => ({
      ...message(sender, seq),
      text: `${sender} ${seq}`,
      ts,
    })
    const store = storeWith([
      readable('alice', 0, 1_000),
      // a sender whose clock is far ahead, and one whose clock is behind
      readable('mallory', 0, Date.UTC(250000, 0, 1)),
      readable('bob', 0, 500),
      message('carol', 0), // not readable here: not history
      readable('alice', 1, 2_000),
    ])
    expect(store.history(GROUP, 10).map((m) => m.text)).toEqual(['alice 0', 'mallory 0', 'bob 0', 'alice 1'])
    expect(store.history(GROUP, 2).map((m) => m.text)).toEqual(['bob 0', 'alice 1'])
  })
})

describe('ChatStore after close', () => {
  it('drops writes instead of throwing, so input still in flight at shutdown cannot crash the process', () => {
    const store = storeWith([message('alice', 0)])
    store.close()
    expect(store.addMessage(message('alice', 1))).toBe(false)
    expect(store.addEvent(GROUP, 'event', new Uint8Array(3))).toBe(false)
    expect(() => store.upsertPeer({ peerId: 'p', name: 'n' })).not.toThrow()
    expect(() => store.saveGroup({ id: GROUP })).not.toThrow()
    expect(() => store.setMeta('k', 'v')).not.toThrow()
    expect(() => store.close()).not.toThrow()
    expect(store.isOpen).toBe(false)
  })
})

describe('ChatStore.addMessages: a sync frame in one commit', () => {
  it('keeps the good messages when one of them cannot be stored, and says which', () => {
    const store = storeWith([message('alice', 0)])
    // a row SQLite cannot take (a value it cannot bind) among new ones and one stored already
    const bad = { ...message('mallory', 0), bytes: {} as Uint8Array }
    const failed: string[] = []
    const added = store.addMessages(
      [message('alice', 1), bad, message('alice', 0), message('bob', 0)],
      (m, err) => failed.push(`${m.id}: ${err.message}`),
    )
    expect(added).toEqual([true, false, false, true])
    expect(failed).toEqual([expect.stringMatching(/^mallory\/0: Provided value cannot be bound/)])
    expect(seqs(store.messages(GROUP))).toEqual(['alice/0', 'alice/1', 'bob/0'])
  })

  it('stores nothing, and throws nothing, once closed', () => {
    const store = storeWith([])
    store.close()
    expect(store.addMessages([message('alice', 0)], () => {})).toEqual([false])
  })
})

describe('ChatStore messages: one per sender and seq', () => {
  it('stores a second envelope with a seq its sender already used as nothing new', () => {
    const store = storeWith([message('alice', 0)])
    // another envelope (another id) claiming the same seq: the core refuses it as a replay too
    expect(store.addMessage({ ...message('alice', 0), id: 'other', bytes: new Uint8Array([1]) })).toBe(false)
    expect(store.addMessage(message('alice', 1))).toBe(true)
    expect(seqs(store.messages(GROUP))).toEqual(['alice/0', 'alice/1'])
  })

  it('moves the messages of a database an older p2pchat wrote, keeping their order and numbering', () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2pchat-store-'))
    try {
      // the messages table as p2pchat wrote it before: unique by id, and three more indexes
      const old = new DatabaseSync(join(dir, 'p2pchat.db'))
      old.exec(`CREATE TABLE messages (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id TEXT NOT NULL, id TEXT NOT NULL, sender TEXT NOT NULL, seq INTEGER NOT NULL,
        epoch TEXT NOT NULL, received_at INTEGER NOT NULL, bytes BLOB NOT NULL, text TEXT, ts INTEGER,
        UNIQUE (group_id, id)
      );
      CREATE INDEX messages_by_sender ON messages (group_id, sender, seq);
      CREATE INDEX messages_by_time ON messages (group_id, received_at);
      CREATE INDEX messages_by_group ON messages (group_id);`)
      const insert = old.prepare(
        'INSERT INTO messages (group_id, id, sender, seq, epoch, received_at, bytes, text, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      for (const m of [message('bob', 1), message('alice', 0), message('bob', 0), message('alice', 7)]) {
        insert.run(m.groupId, m.id, m.sender, m.seq, m.epoch, m.receivedAt, m.bytes, m.text, m.ts)
      }
      // the newest was deleted (retention): its number is not given out again
      old.exec("DELETE FROM messages WHERE id = 'alice/7'")
      old.close()

      const store = ChatStore.open(dir)
      expect(seqs(store.messages(GROUP))).toEqual(['bob/1', 'alice/0', 'bob/0'])
      expect(store.seqRanges(GROUP)).toEqual({ alice: [[0, 0]], bob: [[0, 1]] })
      expect(store.addMessage(message('bob', 1))).toBe(false)
      expect(store.addMessage(message('alice', 1))).toBe(true)
      expect(seqs(store.messagesAfter(GROUP, {}, null, 10, {}))).toEqual([
        'bob/1',
        'alice/0',
        'bob/0',
        'alice/1',
      ])
      store.close()
      const db = new DatabaseSync(join(dir, 'p2pchat.db'))
      const indexes = db
        .prepare('SELECT name, "unique" FROM pragma_index_list(\'messages\') ORDER BY name')
        .all()
      expect(indexes).toEqual([
        { name: 'messages_by_group', unique: 0 },
        { name: 'messages_by_seq', unique: 1 },
      ])
      // numbered after the one deleted before the move (4), as without it
      const row = db.prepare("SELECT n FROM messages WHERE id = 'alice/1'").get() as { n: number }
      expect(row.n).toBeGreaterThan(4)
      db.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('runsOf', () => {
  it('cuts sorted seqs into runs per sender', () => {
    const seqs: Array<[string, number]> = [
      ['alice', 0],
      ['alice', 1],
      ['alice', 3],
      ['bob', 4],
      ['bob', 5],
      ['carol', 0],
    ]
    expect([...runsOf(seqs)]).toEqual([
      ['alice', 0, 1],
      ['alice', 3, 3],
      ['bob', 4, 5],
      ['carol', 0, 0],
    ])
    expect([...runsOf([])]).toEqual([])
  })
})
