/**
 * Concurrent membership changes made on the two sides of a network partition: once the sides meet again
 * every replica resolves the same members and the same current epoch, one rekey repairs the epoch key,
 * and from then on exactly the remaining members read what is sent.
 *
 * Five nodes (fay, amy, ben, cal, xan) in one process on 127.0.0.1. The partition is made by each node's
 * connection gater (`denyPeer`) consulting a set this file controls, and by hanging up the connections
 * that cross it; healing clears the sets and dials across again.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Group } from '../../src/membership/index.js'
import type { ChatNode } from '../../src/node/chat-node.js'
import {
  type ChatNodes,
  type ChatRecord,
  createChatNodes,
  NETWORK_TIMEOUT,
  waitForGroupMesh,
  waitForMembers,
} from '../fixtures/chat.js'
import { divergence, type ReplicaView, viewOfReplica } from '../fixtures/convergence.js'
import { waitFor } from '../fixtures/wait-for.js'

const NAMES = ['fay', 'amy', 'ben', 'cal', 'xan'] as const
const FAY = 0
const AMY = 1
const BEN = 2
const CAL = 3
const XAN = 4

/**
 * The member second in the rekey order waits this long before it rekeys too: long next to a gossip hop
 * on loopback, so a duplicate rekey would mean the first one was not seen, not that it was slow.
 */
const REKEY_DELAY_MS = 1500

