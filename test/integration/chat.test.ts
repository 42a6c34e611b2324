/**
 * Five chat nodes in one process on 127.0.0.1 (real TCP + Noise, mDNS off), each bootstrapping to the
 * ones started before it. Each test forms its own group on this network, so tests do not share group
 * state; they do share the nodes, and some restart one.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomNonce } from '../../src/crypto/index.js'
import { sealEnvelope } from '../../src/membership/envelope.js'
import { decodeEnvelope, type Group } from '../../src/membership/index.js'
import type { ChatNode } from '../../src/node/chat-node.js'
import { UnverifiedNameError } from '../../src/node/errors.js'
import { type FrameChannel, SYNC_PROTOCOL, type SyncReplica, syncAsInitiator } from '../../src/node/sync.js'
import { createFrameStream } from '../../src/node/sync-protocol.js'
import { encodeGossip, topicOf } from '../../src/node/wire.js'
import {
  type ChatNodes,
  type ChatRecord,
  createChatNodes,
  NETWORK_TIMEOUT,
  waitForGroupMesh,
  waitForMembers,
} from '../fixtures/chat.js'
import { messageKeyFor } from '../fixtures/membership.js'
import { waitFor } from '../fixtures/wait-for.js'

const NAMES = ['alice', 'bob', 'carol', 'dave', 'eve'] as const
const ALICE = 0
const BOB = 1
const CAROL = 2
const DAVE = 3
const EVE = 4

/** Small, so the test can outwait it; long enough for anything in flight when an epoch ends. */
const GRACE_MS = 500

const ACCESS_DENIED = {
  name: 'AccessDeniedError',
  message: expect.stringMatching(/^Access denied: you are not a member of /),
}

