/**
 * The verdicts of a chat node's gossipsub topic validator. What fails verification (a bad signature, a
 * join request that names someone else or another group) is *rejected*: never shown, never forwarded,
 * and judged invalid by gossipsub, not merely ignored. What a node already has is ignored; a genuine
 * join request is accepted.
 */

import { rm } from 'node:fs/promises'
import type { Message, TopicValidatorResult } from '@libp2p/gossipsub'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import type { ChatNode } from '../../src/node/chat-node.js'
import { createTransport, type TransportNode } from '../../src/node/transport.js'
import {
  decodeGossip,
  encodeGossip,
  encodeJoinRequest,
  type GossipFrame,
  topicOf,
} from '../../src/node/wire.js'
import {
  type GossipVerdict,
  gossipVerdict,
  waitForGossipVerdict as waitForVerdictOf,
} from '../fixtures/attacker-relay.js'
import {
  ChatRecord,
  cleanupAfterEach,
  createTestChatNode,
  NETWORK_TIMEOUT,
  type TestChatOptions,
  tempDir,
  waitForGroupMesh,
  waitForMembers,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { withEditedJoinPayload, withFlippedSignature } from '../fixtures/forgery.js'
import { testTransportInit } from '../fixtures/nodes.js'
import { waitFor } from '../fixtures/wait-for.js'

const cleanups = cleanupAfterEach()

/**
 * gossipsub's verdict on a message (see `gossipVerdict` in the attacker fixture): a 'reject' and an
 * 'ignore' look alike from outside, since neither is delivered nor forwarded; gossipsub tells them apart
 * only in its scoring, where a rejected message charges its sender an invalid delivery (P4).
 */
async function waitForGossipVerdict(node: ChatNode, data: Uint8Array, what: string): Promise<GossipVerdict> {
  return waitForVerdictOf(node.libp2p, data, `${node.name}'s judgement of ${what}`)
}

/** A started chat node on its own temporary data directory, recorded from before it starts. */
async function startNode(name: string, overrides: TestChatOptions = {}): Promise<[ChatNode, ChatRecord]> {
  const dir = await tempDir(name)
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const node = await createTestChatNode(dir, name, overrides)
  cleanups.push(() => node.stop())
  const record = new ChatRecord(node)
  await node.start()
  return [node, record]
}

/**
 * A bare libp2p peer, not a chat node, connected to `target` and subscribed to the topics of `groupIds`;
 * returns once each side sees the other subscribed, so what it publishes reaches `target` and what
 * `target` publishes reaches it.
 */
async function startAttacker(target: ChatNode, groupIds: readonly string[]): Promise<TransportNode> {
  const attacker = await createTransport(await testTransportInit())
  cleanups.push(() => attacker.stop())
  await attacker.dial(
    target.addrs().map((a) => multiaddr(a)),
    { signal: AbortSignal.timeout(NETWORK_TIMEOUT) },
  )
  for (const groupId of groupIds) {
    attacker.services.pubsub.subscribe(topicOf(groupId))
    await waitForSubscribers({ libp2p: attacker }, groupId, [target.peerId])
    await waitForSubscribers(target, groupId, [attacker.peerId.toString()])
  }
  return attacker
}

/** Publishes `frame` on the group's topic from `attacker` to its one peer; returns the data sent. */
async function publish(attacker: TransportNode, groupId: string, frame: GossipFrame): Promise<Uint8Array> {
  const data = encodeGossip(frame)
  const { recipients } = await attacker.services.pubsub.publish(topicOf(groupId), data)
  expect(recipients.map(String), 'the attacker reaches its one peer').toHaveLength(1)
  return data
}

/** The error names of the rejections `record` reported for input from `peer`, in order. */
function rejectionsFrom(record: ChatRecord, peer: string): string[] {
  return record.rejected.filter((r) => r.detail.from === peer).map((r) => r.detail.reason.split(':')[0] ?? '')
}

describe('join requests from the network', () => {
  it('refuses a forged request: another peer id or a changed name shows no request and is rejected', async () => {
    const [alice, record] = await startNode('alice')
    const { id: groupId } = await alice.createGroup('team')
    const attacker = await startAttacker(alice, [groupId])
    const mallory = await Identity.generate()
    const bob = await Identity.generate()
    const dave = await Identity.generate()
    const erin = await Identity.generate()

    const forged = [
      // a request bob never made: his peer id and name, signed by mallory
      withEditedJoinPayload(encodeJoinRequest(mallory, groupId, 'bob'), (p) => ({
        ...p,
        peer: bob.memberIdBytes,
      })),
      // dave's own request, renamed on the way to pass for alice's
      withEditedJoinPayload(encodeJoinRequest(dave, groupId, 'dave'), (p) => ({ ...p, name: 'alice' })),
    ]
    const sent: Uint8Array[] = []
    for (const data of forged) sent.push(await publish(attacker, groupId, { kind: 'join', data }))
    // a genuine request over the same way shows that the attacker's requests do get through
    await publish(attacker, groupId, { kind: 'join', data: encodeJoinRequest(erin, groupId, 'erin') })
    await waitFor(() => record.joinRequests.some((r) => r.detail.peerId === erin.memberId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see erin's join request",
    })

    const verdicts: GossipVerdict[] = []
    for (const data of sent) verdicts.push(await waitForGossipVerdict(alice, data, 'a forged join request'))
    expect(record.joinRequests.map((r) => r.detail)).toEqual([
      { group: groupId, peerId: erin.memberId, name: 'erin' },
    ])
    expect(verdicts).toEqual(['reject', 'reject'])
    expect(rejectionsFrom(record, attacker.peerId.toString())).toEqual([
      'InvalidSignatureError',
      'InvalidSignatureError',
    ])
  })

  it("refuses a genuine request for one group sent on another group's topic", async () => {
    const [alice, record] = await startNode('alice')
    const { id: teamId } = await alice.createGroup('team')
    const { id: otherId } = await alice.createGroup('other')
    const attacker = await startAttacker(alice, [otherId])
    const dave = await Identity.generate()
    const erin = await Identity.generate()

    // dave asked to join team; the attacker replays his request where members of other see it
    const misdirected = await publish(attacker, otherId, {
      kind: 'join',
      data: encodeJoinRequest(dave, teamId, 'dave'),
    })
    await publish(attacker, otherId, { kind: 'join', data: encodeJoinRequest(erin, otherId, 'erin') })
    await waitFor(() => record.joinRequests.some((r) => r.detail.peerId === erin.memberId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see erin's join request",
    })

    const verdict = await waitForGossipVerdict(alice, misdirected, 'a join request for another group')
    expect(record.joinRequests.map((r) => r.detail)).toEqual([
      { group: otherId, peerId: erin.memberId, name: 'erin' },
    ])
    expect(verdict).toBe('reject')
  })
})

describe('what fails verification stops at the first member', () => {
  it('rejects a tampered message and event from an attacker, so the member behind it never gets them', async () => {
    // attacker → alice → carol: carol is connected to alice only
    const [alice, aliceRecord] = await startNode('alice')
    const { id: groupId } = await alice.createGroup('team')
    const attacker = await startAttacker(alice, [groupId])
    const attackerId = attacker.peerId.toString()
    // carol neither dials the attacker nor lets it in, even once alice's peer exchange names it
    const [carol, carolRecord] = await startNode('carol', { denyPeer: (peerId) => peerId === attackerId })
    await carol.joinGroup(alice.invite(groupId, { ask: true }))
    // add only once the two gossip with each other: an add published before then can miss carol, who
    // would then learn of it only at the next anti-entropy round, 30 s later
    await waitForGroupMesh([alice, carol], groupId)
    await alice.add(groupId, carol.peerId)
    await waitForMembers(carol, groupId, [alice.peerId, carol.peerId])

    // the attacker takes alice's next message off the wire...
    const wire: Uint8Array[] = []
    attacker.services.pubsub.addEventListener('message', (e) => wire.push(e.detail.data))
    await alice.send(groupId, 'before')
    const isMessage = (data: Uint8Array): boolean => decodeGossip(data).kind === 'message'
    await waitFor(() => wire.some(isMessage), {
      timeout: NETWORK_TIMEOUT,
      message: "the attacker to receive alice's message",
    })
    const envelope = decodeGossip(wire.find(isMessage) as Uint8Array).data
    const addCarol = alice
      .group(groupId)
      ?.events()
      .find((e) => e.subject === carol.peerId)
    if (addCarol === undefined) throw new Error('alice has no event adding carol')

    // ...and sends it on with its signature changed, and a membership event changed the same way
    const tampered = [
      await publish(attacker, groupId, { kind: 'message', data: withFlippedSignature(envelope) }),
      await publish(attacker, groupId, { kind: 'event', data: withFlippedSignature(addCarol.bytes) }),
    ]
    const verdicts: GossipVerdict[] = []
    for (const data of tampered) verdicts.push(await waitForGossipVerdict(alice, data, 'a tampered frame'))
    expect(rejectionsFrom(aliceRecord, attackerId)).toEqual([
      'InvalidSignatureError',
      'InvalidSignatureError',
    ])

    // alice judged both before she sends this, so anything she forwarded went to carol ahead of it
    await alice.send(groupId, 'after')
    await carolRecord.waitForText(groupId, 'after')
    expect(carolRecord.messages(groupId).map((m) => m.text)).toEqual(['before', 'after'])
    expect(carolRecord.rejected).toEqual([])
    expect(tampered.map((data) => gossipVerdict(carol.libp2p, data))).toEqual([undefined, undefined])
    expect(carol.peers().map((p) => p.peerId)).toEqual([alice.peerId])
    // neither forwarded nor merely ignored: alice's gossipsub holds both as invalid
    expect(verdicts).toEqual(['reject', 'reject'])
  })
})

describe('the topic validator of a group', () => {
  it('rejects what fails verification, ignores what it already has, and accepts a genuine request', async () => {
    const [alice, record] = await startNode('alice')
    const { id: otherId } = await alice.createGroup('other')
    const { id: groupId } = await alice.createGroup('team')
    await alice.send(groupId, 'hello')
    const [own] = alice.replica.messageSource.messagesAfter(groupId, {}, null, 1)
    const genesis = alice.group(groupId)?.events()[0]
    if (own === undefined || genesis === undefined) throw new Error('alice has no message or no genesis')
    const mallory = await Identity.generate()
    const bob = await Identity.generate()
    const erin = await Identity.generate()

    const topic = topicOf(groupId)
    const validate = alice.libp2p?.services.pubsub.topicValidators.get(topic)
    if (validate === undefined) throw new Error(`alice has no validator on ${topic}`)
    const verdict = async (data: Uint8Array): Promise<TopicValidatorResult> => {
      const message: Message = { type: 'unsigned', topic, data }
      return validate(mallory.peerId, message)
    }
    const join = (data: Uint8Array): Uint8Array => encodeGossip({ kind: 'join', data })
    const inputs: Record<string, Uint8Array> = {
      'not a gossip frame': new Uint8Array([1, 2, 3]),
      'her own message with a changed signature': encodeGossip({
        kind: 'message',
        data: withFlippedSignature(own.bytes),
      }),
      'the genesis with a changed signature': encodeGossip({
        kind: 'event',
        data: withFlippedSignature(genesis.bytes),
      }),
      'a join request in the name of another peer': join(
        withEditedJoinPayload(encodeJoinRequest(mallory, groupId, 'bob'), (p) => ({
          ...p,
          peer: bob.memberIdBytes,
        })),
      ),
      'a join request for another group': join(encodeJoinRequest(mallory, otherId, 'mallory')),
      'a join request that is no request': join(new Uint8Array([1])),
      'her own message again': encodeGossip({ kind: 'message', data: own.bytes }),
      'the genesis again': encodeGossip({ kind: 'event', data: genesis.bytes }),
      'a genuine join request': join(encodeJoinRequest(erin, groupId, 'erin')),
    }
    const verdicts: Record<string, string> = {}
    for (const [what, data] of Object.entries(inputs)) verdicts[what] = await verdict(data)

    expect(verdicts).toEqual({
      'not a gossip frame': 'reject',
      'her own message with a changed signature': 'reject',
      'the genesis with a changed signature': 'reject',
      'a join request in the name of another peer': 'reject',
      'a join request for another group': 'reject',
      'a join request that is no request': 'reject',
      'her own message again': 'ignore',
      'the genesis again': 'ignore',
      'a genuine join request': 'accept',
    })
    expect(record.joinRequests.map((r) => r.detail)).toEqual([
      { group: groupId, peerId: erin.memberId, name: 'erin' },
    ])
  })
})
