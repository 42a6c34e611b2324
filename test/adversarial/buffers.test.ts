/**
 * Issue 8, attacks 2 and 6: an outsider with throwaway identities fills the buffers of events waiting for
 * parents and messages waiting for their epoch. Each test attacks the pending buffers of the group core
 * (no sockets, fast); the last one does it with real nodes while members keep chatting.
 *
 * What holds (src/membership/pending.ts): everything waiting is accounted in one budget per process, per
 * sending peer and per claimed author; strangers (authors no known event ever added, and everyone before
 * the genesis is known) share 8 MiB, at most 1 MiB per peer or author, fairly; members' items have their
 * own room, which strangers cannot take; and nothing waits more than 10 minutes.
 */
import { rm } from 'node:fs/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { Group, PendingBudget, type SignedEvent } from '../../src/membership/index.js'
import type { ChatNode } from '../../src/node/chat-node.js'
import { loadOrCreateIdentity } from '../../src/node/store.js'
import { createTransport, type TransportNode } from '../../src/node/transport.js'
import { encodeGossip, type GossipFrame, topicOf } from '../../src/node/wire.js'
import { retainedBytes } from '../fixtures/attacker-sync.js'
import {
  ChatRecord,
  cleanupAfterEach,
  createTestChatNode,
  NETWORK_TIMEOUT,
  tempDir,
  waitForMembers,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { junkEnvelope, junkEvent, junkKeys, randomCid } from '../fixtures/junk.js'
import { createScenario, ManualClock, thrown } from '../fixtures/membership.js'
import { testTransportInit } from '../fixtures/nodes.js'
import { waitFor } from '../fixtures/wait-for.js'

const MiB = 1024 * 1024
/** The default budget's room for strangers' items, and per peer or author (src/membership/pending.ts). */
const STRANGER_ROOM = 8 * MiB
const PEER_ROOM = 1 * MiB

/** `n` throwaway identities. */
function throwaways(n: number): Promise<Identity[]> {
  return Promise.all(Array.from({ length: n }, () => Identity.generate()))
}

/** Offers `bytes` to `group` as sent by `from`; returns the error name, or 'pending' / 'applied'. */
function offerEvent(group: Group, bytes: Uint8Array, from: string): string {
  try {
    return group.receiveEvent(bytes, { from }).pending ? 'pending' : 'applied'
  } catch (err) {
    return (err as Error).name
  }
}

/** How many of each outcome `outcomes` holds. */
function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1
  return counts
}

describe('attack 2: junk with random parents into groups without a genesis', () => {
  it('six throwaway peers sending 118 maximum-size junk events each hold at most the strangers’ room', async () => {
    // the figures: 6 ids × 118 events, ~91 MiB in all, into groups the relay holds no genesis of
    const relay = await Identity.generate()
    const budget = new PendingBudget()
    const groups = Array.from(
      { length: 16 },
      () =>
        new Group({
          identity: relay,
          groupId: randomCid().toString(),
          ciphertextOnly: true,
          pendingBudget: budget,
        }),
    )
    const keys = junkKeys(1000) // a maximum-size event: 1000 sealed keys, ~135 KB
    const authors = await throwaways(6 * 118)
    const outcomes: string[] = []
    let offered = 0
    for (let peer = 0; peer < 6; peer++) {
      for (let i = 0; i < 118; i++) {
        const group = groups[(peer * 118 + i) % groups.length] as Group
        const bytes = junkEvent({ group: group.id, author: authors[peer * 118 + i] as Identity, keys })
        offered += bytes.length
        outcomes.push(offerEvent(group, bytes, `attacker-${peer}`))
      }
    }
    expect(offered).toBeGreaterThan(90 * 1000 * 1000)
    const waiting = groups.reduce((n, g) => n + g.missingEvents().length, 0)
    // each waits for one parent; 1 MiB per peer is 7 such events, 6 peers ⇒ at most 42 of 708
    expect(waiting).toBeLessThanOrEqual((6 * PEER_ROOM) / 135_000)
    expect(budget.usage().bytes).toBeLessThanOrEqual(Math.min(STRANGER_ROOM, 6 * PEER_ROOM))
    expect(tally(outcomes)).toEqual({ pending: waiting, PendingLimitError: 708 - waiting })
  })

  it('junk envelopes under unknown epochs into a group without a genesis are bounded the same way', async () => {
    const budget = new PendingBudget()
    const group = new Group({
      identity: await Identity.generate(),
      groupId: randomCid().toString(),
      pendingBudget: budget,
    })
    const senders = await throwaways(40)
    const outcomes: string[] = []
    for (const [i, sender] of senders.entries()) {
      for (let seq = 0; seq < 50; seq++) {
        const bytes = junkEnvelope({ group: group.id, sender, seq, size: 16 * 1024 })
        outcomes.push(
          await thrown(() => group.open(bytes, { from: `attacker-${i % 4}` })).then((e) => e.name),
        )
      }
    }
    // 2,000 envelopes of 16 KiB (32 MB) from 4 peers: 1 MiB per peer may wait
    expect(budget.usage().bytes).toBeLessThanOrEqual(4 * PEER_ROOM)
    const counts = tally(outcomes)
    expect(counts.UnknownEpochError).toBeLessThanOrEqual((4 * PEER_ROOM) / (16 * 1024))
    expect(counts.PendingLimitError).toBe(2000 - (counts.UnknownEpochError ?? 0))
  })
})