describe('chat between five nodes on one host', () => {
  let net: ChatNodes
  const node = (i: number): ChatNode => net.node(i)
  const record = (i: number): ChatRecord => net.record(i)
  const id = (i: number): string => net.node(i).peerId

  beforeAll(async () => {
    net = await createChatNodes(NAMES.length, {
      names: NAMES,
      // no relay here; a short anti-entropy period so sync runs alongside gossip throughout
      init: { graceMs: GRACE_MS, syncIntervalMs: 1000, listenViaRelay: false },
    })
  }, 60_000)
  afterAll(async () => {
    await net?.teardown()
  })

  /**
   * `founder` creates a group, everyone in `members` and `applicants` joins with its invite, and the
   * founder adds `members` by peer id. Resolves once every member lists them all and every participant
   * sees every other one subscribed.
   */
  async function formGroup(name: string, founder: number, members: number[], applicants: number[] = []) {
    const { id: groupId } = await node(founder).createGroup(name)
    const invite = node(founder).invite(groupId, { ask: true })
    for (const i of [...members, ...applicants]) await node(i).joinGroup(invite)
    for (const i of members) await node(founder).add(groupId, id(i))
    const everyone = [founder, ...members]
    await Promise.all(
      everyone.map((i) =>
        waitForMembers(
          node(i),
          groupId,
          everyone.map((j) => id(j)),
        ),
      ),
    )
    await waitForGroupMesh(
      [...everyone, ...applicants].map((i) => node(i)),
      groupId,
    )
    return groupId
  }

  function namesOf(i: number, groupId: string): string[] {
    return node(i)
      .members(groupId)
      .map((m) => m.name)
      .sort()
  }

  it('creates a group, sees join requests, adds by peer id (even offline), not by a claimed name, removes', async () => {
    const [alice, bob, carol] = [node(ALICE), node(BOB), node(CAROL)]
    const { id: groupId } = await alice.createGroup('team')
    await record(ALICE).waitForChange(groupId, { action: 'create', by: id(ALICE), member: id(ALICE) })
    expect(alice.members(groupId)).toEqual([{ peerId: id(ALICE), name: 'alice' }])
    const invite = alice.invite(groupId, { ask: true })

    // bob joins with the invite: alice sees his request, and he is not a member yet
    await bob.joinGroup(invite)
    await waitFor(() => record(ALICE).joinRequests.some((r) => r.detail.peerId === id(BOB)), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see bob's join request",
    })
    expect(record(ALICE).joinRequests.find((r) => r.detail.peerId === id(BOB))?.detail).toEqual({
      group: groupId,
      peerId: id(BOB),
      name: 'bob',
    })
    expect(bob.status(groupId).member).toBe(false)

    // the name in a join request is only a claim: it adds nobody, and the error says who claimed it
    await expect(alice.add(groupId, 'bob')).rejects.toMatchObject({
      name: UnverifiedNameError.name,
      candidates: [{ peerId: id(BOB), name: 'bob' }],
    })
    expect(alice.members(groupId)).toEqual([{ peerId: id(ALICE), name: 'alice' }])
    await alice.add(groupId, id(BOB))
    for (const i of [ALICE, BOB]) {
      const seen = await record(i).waitForChange(groupId, { action: 'add', by: id(ALICE), member: id(BOB) })
      expect(seen.detail.change).toMatchObject({ by: { name: 'alice' }, member: { name: 'bob' } })
    }
    await waitForMembers(bob, groupId, [id(ALICE), id(BOB)])
    expect(bob.status(groupId).member).toBe(true)

    // by peer id; the name comes from carol's join request
    await carol.joinGroup(invite)
    await waitFor(() => record(ALICE).joinRequests.some((r) => r.detail.peerId === id(CAROL)), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see carol's join request",
    })
    await alice.add(groupId, id(CAROL))
    for (const i of [ALICE, BOB, CAROL]) {
      const seen = await record(i).waitForChange(groupId, { action: 'add', by: id(ALICE), member: id(CAROL) })
      expect(seen.detail.change).toMatchObject({ by: { name: 'alice' }, member: { name: 'carol' } })
    }
    await Promise.all(
      [ALICE, BOB, CAROL].map((i) => waitForMembers(node(i), groupId, [ALICE, BOB, CAROL].map(id))),
    )

    // dave joins, goes offline, and bob (any member may add) adds him by peer id meanwhile
    await node(DAVE).joinGroup(invite)
    await waitFor(() => record(BOB).joinRequests.some((r) => r.detail.peerId === id(DAVE)), {
      timeout: NETWORK_TIMEOUT,
      message: "bob to see dave's join request",
    })
    const daveId = id(DAVE)
    await net.stop(DAVE)
    await bob.add(groupId, daveId)
    for (const i of [ALICE, BOB, CAROL]) {
      const seen = await record(i).waitForChange(groupId, { action: 'add', by: id(BOB), member: daveId })
      expect(seen.detail.change).toMatchObject({ by: { name: 'bob' }, member: { name: 'dave' } })
    }
    await bob.send(groupId, 'welcome, dave')

    // back online, dave gets the log and his key: he is a member and reads what was sent while he was away
    const dave = await net.restart(DAVE)
    await record(DAVE).waitForChange(groupId, { action: 'add', by: id(BOB), member: daveId })
    await waitForMembers(dave, groupId, [ALICE, BOB, CAROL, DAVE].map(id))
    expect(dave.status(groupId)).toMatchObject({ group: { id: groupId, name: 'team' }, member: true })
    const welcome = await record(DAVE).waitForText(groupId, 'welcome, dave')
    expect(welcome).toMatchObject({ from: id(BOB), name: 'bob' })

    // remove, by display name; everyone, the removed member included, sees who removed whom
    await alice.remove(groupId, 'carol')
    for (const i of [ALICE, BOB, CAROL, DAVE]) {
      const seen = await record(i).waitForChange(groupId, {
        action: 'remove',
        by: id(ALICE),
        member: id(CAROL),
      })
      expect(seen.detail.change).toMatchObject({ by: { name: 'alice' }, member: { name: 'carol' } })
      await waitForMembers(node(i), groupId, [ALICE, BOB, DAVE].map(id))
    }
    for (const i of [ALICE, BOB, DAVE]) expect(namesOf(i, groupId)).toEqual(['alice', 'bob', 'dave'])
    expect(carol.status(groupId).member).toBe(false)
  }, 90_000)

  it('only members read: a removed member and a non-member get ciphertext; a removed member cannot post', async () => {
    const groupId = await formGroup('secrets', ALICE, [BOB, CAROL], [EVE])
    const [alice, bob, carol, eve] = [node(ALICE), node(BOB), node(CAROL), node(EVE)]

    const before = await alice.send(groupId, 'for members only')
    for (const i of [BOB, CAROL]) await record(i).waitForText(groupId, 'for members only')

    await alice.remove(groupId, id(CAROL))
    const removalSeen = await Promise.all(
      [ALICE, BOB, CAROL].map((i) =>
        record(i).waitForChange(groupId, { action: 'remove', by: id(ALICE), member: id(CAROL) }),
      ),
    )

    const after = await bob.send(groupId, 'carol must not read this')
    await record(ALICE).waitForText(groupId, 'carol must not read this')
    const notice = await record(CAROL).waitForEncrypted(after.id)
    expect(notice).toMatchObject({ group: groupId, from: id(BOB), name: 'bob' })
    expect(notice.bytes).toBeGreaterThan(0)

    // the non-member, never added, was sent no log, but sees both messages as what they are to it:
    // ciphertext, signed by a peer id it cannot put a name to; each once, and never as text
    expect(eve.group(groupId)?.ready).toBe(false)
    for (const [sent, sender] of [
      [before, ALICE],
      [after, BOB],
    ] as const) {
      const seen = await record(EVE).waitForEncrypted(sent.id)
      expect(seen).toMatchObject({ group: groupId, from: id(sender), name: '' })
      expect(seen.bytes).toBeGreaterThan(0)
      expect(record(EVE).encrypted.filter((e) => e.detail.id === sent.id)).toHaveLength(1)
    }
    expect(record(EVE).messages(groupId)).toEqual([])
    expect(record(CAROL).timesShown(after.id)).toBe(0)
    expect(
      record(CAROL)
        .messages(groupId)
        .map((m) => m.text),
    ).toEqual(['for members only'])

    // carol cannot send any more
    await expect(carol.send(groupId, 'am I still in?')).rejects.toMatchObject(ACCESS_DENIED)

    // she seals with the key of the last epoch she had and publishes it herself: once the grace window
    // for that epoch has passed everywhere, every peer drops it
    const group = carol.group(groupId) as Group
    const oldEpoch = group
      .events()
      .filter((e) => e.payload.keys.some((k) => Buffer.compare(k.to, carol.identity.memberIdBytes) === 0))
      .at(-1)
    if (oldEpoch === undefined) throw new Error('carol never held an epoch key')
    const forged = sealEnvelope({
      identity: carol.identity,
      group: CID.parse(groupId),
      epoch: oldEpoch.cid,
      seq: group.nextSeq,
      key: await messageKeyFor(oldEpoch, carol.identity),
      body: { text: 'sneaking in after removal', ts: Date.now() },
      nonce: randomNonce(),
    })
    const forgedId = decodeEnvelope(forged).id
    const lastRemoval = Math.max(...removalSeen.map((s) => s.at))
    await waitFor(() => Date.now() > lastRemoval + GRACE_MS + 100, {
      timeout: GRACE_MS + 5000,
      message: 'the grace window of the epoch before the removal to pass',
    })
    const { recipients } = (await carol.libp2p?.services.pubsub.publish(
      topicOf(groupId),
      encodeGossip({ kind: 'message', data: forged }),
    )) ?? { recipients: [] }
    expect(recipients.map(String).sort()).toEqual([id(ALICE), id(BOB), id(EVE)].sort())
    for (const i of [ALICE, BOB]) {
      expect(await record(i).waitForRejection(groupId, 'StaleEpochError')).toContain(oldEpoch.id)
    }
    for (const i of [ALICE, BOB]) {
      expect(record(i).timesShown(forgedId)).toBe(0)
      expect(record(i).encrypted.some((e) => e.detail.id === forgedId)).toBe(false)
    }
    // eve holds no log, so she cannot judge it: to her it is one more envelope she cannot read
    expect((await record(EVE).waitForEncrypted(forgedId)).name).toBe('')
    expect(record(EVE).timesShown(forgedId)).toBe(0)
    expect(alice.members(groupId).map((m) => m.peerId)).not.toContain(id(CAROL))
    expect(eve.status(groupId).member).toBe(false)
  }, 60_000)

  it('refuses add, remove and send from a non-member with AccessDeniedError', async () => {
    const groupId = await formGroup('closed', ALICE, [BOB], [EVE])
    const eve = node(EVE)
    const refused = async (): Promise<void> => {
      await expect(eve.add(groupId, id(CAROL))).rejects.toMatchObject(ACCESS_DENIED)
      await expect(eve.add(groupId, id(EVE))).rejects.toMatchObject(ACCESS_DENIED)
      await expect(eve.remove(groupId, id(BOB))).rejects.toMatchObject(ACCESS_DENIED)
      await expect(eve.remove(groupId, 'alice')).rejects.toMatchObject(ACCESS_DENIED)
      await expect(eve.send(groupId, 'let me in')).rejects.toMatchObject(ACCESS_DENIED)
    }
    // eve was never added, so no member sent her the log: she knows the group from her invite only
    expect(eve.group(groupId)?.ready).toBe(false)
    await refused()
    // a former member holds the log (so she knows the group and that she is not in it): refused the same
    await node(ALICE).add(groupId, id(EVE))
    await waitForMembers(eve, groupId, [id(ALICE), id(BOB), id(EVE)])
    await node(ALICE).remove(groupId, id(EVE))
    await waitForMembers(eve, groupId, [id(ALICE), id(BOB)])
    await refused()
    // nothing changed for the members, and nothing was sent
    await node(BOB).send(groupId, 'still just us')
    await record(ALICE).waitForText(groupId, 'still just us')
    for (const i of [ALICE, BOB]) {
      expect(namesOf(i, groupId)).toEqual(['alice', 'bob'])
      expect(
        record(i)
          .messages(groupId)
          .map((m) => m.text),
      ).toEqual(['still just us'])
    }
  }, 60_000)

  it('shows each message exactly once on every peer, while gossip and sync both deliver', async () => {
    const everyone = [ALICE, BOB, CAROL, DAVE, EVE]
    const groupId = await formGroup('burst', ALICE, [BOB, CAROL, DAVE, EVE])
    const PER_SENDER = 8
    const sent = new Map<string, { from: string; text: string }>()
    await Promise.all(
      everyone.map(async (s) => {
        const sender = node(s)
        for (let k = 0; k < PER_SENDER; k++) {
          const text = `burst from ${NAMES[s]} #${k}`
          const { id: messageId } = await sender.send(groupId, text)
          sent.set(messageId, { from: sender.peerId, text })
        }
      }),
    )
    const total = everyone.length * PER_SENDER
    expect(sent.size).toBe(total)
    for (const i of everyone) {
      await waitFor(() => [...sent.keys()].every((m) => record(i).timesShown(m) > 0), {
        timeout: NETWORK_TIMEOUT,
        message: `${NAMES[i]} to show all ${total} burst messages`,
      })
    }

    // every peer now gets every message once more, as from a sync that starts from nothing
    for (const i of everyone) {
      const resent = await syncFromScratch(node(i), node((i + 1) % everyone.length), groupId)
      expect(resent).toBe(total)
    }

    for (const i of everyone) {
      const shown = record(i).messages(groupId)
      expect(shown).toHaveLength(total)
      for (const m of shown) expect({ from: m.from, text: m.text }).toEqual(sent.get(m.id))
      for (const messageId of sent.keys()) expect(record(i).timesShown(messageId)).toBe(1)
    }
  }, 60_000)

  it('keeps history and membership across a restart, and still sends and receives', async () => {
    const groupId = await formGroup('diary', ALICE, [BOB])
    const [alice, bob] = [node(ALICE), node(BOB)]
    const conversation: Array<[number, string]> = [
      [ALICE, 'dear diary'],
      [BOB, 'today we tested restarts'],
      [ALICE, 'and they worked'],
    ]
    for (const [from, text] of conversation) {
      await node(from).send(groupId, text)
      await record(from === ALICE ? BOB : ALICE).waitForText(groupId, text)
    }
    const historyBefore = bob.history(groupId)
    const membersBefore = bob.members(groupId)
    expect(historyBefore.map((m) => m.text)).toEqual(conversation.map(([, text]) => text))

    let offlineHistory: string[] = []
    let offlineMembers: unknown[] = []
    const bob2 = await net.restart(BOB, {
      // read from disk alone, before any peer could resend anything
      beforeStart: (fresh) => {
        offlineHistory = fresh.history(groupId).map((m) => m.text)
        offlineMembers = fresh.members(groupId)
      },
    })
    expect(offlineHistory).toEqual(conversation.map(([, text]) => text))
    expect(offlineMembers).toEqual(membersBefore)
    // who founded the group and who invited bob survive the restart too
    const aliceRef = { peerId: alice.peerId, name: alice.name }
    expect(bob2.status(groupId).group).toEqual({
      id: groupId,
      name: 'diary',
      founder: aliceRef,
      inviter: aliceRef,
      inviteForged: false,
    })
    expect(bob2.history(groupId)).toEqual(historyBefore)
    expect(bob2.members(groupId)).toEqual(membersBefore)

    await waitForGroupMesh([alice, bob2], groupId)
    await bob2.send(groupId, 'bob is back')
    expect(await record(ALICE).waitForText(groupId, 'bob is back')).toMatchObject({ from: id(BOB) })
    await alice.send(groupId, 'welcome back')
    await record(BOB).waitForText(groupId, 'welcome back')
    expect(
      record(BOB)
        .messages(groupId)
        .map((m) => m.text),
    ).toEqual(['bob is back', 'welcome back'])
    expect(bob2.history(groupId).map((m) => m.text)).toEqual([
      ...conversation.map(([, text]) => text),
      'bob is back',
      'welcome back',
    ])
  }, 60_000)

  it('catches up through sync on what was sent while it was offline, in order and once', async () => {
    const groupId = await formGroup('catch-up', ALICE, [BOB, CAROL])
    await net.stop(CAROL)
    const N = 10
    const sent: Record<string, string[]> = { [id(ALICE)]: [], [id(BOB)]: [] }
    for (let k = 0; k < N; k++) {
      for (const i of [ALICE, BOB]) {
        const text = `while carol was away: ${NAMES[i]} #${k}`
        await node(i).send(groupId, text)
        sent[id(i)]?.push(text)
      }
    }
    // bob has all of alice's, so either of them can serve carol
    await record(BOB).waitForText(groupId, `while carol was away: alice #${N - 1}`)

    await net.restart(CAROL)
    const carol = record(CAROL)
    await waitFor(() => carol.messages(groupId).length >= 2 * N, {
      timeout: NETWORK_TIMEOUT,
      message: `carol to catch up on ${2 * N} messages`,
    })
    const shown = carol.messages(groupId)
    expect(shown).toHaveLength(2 * N)
    expect(new Set(shown.map((m) => m.id)).size).toBe(2 * N)
    for (const [from, texts] of Object.entries(sent)) {
      expect(shown.filter((m) => m.from === from).map((m) => m.text)).toEqual(texts)
    }
    expect(
      node(CAROL)
        .history(groupId, 100)
        .map((m) => m.text),
    ).toHaveLength(2 * N)
  }, 60_000)
})

