/**
 * A relay against a stranger with nothing but throwaway libp2p identities (issue 8, attacks 3, 4 and 10):
 * it fills the relay's group slots with groups of its own, fills its storage with self-made groups and
 * top-ups, and sends join frames that are not what they claim. A legitimate group (members exchanging
 * messages) must still get in, before and after a restart, and forged join frames must stop at the relay.
 */
import { rm } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { type ChatNode, createChatNode } from '../../src/node/chat-node.js'
import { encodeGossip, encodeJoinRequest } from '../../src/node/wire.js'
import {
  connectTo,
  type GossipVerdict,
  gossipVerdict,
  joinTopic,
  publishRaw,
  startAttacker,
  waitForGossipVerdict,
} from '../fixtures/attacker-relay.js'
import {
  ChatRecord,
  cleanupAfterEach,
  createRelay,
  NETWORK_TIMEOUT,
  type TestRelay,
  tempDir,
  testChatInit,
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
  const node = await createChatNode(
    testChatInit(dir, name, { bootstrap: relay.relay.addrs(), ...(denyPeer ? { denyPeer } : {}) }),
  )
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