describe("attack 6: outsiders cannot take members' room in the pending buffers", () => {
  it('after 6,000 junk events from 20 throwaway peers, a member’s out-of-order event still waits and applies', async () => {
    const s = await createScenario({ names: ['F', 'A'] })
    const budget = new PendingBudget()
    const pending = new Group({ identity: s.ids.A, groupId: s.groupId, pendingBudget: budget })
    for (const e of s.replicas.F.events()) pending.receiveEvent(e.bytes)
    const authors = await throwaways(60)
    const outcomes: string[] = []
    for (let i = 0; i < 6000; i++) {
      const bytes = junkEvent({ group: s.groupId, author: authors[i % authors.length] as Identity })
      outcomes.push(offerEvent(pending, bytes, `attacker-${i % 20}`))
    }
    expect(budget.usage().strangerBytes).toBeLessThanOrEqual(STRANGER_ROOM)
    // the member's events arrive children first, from another peer
    const first = await s.replicas.F.rekey()
    const second = await s.replicas.F.rekey()
    expect(offerEvent(pending, second.bytes, 'member-peer')).toBe('pending')
    expect(pending.receiveEvent(first.bytes, { from: 'member-peer' }).applied.map((e) => e.id)).toEqual([
      first.id,
      second.id,
    ])
    expect(pending.heads()).toEqual([second.id])
    expect(outcomes).not.toContain('applied')
  })

  it('a member’s items that wait are never displaced by a stranger’s flood', async () => {
    const s = await createScenario({ names: ['F', 'A'] })
    const budget = new PendingBudget({ strangerBytes: 64 * 1024, memberBytes: 64 * 1024 })
    const group = new Group({ identity: s.ids.A, groupId: s.groupId, pendingBudget: budget })
    for (const e of s.replicas.F.events()) group.receiveEvent(e.bytes)
    const first = await s.replicas.F.rekey()
    const waiting: SignedEvent[] = []
    for (let i = 0; i < 20; i++) waiting.push(await s.replicas.F.rekey())
    for (const e of waiting) expect(offerEvent(group, e.bytes, 'member-peer')).toBe('pending')
    const memberBytes = budget.usage().memberBytes
    const authors = await throwaways(200)
    for (const [i, author] of authors.entries()) {
      offerEvent(group, junkEvent({ group: s.groupId, author }), `attacker-${i}`)
    }
    expect(budget.usage().memberBytes).toBe(memberBytes)
    expect(group.receiveEvent(first.bytes).applied).toHaveLength(21)
  })

  it('after 1,100 junk envelopes under unknown epochs, a member’s message still waits for its epoch', async () => {
    const s = await createScenario({ names: ['F', 'A'] })
    const group = new Group({ identity: s.ids.A, groupId: s.groupId, pendingBudget: new PendingBudget() })
    for (const e of s.replicas.F.events()) group.receiveEvent(e.bytes)
    const senders = await throwaways(1100)
    const outcomes: string[] = []
    for (const [i, sender] of senders.entries()) {
      const bytes = junkEnvelope({ group: s.groupId, sender })
      outcomes.push((await thrown(() => group.open(bytes, { from: `attacker-${i % 10}` }))).name)
    }
    // a sender no known event ever added does not get to wait at all, once the log is known
    expect(tally(outcomes)).toEqual({ UnknownAuthorError: 1100 })
    expect(group.pendingCount().messages).toBe(0)
    const rekey = await s.replicas.F.rekey()
    const sealed = await s.replicas.F.seal('still here')
    expect((await thrown(() => group.open(sealed.bytes, { from: 'member-peer' }))).name).toBe(
      'UnknownEpochError',
    )
    const { released } = group.receiveEvent(rekey.bytes, { from: 'member-peer' })
    expect(released).toEqual([sealed.bytes])
    expect(await group.open(released[0] as Uint8Array)).toMatchObject({ kind: 'message', text: 'still here' })
  })

  it('before the genesis is known, a flood from one peer leaves room for what another peer sends', async () => {
    // a joiner holds only the group id (from an invite); gossip brings a member's event before sync does
    const s = await createScenario({ names: ['F', 'J'], members: ['F'] })
    const budget = new PendingBudget()
    const joiner = new Group({ identity: s.ids.J, groupId: s.groupId, pendingBudget: budget })
    const authors = await throwaways(50)
    const outcomes: string[] = []
    for (let i = 0; i < 5000; i++) {
      const bytes = junkEvent({ group: s.groupId, author: authors[i % authors.length] as Identity })
      outcomes.push(offerEvent(joiner, bytes, 'attacker'))
    }
    expect(budget.usage().bytes).toBeLessThanOrEqual(PEER_ROOM)
    expect(tally(outcomes).pending).toBeLessThan(5000)
    const rekey = await s.replicas.F.rekey()
    expect(offerEvent(joiner, rekey.bytes, 'member-peer')).toBe('pending')
    // sync then brings the log, parents first
    const history = s.replicas.F.events().filter((e) => e.id !== rekey.id)
    const applied = history.flatMap((e) => joiner.receiveEvent(e.bytes, { from: 'member-peer' }).applied)
    expect(applied.map((e) => e.id)).toContain(rekey.id)
    expect(joiner.heads()).toEqual(s.replicas.F.heads())
  })

  it('throwaway peers share the strangers’ room: a newcomer displaces the largest holder’s oldest item', async () => {
    const s = await createScenario({ names: ['F', 'J'], members: ['F'] })
    const budget = new PendingBudget({ strangerBytes: 256 * 1024, peerBytes: 128 * 1024 })
    const joiner = new Group({ identity: s.ids.J, groupId: s.groupId, pendingBudget: budget })
    const authors = await throwaways(40)
    // more than the 4,096 events a group used to keep waiting, from 4 peers
    for (let i = 0; i < 4200; i++) {
      offerEvent(
        joiner,
        junkEvent({ group: s.groupId, author: authors[i % 40] as Identity }),
        `attacker-${i % 4}`,
      )
    }
    expect(budget.usage().strangerBytes).toBeLessThanOrEqual(256 * 1024)
    const rekey = await s.replicas.F.rekey()
    expect(offerEvent(joiner, rekey.bytes, 'member-peer')).toBe('pending')
  })

  it('a group’s own caps hold for strangers’ items too, shared among the peers that send them', async () => {
    const s = await createScenario({ names: ['F', 'J'], members: ['F'] })
    const joiner = new Group({
      identity: s.ids.J,
      groupId: s.groupId,
      maxPendingEvents: 10,
      pendingBudget: new PendingBudget(),
    })
    const authors = await throwaways(11)
    const outcomes = authors.map((author) =>
      offerEvent(joiner, junkEvent({ group: s.groupId, author }), 'attacker'),
    )
    expect(tally(outcomes)).toEqual({ pending: 10, PendingLimitError: 1 })
    // another peer's event takes the place of the attacker's oldest
    const rekey = await s.replicas.F.rekey()
    expect(offerEvent(joiner, rekey.bytes, 'member-peer')).toBe('pending')
    expect(joiner.pendingCount().events).toBe(10)
    expect(joiner.hasPendingEvent(rekey.id)).toBe(true)
  })

  it('someone once added (a removed member, say) holds at most a fair share of its group’s room', async () => {
    const s = await createScenario({ names: ['F', 'A', 'M'] })
    const group = new Group({
      identity: s.ids.A,
      groupId: s.groupId,
      maxPendingEvents: 8,
      pendingBudget: new PendingBudget(),
    })
    for (const e of s.replicas.F.events()) group.receiveEvent(e.bytes)
    await s.replicas.F.remove(s.ids.M.memberId)
    // M, still in the known log as added, signs events on parents nobody has
    const outcomes: string[] = []
    for (let i = 0; i < 8; i++)
      outcomes.push(offerEvent(group, junkEvent({ group: s.groupId, author: s.ids.M }), 'm-peer'))
    expect(outcomes).toEqual(Array(8).fill('pending'))
    expect(offerEvent(group, junkEvent({ group: s.groupId, author: s.ids.M }), 'm-peer')).toBe(
      'PendingLimitError',
    )
    // F's removal of M and a rekey arrive children first: they still wait, in place of M's oldest
    const [removal] = s.replicas.F.events().slice(-1)
    const rekey = await s.replicas.F.rekey()
    expect(offerEvent(group, rekey.bytes, 'f-peer')).toBe('pending')
    expect(group.receiveEvent((removal as SignedEvent).bytes).applied).toHaveLength(2)
    expect(group.isMember(s.ids.M.memberId)).toBe(false)
  })

  it('a group its own founder fills (on a relay, say) holds at most a fair share of the members’ room', async () => {
    const budget = new PendingBudget({ memberBytes: 256 * 1024 })
    const relay = await Identity.generate()
    const honest = await createScenario({ names: ['F', 'A'] })
    const mine = new Group({
      identity: relay,
      groupId: honest.groupId,
      ciphertextOnly: true,
      pendingBudget: budget,
    })
    for (const e of honest.replicas.F.events()) mine.receiveEvent(e.bytes)
    // the attacker founds groups and fills them with its own out-of-order events: a member's, there
    const attacker = await Identity.generate()
    const held: Group[] = []
    for (let g = 0; g < 4; g++) {
      const { group: own } = await Group.create({ identity: attacker, name: `junk${g}`, memberName: 'x' })
      const group = new Group({
        identity: relay,
        groupId: own.id,
        ciphertextOnly: true,
        pendingBudget: budget,
      })
      held.push(group)
      for (const e of own.events()) group.receiveEvent(e.bytes)
      for (let i = 0; i < 200; i++)
        offerEvent(group, junkEvent({ group: own.id, author: attacker }), 'attacker')
    }
    expect(budget.usage().memberBytes).toBeLessThanOrEqual(256 * 1024)
    // 800 events of ~800 bytes were offered; 256 KiB holds fewer than 200 of them with their bookkeeping
    const junkSize = junkEvent({ group: honest.groupId, author: attacker }).length
    const waiting = held.reduce((n, g) => n + g.pendingCount().events, 0)
    expect(waiting).toBeLessThanOrEqual((256 * 1024) / junkSize)
    const first = await honest.replicas.F.rekey()
    const second = await honest.replicas.F.rekey()
    expect(offerEvent(mine, second.bytes, 'member-peer')).toBe('pending')
    expect(mine.receiveEvent(first.bytes).applied).toHaveLength(2)
  })
})

