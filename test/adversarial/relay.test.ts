/**
 * A relay against a stranger with nothing but throwaway libp2p identities (issue 8, attacks 3, 4 and 10):
 * it fills the relay's group slots with groups of its own, fills its storage with self-made groups and
 * top-ups, and sends join frames that are not what they claim. A legitimate group (members exchanging
 * messages) must still get in, before and after a restart, and forged join frames must stop at the relay.
 *
 * Scaled down to run in seconds, keeping the ratios of the attacks as reported: 12 group slots instead
 * of 1000 (3 throwaway peers × 10 groups, the per-peer limit a minute, instead of 100 × 10); 64 KiB of
 * storage instead of 16 MiB (7 self-made groups, each able to fill a quarter of it).
 */
import { rm } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { Group } from '../../src/membership/index.js'
import type { ChatNode } from '../../src/node/chat-node.js'
import type { TransportNode } from '../../src/node/transport.js'
import { encodeGossip, encodeJoinRequest } from '../../src/node/wire.js'
import {
  PENDING_EVENT_BYTES_PER_GROUP,
  PENDING_EVENTS_PER_GROUP,
  PENDING_MESSAGES_PER_GROUP,
} from '../../src/relay/admission.js'
import {
  connectTo,
  type GossipVerdict,
  gossipVerdict,
  type JunkGroup,
  type JunkGroupOptions,
  joinTopic,
  junkGroup,
  legitimateGroup,
  publishRaw,
  pushGroup,
  startAttacker,
  topUp,
  waitForGossipVerdict,
} from '../fixtures/attacker-relay.js'
import {
  ChatRecord,
  cleanupAfterEach,
  createRelay,
  createTestChatNode,
  NETWORK_TIMEOUT,
  type TestRelay,
  tempDir,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { impersonatingJoinRequest, withFlippedSignature } from '../fixtures/forgery.js'
import { waitFor } from '../fixtures/wait-for.js'

const cleanups = cleanupAfterEach()

/** A chat node on a fresh data directory, bootstrapping to `relay` only, recorded from before it starts. */
async function memberOf(
  relay: TestRelay,
  name: string,
  denyPeer?: (peerId: string) => boolean,
): Promise<[ChatNode, ChatRecord]> {
  const dir = await tempDir(name)
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const node = await createTestChatNode(dir, name, {
    bootstrap: relay.relay.addrs(),
    ...(denyPeer ? { denyPeer } : {}),
  })
  cleanups.push(() => node.stop())
  const record = new ChatRecord(node)
  await node.start()
  return [node, record]
}

describe('join frames at the relay (attack 10)', () => {
  it('rejects forged, misdirected and malformed join frames instead of forwarding them to members', async () => {
    const relay = await createRelay({}, cleanups)
    // the attacker reaches alice only through the relay
    let attackerId = ''
    const [alice, aliceRecord] = await memberOf(relay, 'alice', (peerId) => peerId === attackerId)
    const { id: groupId } = await alice.createGroup('team')
    const { id: otherId } = await alice.createGroup('other')
    await waitFor(() => relay.relay.group(groupId, false)?.ready === true, {
      timeout: NETWORK_TIMEOUT,
      message: "the relay to hold alice's group",
    })
    const attacker = await startAttacker(cleanups)
    attackerId = attacker.peerId.toString()
    await connectTo(attacker, relay.relay.addrs())
    await joinTopic(attacker, relay.relay, groupId)

    const dave = await Identity.generate()
    const erin = await Identity.generate()
    const forged = [
      // a request naming erin, signed by someone else
      await impersonatingJoinRequest(groupId, erin, 'erin'),
      // dave's genuine request with its signature broken
      withFlippedSignature(encodeJoinRequest(dave, groupId, 'dave')),
      // dave's genuine request for another group, replayed on this group's topic
      encodeJoinRequest(dave, otherId, 'dave'),
      // not a join request at all
      new TextEncoder().encode('let me in'),
    ]
    const sent: Uint8Array[] = []
    for (const data of forged) {
      const frame = encodeGossip({ kind: 'join', data })
      expect(await publishRaw(attacker, groupId, frame), 'the attacker reaches the relay').toBe(1)
      sent.push(frame)
    }
    // a genuine request over the same way shows that the path through the relay works
    const genuine = encodeGossip({ kind: 'join', data: encodeJoinRequest(erin, groupId, 'erin') })
    await publishRaw(attacker, groupId, genuine)
    await waitFor(() => aliceRecord.joinRequests.some((r) => r.detail.peerId === erin.memberId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see erin's join request, through the relay",
    })

    const verdicts: GossipVerdict[] = []
    for (const data of sent)
      verdicts.push(await waitForGossipVerdict(relay.relay.libp2p, data, 'a forged join frame'))
    expect(verdicts).toEqual(['reject', 'reject', 'reject', 'reject'])
    expect(await waitForGossipVerdict(relay.relay.libp2p, genuine, 'a genuine join frame')).toBe('accept')
    expect(relay.rejections.map((r) => [r.from, r.reason.split(':')[0]])).toEqual([
      [attackerId, 'InvalidSignatureError'],
      [attackerId, 'InvalidSignatureError'],
      [attackerId, 'WrongGroupError'],
      [attackerId, 'MalformedFrameError'],
    ])
    // nothing forged reached alice: she saw only erin's request and had nothing to reject
    expect(aliceRecord.joinRequests.map((r) => r.detail.peerId)).toEqual([erin.memberId])
    expect(aliceRecord.rejected).toEqual([])
    expect(sent.map((data) => gossipVerdict(alice.libp2p, data))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ])
  })
})

