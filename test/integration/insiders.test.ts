/**
 * Issue 7 through real nodes: what a malicious member, and a removed member that back-dates events, can
 * and cannot do to the others. Four nodes (alice, bob, carol, mallory) in one process on 127.0.0.1;
 * mallory's misdeeds are events signed with her key by hand and published on the group topic, as a
 * modified client would.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import type { Group, SignedEvent } from '../../src/membership/index.js'
import { encodeGossip, topicOf } from '../../src/node/wire.js'
import {
  type ChatNodes,
  ChatRecord,
  createChatNodes,
  createTestChatNode,
  NETWORK_TIMEOUT,
  waitForGroupMesh,
  waitForMembers,
} from '../fixtures/chat.js'
import { forgeEvent } from '../fixtures/membership.js'
import { waitFor } from '../fixtures/wait-for.js'

const NAMES = ['alice', 'bob', 'carol', 'mallory'] as const
const [ALICE, BOB, CAROL, MALLORY] = [0, 1, 2, 3]

describe('insiders', () => {
  let net: ChatNodes
  let groupId: string
  const id = (i: number): string => net.node(i).peerId
  const group = (i: number): Group => net.node(i).group(groupId) as Group

  /** Publishes an event on the group topic from node `i`, as its (modified) client would. */
  async function publish(i: number, event: SignedEvent): Promise<void> {
    const pubsub = net.node(i).libp2p?.services.pubsub
    if (pubsub === undefined) throw new Error('not started')
    await pubsub.publish(topicOf(groupId), encodeGossip({ kind: 'event', data: event.bytes }))
  }

  beforeEach(async () => {
    await net?.teardown()
    net = await createChatNodes(NAMES.length, { names: NAMES, init: { syncIntervalMs: 1000 } })
    ;({ id: groupId } = await net.node(ALICE).createGroup('team'))
    const invite = net.node(ALICE).invite(groupId, { ask: true })
    for (const i of [BOB, CAROL, MALLORY]) {
      await net.node(i).joinGroup(invite)
      await net.node(ALICE).add(groupId, id(i))
    }
    const everyone = NAMES.map((_, i) => id(i))
    for (const i of [ALICE, BOB, CAROL, MALLORY]) await waitForMembers(net.node(i), groupId, everyone)
    await waitForGroupMesh(
      NAMES.map((_, i) => net.node(i)),
      groupId,
    )
  }, 60_000)
  afterAll(async () => {
    await net?.teardown()
  })

  it('a key split by a member is found by the member given the other key, who names her and rekeys', async () => {
    // mallory seals one key to everyone but bob, and another to bob, under one commitment
    const other = new Uint8Array(randomBytes(32))
    const split = await forgeEvent({
      on: group(MALLORY),
      type: 'rekey',
      author: net.node(MALLORY).identity,
      keyFor: (member) => (member === id(BOB) ? other : undefined),
    })
    await publish(MALLORY, split)
    const badKeys = net.record(BOB).badKeys
    await waitFor(() => badKeys.some((n) => n.detail.epoch === split.id), {
      timeout: NETWORK_TIMEOUT,
      message: "bob to find mallory's split key",
    })
    expect(badKeys.find((n) => n.detail.epoch === split.id)?.detail.author.peerId).toBe(id(MALLORY))
    // alice's key matched the commitment: nothing to report on her side
    expect(net.record(ALICE).badKeys).toEqual([])
    // bob's rekey supersedes the split epoch everywhere; then alice and bob read each other again
    await waitFor(() => group(ALICE).currentEpoch()?.id !== split.id && !group(ALICE).needsRekey(), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to take bob's rekey",
    })
    await net.node(ALICE).send(groupId, 'bob, can you read me?')
    await net.record(BOB).waitForText(groupId, 'bob, can you read me?')
    await net.node(BOB).send(groupId, 'yes, alice')
    await net.record(ALICE).waitForText(groupId, 'yes, alice')
  })

  it('a removed member cannot undo her remover’s removals by back-dating a removal of her (item 2)', async () => {
    const [alice, bob, carol] = [net.node(ALICE), net.node(BOB), net.node(CAROL)]
    const fork = group(MALLORY).heads()
    const before = [...group(MALLORY).memberMap().keys()]
    await alice.remove(groupId, id(CAROL))
    await alice.remove(groupId, id(MALLORY))
    for (const i of [ALICE, BOB]) await waitForMembers(net.node(i), groupId, [id(ALICE), id(BOB)])
    // mallory signs remove(alice) on the heads from before both removals, and publishes it
    const retaliation = await forgeEvent({
      on: group(MALLORY),
      type: 'remove',
      author: net.node(MALLORY).identity,
      subject: alice.identity,
      parents: fork,
      recipients: before.filter((m) => m !== id(ALICE)),
    })
    await publish(MALLORY, retaliation)
    await waitFor(() => group(BOB).hasEvent(retaliation.id), {
      timeout: NETWORK_TIMEOUT,
      message: "bob to get mallory's back-dated removal",
    })
    // alice is out (removals take effect), but carol and mallory stay out: nobody is let back in
    await waitForMembers(bob, groupId, [id(BOB)])
    await waitFor(() => !group(BOB).needsRekey(), {
      timeout: NETWORK_TIMEOUT,
      message: 'bob to rekey for the members left',
    })
    expect(group(BOB).currentEpoch()?.members).toEqual([id(BOB)])
    const sent = await bob.send(groupId, 'only bob reads this')
    const seenByCarol = await net.record(CAROL).waitForEncrypted(sent.id)
    expect(seenByCarol.from).toBe(id(BOB))
    expect(
      net
        .record(CAROL)
        .messages(groupId)
        .map((m) => m.text),
    ).not.toContain('only bob reads this')
    expect(carol.status(groupId).member).toBe(false)
  })

  it('--name on an existing data directory renames the member for everyone, with a signed event', async () => {
    const before = net
      .node(ALICE)
      .members(groupId)
      .find((m) => m.peerId === id(CAROL))?.name
    await net.stop(CAROL)
    const carol = await createTestChatNode(net.dataDirs[CAROL] as string, 'caroline', {
      bootstrap: net.node(ALICE).addrs(),
    })
    const record = new ChatRecord(carol)
    try {
      await carol.start()
      for (const i of [ALICE, BOB]) {
        await waitFor(
          () =>
            net
              .record(i)
              .membership.some(
                (m) =>
                  m.detail.change?.action === 'rename' &&
                  m.detail.change.member.peerId === carol.peerId &&
                  m.detail.change.member.name === 'caroline' &&
                  m.detail.change.from === before,
              ),
          { timeout: NETWORK_TIMEOUT, message: `${NAMES[i]} to see carol renamed caroline` },
        )
        expect(
          net
            .node(i)
            .members(groupId)
            .find((m) => m.peerId === carol.peerId)?.name,
        ).toBe('caroline')
      }
      expect(record.membership.some((m) => m.detail.change?.action === 'rename')).toBe(true)
    } finally {
      record.stop()
      await carol.stop()
    }
  })
})