describe('waiting items expire', () => {
  it('an item older than the maximum age is dropped, and its parents are no longer asked for', async () => {
    const clock = new ManualClock()
    const budget = new PendingBudget({ maxAgeMs: 60_000, now: clock.now })
    const s = await createScenario({ names: ['F', 'A'] })
    const group = new Group({ identity: s.ids.A, groupId: s.groupId, pendingBudget: budget })
    for (const e of s.replicas.F.events()) group.receiveEvent(e.bytes)
    const first = await s.replicas.F.rekey()
    const second = await s.replicas.F.rekey()
    const sealed = await s.replicas.F.seal('late')
    expect(offerEvent(group, second.bytes, 'member-peer')).toBe('pending')
    await thrown(() => group.open(sealed.bytes, { from: 'member-peer' }))
    expect(group.missingEvents()).toEqual([first.id])
    clock.advance(60_001)
    budget.expire()
    expect(group.missingEvents()).toEqual([])
    expect(group.pendingCount()).toEqual({ events: 0, messages: 0 })
    expect(budget.usage()).toEqual({ items: 0, bytes: 0, memberBytes: 0, strangerBytes: 0 })
    // sync brings them again, in order
    for (const e of [first, second]) group.receiveEvent(e.bytes, { from: 'member-peer' })
    expect(await group.open(sealed.bytes, { from: 'member-peer' })).toMatchObject({ text: 'late' })
  })
})