/** Push `count` made-up groups from each of `peers` fresh throwaway peers; returns their ids. */
async function flood(
  relay: TestRelay,
  peers: number,
  count: number,
  options?: JunkGroupOptions,
): Promise<JunkGroup[]> {
  const pushed: JunkGroup[] = []
  for (let p = 0; p < peers; p++) {
    const attacker = await startAttacker(cleanups)
    await connectTo(attacker, relay.relay.addrs())
    for (let k = 0; k < count; k++) {
      const junk = await junkGroup(options)
      // anyone may push events; envelopes are taken by sync only from a member, so their founder sends them
      const sender = junk.envelopes.length === 0 ? attacker : await asFounderOf(junk, relay)
      await pushGroup(sender, relay.relay.peerId, junk)
      if (sender !== attacker) await sender.stop()
      pushed.push(junk)
    }
    await attacker.stop()
  }
  return pushed
}

/** An attacker peer running as `junk`'s founder, connected to `relay`. */
async function asFounderOf(junk: JunkGroup, relay: TestRelay): Promise<TransportNode> {
  const attacker = await startAttacker(cleanups, junk.members[0])
  // libp2p refuses more than 5 inbound connections a second from one host: a fast attacker retries
  await connectTo(attacker, relay.relay.addrs(), { retry: true })
  return attacker
}

/** Rejections the relay logged for `groupId`. */
function rejectionsOf(relay: TestRelay, groupId: string): string[] {
  return relay.rejections.filter((r) => r.group === groupId).map((r) => r.reason)
}

describe('group slots (attack 3)', () => {
  it('a flood of throwaway groups keeps no legitimate group out, before or after a restart', async () => {
    const relay = await createRelay({ maxGroups: 12 }, cleanups)
    const junk = await flood(relay, 3, 10)
    expect(relay.relay.stats().groups).toBeLessThanOrEqual(12)

    // the relay restarts over its stored junk, and a legitimate group comes along
    await relay.restart()
    const { id } = await legitimateGroup(relay, cleanups)
    expect(rejectionsOf(relay, id)).toEqual([])
    expect(relay.relay.standing(id)).toBe('established')

    // more junk after it neither evicts it nor gets past the slots
    junk.push(...(await flood(relay, 3, 10)))
    expect(relay.relay.group(id, false)?.ready).toBe(true)
    expect(relay.relay.stats().groups).toBeLessThanOrEqual(12)
    // the junk only churns among itself: 30 more groups came, at most 11 of all 60 are held
    expect(junk.filter((j) => relay.relay.standing(j.id) !== undefined).length).toBeLessThanOrEqual(11)
    // and a restart keeps it
    expect((await relay.restart()).group(id, false)?.ready).toBe(true)
  })
})