/**
 * `local` syncs `group` with `remote` claiming to have no message at all, so `remote` sends every
 * message it holds again (as it would to a peer that lost its watermarks). Returns how many it sent.
 */
async function syncFromScratch(local: ChatNode, remote: ChatNode, groupId: string): Promise<number> {
  const group = local.group(groupId)
  if (group === undefined || local.libp2p === undefined) throw new Error(`${local.name} is not in ${groupId}`)
  const forgetful: SyncReplica = {
    group: (g) => local.group(g),
    access: (g, peer) => local.replica.access(g, peer),
    wantedEpochs: (g) => local.replica.wantedEpochs(g),
    messageSource: {
      watermarks: () => ({}),
      envelopesAfter: (g, marks, epochs) => local.replica.messageSource.envelopesAfter(g, marks, epochs),
    },
    acceptEvent: (g, bytes, from) => local.replica.acceptEvent(g, bytes, from),
    acceptMessage: (g, bytes, from) => local.replica.acceptMessage(g, bytes, from),
  }
  const signal = AbortSignal.timeout(NETWORK_TIMEOUT)
  const stream = await local.libp2p.dialProtocol(peerIdFromString(remote.peerId), SYNC_PROTOCOL, { signal })
  const frames = createFrameStream(stream)
  const channel: FrameChannel = {
    write: (frame) => frames.writeFrame(frame, { signal }),
    read: async () => (await frames.readFrame({ signal })) ?? undefined,
  }
  try {
    const result = await syncAsInitiator(channel, forgetful, group, remote.peerId)
    await frames.close({ signal })
    return result.messagesReceived
  } catch (err) {
    frames.abort(err as Error)
    throw err
  }
}