const cleanups = cleanupAfterEach()

/** A started chat node on its own temporary data directory, recorded from before it starts. */
async function startNode(name: string, bootstrap: string[] = []): Promise<[ChatNode, ChatRecord, string]> {
  const dir = await tempDir(name)
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const node = await createTestChatNode(dir, name, { bootstrap })
  cleanups.push(() => node.stop())
  const record = new ChatRecord(node)
  await node.start()
  return [node, record, dir]
}

/** A bare libp2p peer connected to `target` and subscribed to the group's topic, both sides seeing it. */
async function startAttacker(target: ChatNode, groupId: string): Promise<TransportNode> {
  const attacker = await createTransport(await testTransportInit())
  cleanups.push(() => attacker.stop())
  await attacker.dial(
    target.addrs().map((a) => multiaddr(a)),
    { signal: AbortSignal.timeout(NETWORK_TIMEOUT) },
  )
  attacker.services.pubsub.subscribe(topicOf(groupId))
  await waitForSubscribers({ libp2p: attacker }, groupId, [target.peerId])
  await waitForSubscribers(target, groupId, [attacker.peerId.toString()])
  return attacker
}

async function publish(attacker: TransportNode, groupId: string, frame: GossipFrame): Promise<void> {
  await attacker.services.pubsub.publish(topicOf(groupId), encodeGossip(frame))
}