describe('storage (attack 4)', () => {
  const DAY = 24 * 60 * 60 * 1000

  it('self-made groups and top-ups that fill the storage give way to a legitimate group, and expire', async () => {
    let offset = 0
    const maxStorage = 64 * 1024
    const relay = await createRelay({ maxStorage, clock: { now: () => Date.now() + offset } }, cleanups)
    // each self-made group has 2 members who both send, so it looks established, and holds up to its cap
    // of a quarter of the storage: 7 of them are more than the relay holds
    const junk = await flood(relay, 1, 7, { members: 2, messages: 6, textBytes: 2000 })
    for (const group of junk) {
      const founder = await asFounderOf(group, relay)
      await pushGroup(founder, relay.relay.peerId, group, { envelopes: await topUp(group, 2, 200) })
      await founder.stop()
    }
    // junk now fills most of the storage (established groups may use all but a sixteenth)
    expect(relay.relay.stats().storedBytes).toBeGreaterThan(0.75 * maxStorage)

    // the members' messages are long enough that the relay must evict junk to store them
    const before = relay.relay.stats().evicted
    const { id, net } = await legitimateGroup(relay, cleanups, ['a'.repeat(6000), 'b'.repeat(6000)])
    expect(rejectionsOf(relay, id)).toEqual([])
    expect(relay.relay.standing(id)).toBe('established')
    expect(relay.relay.stats().evicted).toBeGreaterThan(before)
    expect(relay.relay.stats().storedBytes).toBeLessThanOrEqual(maxStorage)

    // a restart honours all of it
    const restarted = await relay.restart({ clock: { now: () => Date.now() + offset } })
    expect(restarted.group(id, false)?.ready).toBe(true)
    expect(restarted.stats().storedBytes).toBeLessThanOrEqual(maxStorage)

    // 20 days on, the members chat again; 11 days later, the junk has been idle for 31 days
    offset = 20 * DAY
    await connectTo(net.node(0).libp2p as TransportNode, restarted.addrs())
    await waitForSubscribers(net.node(0), id, [restarted.peerId])
    await net.node(0).send(id, 'still here')
    await waitFor(() => (relay.stored.get(id)?.length ?? 0) >= 1, {
      timeout: NETWORK_TIMEOUT,
      message: 'the relay to store the message sent 20 days on',
    })
    offset = 31 * DAY
    const later = await relay.restart({ clock: { now: () => Date.now() + offset } })
    expect(junk.filter((j) => later.standing(j.id) !== undefined)).toEqual([])
    expect(later.group(id, false)?.ready).toBe(true)
    // nothing of the junk is left on disk either: every event still stored is the legitimate group's
    expect(later.stats()).toMatchObject({ groups: 1, events: later.group(id, false)?.events().length })
    expect(later.stats().storedBytes).toBeLessThan(8 * 1024)
  })
})

describe('memory (pending data)', () => {
  it('buffers few events and envelopes of a group whose genesis has not come, and says why it drops more', async () => {
    const relay = await createRelay({}, cleanups)
    // a real group's adds and messages, but the relay never gets its genesis: nothing of it can apply
    // (100 members: an add derives its key and seals one, ~450 bytes, so it takes 99 of them to pass 32 KiB)
    const junk = await junkGroup({ members: 100, messages: 3 })
    const attacker = await startAttacker(cleanups)
    await connectTo(attacker, relay.relay.addrs())
    const empty = new Group({ identity: junk.members[0] as Identity, groupId: junk.id })
    expect(await pushGroup(attacker, relay.relay.peerId, junk, { view: empty, envelopes: [] })).toBe(true)
    await joinTopic(attacker, relay.relay, junk.id)
    const frames = [
      ...junk.events.slice(1).map((e) => encodeGossip({ kind: 'event', data: e.bytes })),
      ...junk.envelopes.map((data) => encodeGossip({ kind: 'message', data })),
    ]
    for (const frame of frames) await publishRaw(attacker, junk.id, frame)
    for (const frame of frames) await waitForGossipVerdict(relay.relay.libp2p, frame, 'a frame of the group')

    const pendingBytes = junk.events.slice(1).reduce((sum, e) => sum + e.bytes.length, 0)
    expect(pendingBytes).toBeGreaterThan(PENDING_EVENT_BYTES_PER_GROUP)
    const dropped = rejectionsOf(relay, junk.id).filter((r) => r.startsWith('PendingLimitError'))
    // 99 adds (over 32 KiB) and 3 envelopes: only what fits 32 KiB and 32 events, and 1 envelope, waits
    expect(dropped.length).toBeGreaterThanOrEqual(
      99 - PENDING_EVENTS_PER_GROUP + 3 - PENDING_MESSAGES_PER_GROUP,
    )
    expect(relay.relay.stats()).toMatchObject({ groups: 0, storedBytes: 0 })
  })
})
