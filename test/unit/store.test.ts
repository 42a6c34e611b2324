/**
 * The node's store on its own (SQLite in memory): what it reports to sync about the messages it has, the
 * order history comes back in, and how it behaves once closed while network input is still arriving.
 */
import { describe, expect, it } from 'vitest'
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
