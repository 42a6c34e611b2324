/**
 * Attack 5 of issue 8: strangers read the log. A peer that connects learns a group's id from gossipsub
 * subscriptions and asks a member, or the relay, for everything over sync. Now a stranger gets nothing,
 * not even the heads; a member gets the log and the envelopes of the epochs sealed to it, and peer
 * hints naming members only; a former member gets the log and nothing else; a joiner learns nothing
 * until it is added.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeEnvelope, decodeEvent } from '../../src/membership/index.js'
import { syncWithPeer } from '../../src/node/sync.js'
import type { TransportNode } from '../../src/node/transport.js'
import { topicOf } from '../../src/node/wire.js'
import { createAttacker, type SyncHaul, takeEverything } from '../fixtures/attacker-sync.js'
import {
  type ChatNodes,
  createChatNodes,
  createRelay,
  NETWORK_TIMEOUT,
  type TestRelay,
  waitForMembers,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1
const CAROL = 2

const NOTHING: SyncHaul = { known: true, heads: [], hints: [], events: [], envelopes: [], more: false }

describe('what a sync partner is given', () => {
  let relay: TestRelay
  let net: ChatNodes
  let groupId: string
  let stranger: TransportNode
  let insiderKey: PrivateKey
  let insiderId: string
  const attackers: TransportNode[] = []
  /** Ids of alice's messages: before the insider was added, and after. */
  const sent = { before: '', after: '' }

  beforeAll(async () => {
    relay = await createRelay()
    net = await createChatNodes(3, {
      names: ['alice', 'bob', 'carol'],
      bootstrap: () => relay.relay.addrs(),
      init: { syncIntervalMs: 600_000 },
    })
    const [alice, bob] = [net.node(ALICE), net.node(BOB)]
    groupId = (await alice.createGroup('team')).id
    await waitForSubscribers(alice, groupId, [relay.relay.peerId])
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await waitFor(() => net.record(ALICE).joinRequests.some((r) => r.detail.peerId === bob.peerId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see bob's join request",
    })
    await alice.add(groupId, bob.peerId)
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])
    sent.before = (await alice.send(groupId, 'before the insider')).id
    await waitFor(() => relay.stored.get(groupId)?.includes(sent.before) === true, {
      timeout: NETWORK_TIMEOUT,
      message: 'the relay to store the first message',
    })

    // a stranger that subscribes to the group's topic, as anyone who saw the subscription can
    stranger = await createAttacker(alice)
    attackers.push(stranger)
    await dialRelay(stranger)
    stranger.services.pubsub.subscribe(topicOf(groupId))
    await waitForSubscribers(alice, groupId, [stranger.peerId.toString()])

    insiderKey = await generateKeyPair('Ed25519')
    insiderId = peerIdFromPrivateKey(insiderKey).toString()
  }, 90_000)
  afterAll(async () => {
    await Promise.allSettled(attackers.map((a) => a.stop()))
    await net?.teardown()
    await relay?.teardown()
  })

  async function dialRelay(peer: TransportNode): Promise<void> {
    await peer.dial(
      relay.relay.addrs().map((a) => multiaddr(a)),
      { signal: AbortSignal.timeout(NETWORK_TIMEOUT) },
    )
  }

  it('gives a stranger nothing: no heads, events, envelopes or peer hints, from a member or the relay', async () => {
    for (const target of [net.node(ALICE).peerId, relay.relay.peerId]) {
      expect(await takeEverything(stranger, target, groupId), target).toEqual(NOTHING)
    }
  })

  it('tells a joiner nothing of the group until it is added', async () => {
    const [alice, carol] = [net.node(ALICE), net.node(CAROL)]
    await carol.joinGroup(alice.invite(groupId, { ask: true }))
    await waitFor(() => net.record(ALICE).joinRequests.some((r) => r.detail.peerId === carol.peerId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see carol's join request",
    })
    const group = carol.group(groupId)
    if (group === undefined || carol.libp2p === undefined) throw new Error('carol holds no group')
    for (const target of [alice.peerId, relay.relay.peerId]) {
      const result = await syncWithPeer(
        carol.libp2p,
        peerIdFromString(target),
        carol.replica,
        group,
        AbortSignal.timeout(NETWORK_TIMEOUT),
      )
      expect(result).toMatchObject({ known: true, messagesReceived: 0 })
    }
    expect(group.ready).toBe(false)
    expect(group.events()).toEqual([])

    await alice.add(groupId, carol.peerId)
    await waitForMembers(carol, groupId, [alice.peerId, net.node(BOB).peerId, carol.peerId])
  })

  it('gives a member the log, the envelopes of its own epochs only, and hints that name members', async () => {
    const alice = net.node(ALICE)
    await alice.add(groupId, insiderId)
    sent.after = (await alice.send(groupId, 'after the insider')).id
    await waitFor(() => relay.stored.get(groupId)?.includes(sent.after) === true, {
      timeout: NETWORK_TIMEOUT,
      message: 'the relay to store the second message',
    })
    const insider = await createAttacker(alice, { privateKey: insiderKey })
    attackers.push(insider)
    await dialRelay(insider)
    const log = (alice.group(groupId)?.events() ?? []).map((e) => e.id).sort()

    for (const target of [alice.peerId, relay.relay.peerId]) {
      const haul = await takeEverything(insider, target, groupId)
      expect(haul.events.map((bytes) => decodeEvent(bytes).id).sort(), target).toEqual(log)
      // it asked for every epoch; it gets those sealed to it, so not what was said before it was added
      expect(haul.envelopes.map((bytes) => decodeEnvelope(bytes).id)).toEqual([sent.after])
      const members = new Set(alice.members(groupId).map((m) => m.peerId))
      for (const hint of haul.hints) expect(members, `a hint names ${hint.id}`).toContain(hint.id)
      expect(haul.hints.map((h) => h.id)).not.toContain(stranger.peerId.toString())
    }
  })

  it('gives a removed member the log, and no envelopes or hints', async () => {
    const alice = net.node(ALICE)
    await alice.remove(groupId, insiderId)
    const insider = attackers.at(-1) as TransportNode
    const log = (alice.group(groupId)?.events() ?? []).map((e) => e.id).sort()
    const haul = await takeEverything(insider, alice.peerId, groupId)
    expect(haul.events.map((bytes) => decodeEvent(bytes).id).sort()).toEqual(log)
    expect(haul).toMatchObject({ envelopes: [], hints: [] })
  })
})