describe('concurrent membership changes across a partition', () => {
  let net: ChatNodes
  /** Per node: the peer ids its connection gater refuses, i.e. the other side of the partition. */
  const refused: Array<Set<string>> = NAMES.map(() => new Set<string>())

  const node = (i: number): ChatNode => net.node(i)
  const record = (i: number): ChatRecord => net.record(i)
  const id = (i: number): string => net.node(i).peerId

  beforeAll(async () => {
    net = await createChatNodes(NAMES.length, {
      names: NAMES,
      init: (i) => ({
        denyPeer: (peerId) => (refused[i] as Set<string>).has(peerId),
        rekeyDelayMs: REKEY_DELAY_MS,
        syncIntervalMs: 500,
        listenViaRelay: false,
      }),
    })
  }, 60_000)
  afterEach(async () => {
    // a test that failed while partitioned must not leave the next one partitioned
    if (net !== undefined && refused.some((set) => set.size > 0)) await heal()
  })
  afterAll(async () => {
    await net?.teardown()
  })

  function connected(i: number, j: number): boolean {
    return (node(i).libp2p?.getConnections(peerIdFromString(id(j))).length ?? 0) > 0
  }

  /** Cut every connection between `left` and `right`, and keep them from connecting again. */
  async function partition(left: readonly number[], right: readonly number[]): Promise<void> {
    for (const i of left) for (const j of right) (refused[i] as Set<string>).add(id(j))
    for (const j of right) for (const i of left) (refused[j] as Set<string>).add(id(i))
    await Promise.all(
      left.flatMap((i) =>
        right.flatMap((j) => [
          node(i).libp2p?.hangUp(peerIdFromString(id(j))),
          node(j).libp2p?.hangUp(peerIdFromString(id(i))),
        ]),
      ),
    )
    await waitFor(() => left.every((i) => right.every((j) => !connected(i, j) && !connected(j, i))), {
      timeout: NETWORK_TIMEOUT,
      message: 'every connection across the partition to close',
    })
  }

  /** Let everyone connect again and dial across, as peers coming back into reach would. */
  async function heal(): Promise<void> {
    for (const set of refused) set.clear()
    const pairs: Array<[number, number]> = []
    for (let i = 0; i < NAMES.length; i++) for (let j = i + 1; j < NAMES.length; j++) pairs.push([i, j])
    await Promise.all(
      pairs
        .filter(([i, j]) => !connected(i, j))
        .map(([i, j]) =>
          node(i)
            .libp2p?.dial(peerIdFromString(id(j)))
            .catch(() => {
              // j may have dialled i at the same moment; the wait below is what counts
            }),
        ),
    )
    await waitFor(() => pairs.every(([i, j]) => connected(i, j) && connected(j, i)), {
      timeout: NETWORK_TIMEOUT,
      message: 'every pair of nodes to be connected again after healing',
    })
  }

  /** `by` adds `joiner`, who joins with `by`'s invite, by peer id once it has seen the join request. */
  async function admit(groupId: string, by: number, joiner: number): Promise<void> {
    await node(joiner).joinGroup(node(by).invite(groupId, { ask: true }))
    await waitFor(
      () => record(by).joinRequests.some((r) => r.detail.group === groupId && r.detail.peerId === id(joiner)),
      { timeout: NETWORK_TIMEOUT, message: `${NAMES[by]} to see ${NAMES[joiner]}'s join request` },
    )
    await node(by).add(groupId, id(joiner))
  }

  /** `founder` creates a group and admits `members`; resolves once all agree. */
  async function formGroup(name: string, founder: number, members: readonly number[]): Promise<string> {
    const { id: groupId } = await node(founder).createGroup(name)
    for (const i of members) await admit(groupId, founder, i)
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
      everyone.map((i) => node(i)),
      groupId,
    )
    return groupId
  }

  function labelOf(peerId: string): string {
    const i = NAMES.findIndex((_, k) => id(k) === peerId)
    return i < 0 ? peerId : (NAMES[i] as string)
  }

  function groupOf(i: number, groupId: string): Group {
    const group = node(i).group(groupId)
    if (group === undefined) throw new Error(`${NAMES[i]} does not hold group ${groupId}`)
    return group
  }

  /** What `i`'s replica resolved, its members by this file's labels. */
  function viewOf(i: number, groupId: string): ReplicaView {
    // by peer id, shown as this file's label: display names of peers added by id are placeholders
    return viewOfReplica(NAMES[i] as string, groupOf(i, groupId), labelOf)
  }

  /**
   * Wait until every one of `nodes` lists exactly `members` (names), all are on one current epoch, none
   * needs a rekey and all hold the same heads; the timeout error says who lags and shows each view.
   */
  async function waitForConvergence(
    groupId: string,
    nodes: readonly number[],
    members: readonly number[],
  ): Promise<ReplicaView[]> {
    const want = members.map((i) => NAMES[i] as string)
    const views = (): ReplicaView[] => nodes.map((i) => viewOf(i, groupId))
    try {
      await waitFor(() => divergence(views(), want).length === 0, {
        timeout: NETWORK_TIMEOUT,
        message: `every replica to resolve members ${[...want].sort().join(', ')} from the same events`,
      })
    } catch (err) {
      const all = views()
      throw new Error(
        `${(err as Error).message}; ${divergence(all, want).join('; ')}; views: ${JSON.stringify(all, null, 1)}`,
      )
    }
    return views()
  }

  /**
   * Each of `speakers` sends a line; every other speaker reads every line; each of `outsiders` receives
   * every line, but only as ciphertext, and is refused when it tries to send.
   */
  async function expectOnlyMembersRead(
    groupId: string,
    speakers: readonly number[],
    outsiders: readonly number[],
  ): Promise<void> {
    await waitForGroupMesh(
      [...speakers, ...outsiders].map((i) => node(i)),
      groupId,
    )
    const sent: Array<{ from: number; id: string; text: string }> = []
    for (const i of speakers) {
      const text = `${NAMES[i]} speaking after the partition healed (${groupId.slice(-6)})`
      sent.push({ from: i, id: (await node(i).send(groupId, text)).id, text })
    }
    for (const { from, id: messageId, text } of sent) {
      for (const i of speakers) {
        if (i === from) continue
        expect(await record(i).waitForText(groupId, text)).toMatchObject({
          id: messageId,
          from: id(from),
          name: NAMES[from],
        })
      }
      for (const i of outsiders) {
        expect(await record(i).waitForEncrypted(messageId)).toMatchObject({ group: groupId, from: id(from) })
      }
    }
    for (const i of outsiders) {
      const readable = record(i)
        .messages(groupId)
        .map((m) => m.id)
      for (const { id: messageId } of sent) expect(readable).not.toContain(messageId)
      await expect(node(i).send(groupId, 'am I still in?')).rejects.toMatchObject({
        name: 'AccessDeniedError',
      })
    }
  }

  it('an add on one side and a removal on the other converge to one member list, one epoch, one rekey', async () => {
    const groupId = await formGroup('split-add-remove', FAY, [AMY, BEN, CAL])
    await partition([FAY, AMY, XAN], [BEN, CAL])

    // one side: amy adds xan, a new peer who joins with amy's invite
    await admit(groupId, AMY, XAN)
    // other side: ben removes cal
    await node(BEN).remove(groupId, id(CAL))
    // and ben writes something that can only cross once the partition heals
    const during = await node(BEN).send(groupId, 'written by ben during the partition')

    for (const i of [FAY, AMY, XAN]) await waitForMembers(node(i), groupId, [FAY, AMY, BEN, CAL, XAN].map(id))
    for (const i of [BEN, CAL]) await waitForMembers(node(i), groupId, [FAY, AMY, BEN].map(id))
    // each side still has only its own change: the partition held
    expect(viewOf(FAY, groupId).members).toEqual(['amy', 'ben', 'cal', 'fay', 'xan'])
    expect(viewOf(CAL, groupId).members).toEqual(['amy', 'ben', 'fay'])
    for (const i of [FAY, AMY, BEN, CAL, XAN]) expect(viewOf(i, groupId).rekeys).toBe(0)

    await heal()
    // the removed member's replica converges too: the same events, so the same epoch and heads
    const views = await waitForConvergence(groupId, [FAY, AMY, BEN, CAL, XAN], [FAY, AMY, BEN, XAN])
    // one rekey gives the key to exactly the merged members; nobody needs another
    for (const v of views) expect(v, v.node).toMatchObject({ rekeys: 1, needsRekey: false })
    const epoch = groupOf(FAY, groupId).currentEpoch()
    expect(epoch?.members.sort()).toEqual([FAY, AMY, BEN, XAN].map(id).sort())

    // everyone is told about the change made on the other side
    for (const i of [FAY, AMY, XAN]) {
      await record(i).waitForChange(groupId, { action: 'remove', by: id(BEN), member: id(CAL) })
    }
    for (const i of [BEN, CAL]) {
      await record(i).waitForChange(groupId, { action: 'add', by: id(AMY), member: id(XAN) })
    }
    // what ben wrote during the partition reaches the side that knew him as a member
    for (const i of [FAY, AMY]) {
      expect(await record(i).waitForText(groupId, 'written by ben during the partition')).toMatchObject({
        id: during.id,
        from: id(BEN),
      })
    }

    await expectOnlyMembersRead(groupId, [FAY, AMY, BEN, XAN], [CAL])
    // nothing sent or received afterwards made anyone rekey again
    for (const i of [FAY, AMY, BEN, CAL, XAN]) expect(viewOf(i, groupId).rekeys).toBe(1)
  }, 60_000)

  it('mutual removal on the two sides removes both, and the rest still chat', async () => {
    const groupId = await formGroup('split-mutual', FAY, [AMY, BEN, CAL])
    await partition([FAY, AMY, XAN], [BEN, CAL])

    await Promise.all([node(AMY).remove(groupId, id(BEN)), node(BEN).remove(groupId, id(AMY))])
    for (const i of [FAY, AMY]) await waitForMembers(node(i), groupId, [FAY, AMY, CAL].map(id))
    for (const i of [BEN, CAL]) await waitForMembers(node(i), groupId, [FAY, BEN, CAL].map(id))
    expect(viewOf(FAY, groupId).members).toEqual(['amy', 'cal', 'fay'])
    expect(viewOf(CAL, groupId).members).toEqual(['ben', 'cal', 'fay'])

    await heal()
    const views = await waitForConvergence(groupId, [FAY, AMY, BEN, CAL], [FAY, CAL])
    for (const v of views) expect(v, v.node).toMatchObject({ rekeys: 1, needsRekey: false })
    for (const [i, gone] of [
      [FAY, BEN],
      [CAL, AMY],
    ] as const) {
      await record(i).waitForChange(groupId, {
        action: 'remove',
        by: id(gone === BEN ? AMY : BEN),
        member: id(gone),
      })
    }

    await expectOnlyMembersRead(groupId, [FAY, CAL], [AMY, BEN])
  }, 60_000)

  it('both sides adding the same newcomer converge to one membership for them', async () => {
    const groupId = await formGroup('split-double-add', FAY, [AMY, BEN, CAL])
    // xan asks to join while everyone is still connected, so both sides add him under the name he asked with
    await node(XAN).joinGroup(node(FAY).invite(groupId, { ask: true }))
    for (const i of [AMY, BEN]) {
      await waitFor(
        () => record(i).joinRequests.some((r) => r.detail.group === groupId && r.detail.peerId === id(XAN)),
        { timeout: NETWORK_TIMEOUT, message: `${NAMES[i]} to see xan's join request` },
      )
    }
    await partition([FAY, AMY, XAN], [BEN, CAL])
    await Promise.all([node(AMY).add(groupId, id(XAN)), node(BEN).add(groupId, id(XAN))])
    for (const i of [FAY, AMY, XAN, BEN, CAL]) {
      await waitForMembers(node(i), groupId, [FAY, AMY, BEN, CAL, XAN].map(id))
    }

    await heal()
    const views = await waitForConvergence(groupId, [FAY, AMY, BEN, CAL, XAN], [FAY, AMY, BEN, CAL, XAN])
    // both adds gave xan the key of their epoch, so either one reaches exactly the members: nobody rekeys,
    // and every replica keeps the two adds as its heads (the wait above saw them all hold the same ones)
    for (const v of views) expect(v, v.node).toMatchObject({ needsRekey: false, rekeys: 0 })
    expect(views[0]?.heads).toHaveLength(2)
    for (const i of [FAY, AMY, BEN, CAL, XAN]) {
      expect(
        node(i)
          .members(groupId)
          .filter((m) => m.peerId === id(XAN)),
      ).toEqual([{ peerId: id(XAN), name: 'xan' }])
    }

    await expectOnlyMembersRead(groupId, [FAY, AMY, BEN, CAL, XAN], [])
  }, 60_000)

  it('removing a member voids the add they made concurrently: the peer they added is out again', async () => {
    const groupId = await formGroup('split-voided-add', FAY, [AMY, BEN, CAL])
    await partition([FAY, AMY, XAN], [BEN, CAL])

    // amy adds xan on her side while ben removes amy on his
    await admit(groupId, AMY, XAN)
    await node(BEN).remove(groupId, id(AMY))
    for (const i of [FAY, AMY, XAN]) await waitForMembers(node(i), groupId, [FAY, AMY, BEN, CAL, XAN].map(id))
    for (const i of [BEN, CAL]) await waitForMembers(node(i), groupId, [FAY, BEN, CAL].map(id))
    // xan was a member for a while, and talked to its side
    expect(node(XAN).status(groupId).member).toBe(true)
    expect(viewOf(FAY, groupId).members).toEqual(['amy', 'ben', 'cal', 'fay', 'xan'])
    const brief = await node(XAN).send(groupId, 'xan, a member for a moment')
    await record(FAY).waitForText(groupId, 'xan, a member for a moment')

    await heal()
    const views = await waitForConvergence(groupId, [FAY, AMY, BEN, CAL, XAN], [FAY, BEN, CAL])
    expect(new Set(views.map((v) => v.rekeys)).size).toBe(1)
    expect(node(XAN).status(groupId).member).toBe(false)
    await record(XAN).waitForChange(groupId, { action: 'remove', by: id(BEN), member: id(AMY) })
    // what xan said under the voided add reaches the other side by sync, which refuses to show it
    for (const i of [BEN, CAL]) {
      await waitFor(
        () =>
          record(i).rejected.some(
            (r) =>
              r.detail.group === groupId &&
              r.detail.reason.startsWith('NotAMemberError: ') &&
              r.detail.reason.includes(id(XAN)),
          ),
        { timeout: NETWORK_TIMEOUT, message: `${NAMES[i]} to refuse what xan said under the voided add` },
      )
      expect(record(i).timesShown(brief.id)).toBe(0)
    }

    await expectOnlyMembersRead(groupId, [FAY, BEN, CAL], [AMY, XAN])
  }, 60_000)
})