describe('with real nodes', () => {
  it('an outsider floods junk into a group while its members chat; a member’s out-of-order event and message still apply', async () => {
    const [alice, aliceRecord, aliceDir] = await startNode('alice')
    const [bob, bobRecord] = await startNode('bob', alice.addrs())
    const { id: groupId } = await alice.createGroup('team')
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await alice.add(groupId, bob.peerId)
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])
    const retainedBefore = retainedBytes()

    // alice's second device signs two epochs and a message under the second; bob gets them out of
    // order and late, from the attacker, after the flood: they must wait, and then apply
    const device = new Group({ identity: await loadOrCreateIdentity(aliceDir), groupId })
    for (const e of (alice.group(groupId) as Group).events()) device.receiveEvent(e.bytes)
    device.markSeen(alice.peerId, 1_000_000)
    const first = await device.rekey()
    const second = await device.rekey()
    const late = await device.seal('waited for its epoch')

    const attacker = await startAttacker(bob, groupId)
    const throwaway = await throwaways(50)
    const bobsGroup = bob.group(groupId) as Group
    // every junk item either waits or is refused with its reason logged
    const handled = (): number =>
      bobRecord.rejected.filter((r) => r.detail.from === attacker.peerId.toString()).length +
      bobsGroup.pendingCount().events
    let junkSent = 0
    const sent = { alice: [] as string[], bob: [] as string[] }
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 500; i++) {
        const author = throwaway[(round * 500 + i) % throwaway.length] as Identity
        await publish(attacker, groupId, { kind: 'event', data: junkEvent({ group: groupId, author }) })
        junkSent++
        if (i % 4 === 0) {
          await publish(attacker, groupId, {
            kind: 'message',
            data: junkEnvelope({ group: groupId, sender: author, seq: round * 500 + i }),
          })
          junkSent++
        }
      }
      sent.alice.push(`alice ${round}`)
      sent.bob.push(`bob ${round}`)
      await alice.send(groupId, `alice ${round}`)
      await bob.send(groupId, `bob ${round}`)
      // gossipsub streams do not apply backpressure: pace rounds by bob's progress, so a loaded machine
      // does not overflow the attacker's write buffer (which would end the flood early, not test it)
      await waitFor(() => handled() >= junkSent, {
        timeout: NETWORK_TIMEOUT,
        message: `bob to judge the ${junkSent} junk items sent so far`,
      })
    }
    expect(handled()).toBe(junkSent)
    await publish(attacker, groupId, { kind: 'message', data: late.bytes })
    await publish(attacker, groupId, { kind: 'event', data: second.bytes })
    await waitFor(() => (bob.group(groupId) as Group).hasPendingEvent(second.id), {
      timeout: NETWORK_TIMEOUT,
      message: "bob to keep alice's second epoch waiting",
    })
    await publish(attacker, groupId, { kind: 'event', data: first.bytes })

    await bobRecord.waitForText(groupId, 'waited for its epoch')
    for (const text of sent.alice) await bobRecord.waitForText(groupId, text)
    for (const text of sent.bob) await aliceRecord.waitForText(groupId, text)
    for (const record of [aliceRecord, bobRecord]) {
      const shown = record.messages(groupId).map((m) => m.text)
      expect(shown.length, 'every honest message shown exactly once').toBe(new Set(shown).size)
    }
    expect((bob.group(groupId) as Group).heads()).toEqual([second.id])
    // every junk item was refused or waits as a stranger's, with its reason logged
    const reasons = new Set(bobRecord.rejected.map((r) => r.detail.reason.split(':')[0]))
    expect(reasons).toEqual(new Set(['UnknownAuthorError', 'PendingLimitError']))
    // what waits is the one attacker peer's share: 1 MiB of junk events (plus bookkeeping)
    const junkBytes = junkEvent({ group: groupId, author: throwaway[0] as Identity }).length
    expect(bobsGroup.pendingCount().events).toBeLessThanOrEqual(PEER_ROOM / junkBytes)
    const retained = retainedBytes() - retainedBefore
    expect(retained, 'memory the flood left behind in this process (both nodes, the attacker)').toBeLessThan(
      100 * MiB,
    )
  }, 120_000)
})
