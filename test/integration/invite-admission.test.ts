/**
 * Invites that admit on their own, between chat nodes in one process on 127.0.0.1: the inviter is
 * offline and another member admits; two joiners race for one token; an expired token; a token whose
 * inviter was removed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inviteTokenOf } from '../../src/membership/index.js'
import type { ChatNode, InviteRefusedNotice, JoinUnansweredNotice } from '../../src/node/index.js'
import { decodeInvite } from '../../src/node/invite.js'
import { type ChatNodes, createChatNodes, NETWORK_TIMEOUT, waitForMembers } from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

/** Node indices, in the order of `names`. */
const [ALICE, BOB, CAROL, DAN, ERIN, FRANK] = [0, 1, 2, 3, 4, 5] as const

describe('invites that admit on their own', () => {
  let net: ChatNodes
  let groupId: string
  const node = (i: number): ChatNode => net.node(i)
  const refusals: InviteRefusedNotice[] = []

  beforeAll(async () => {
    net = await createChatNodes(6, {
      names: ['alice', 'bob', 'carol', 'dan', 'erin', 'frank'],
      // a joiner nobody added says so after 2 s, not the 60 s a user waits
      init: { syncIntervalMs: 1000, listenViaRelay: false, joinUnansweredMs: 2000 },
    })
    for (const i of [BOB, CAROL]) {
      node(i).addEventListener('invite:refused', ({ detail }) => refusals.push(detail))
    }
    ;({ id: groupId } = await node(ALICE).createGroup('team'))
    // bob joins by an invite alice approves by hand: the behaviour of --ask
    await node(BOB).joinGroup(node(ALICE).invite(groupId, { ask: true }))
    await node(ALICE).add(groupId, node(BOB).peerId)
    await waitForMembers(node(BOB), groupId, [node(ALICE).peerId, node(BOB).peerId])
  }, 90_000)
  afterAll(async () => {
    await net?.teardown()
  })

  const isMemberAt = (at: number, who: number): boolean =>
    node(at).group(groupId)?.isMember(node(who).peerId) === true
  const refused = (who: number, reason: InviteRefusedNotice['reason']) =>
    waitFor(() => refusals.some((r) => r.peerId === node(who).peerId && r.reason === reason), {
      timeout: NETWORK_TIMEOUT,
      message: `a member to refuse ${node(who).name}'s invite as ${reason}`,
    })

  it('admits a joiner while its inviter is offline: another member checks the token and adds it', async () => {
    const invite = node(ALICE).invite(groupId)
    expect(decodeInvite(invite).admits?.token.inviter).toBe(node(ALICE).peerId)
    await net.stop(ALICE)
    await node(CAROL).joinGroup(invite)
    const members = [ALICE, BOB, CAROL].map((i) => node(i).peerId)
    await waitForMembers(node(BOB), groupId, members)
    await waitForMembers(node(CAROL), groupId, members)
    const add = node(BOB)
      .group(groupId)
      ?.events()
      .find((e) => e.payload.type === 'add' && e.subject === node(CAROL).peerId)
    expect(add?.author).toBe(node(BOB).peerId)
    expect(add === undefined ? undefined : inviteTokenOf(add)?.inviter).toBe(node(ALICE).peerId)
  })

  it('two joiners racing for one token: exactly one is admitted, at every replica', async () => {
    const invite = node(BOB).invite(groupId)
    await Promise.all([node(DAN).joinGroup(invite), node(ERIN).joinGroup(invite)])
    await waitFor(() => isMemberAt(BOB, DAN) || isMemberAt(BOB, ERIN), {
      timeout: NETWORK_TIMEOUT,
      message: 'bob to admit dan or erin',
    })
    const [winner, loser] = isMemberAt(BOB, DAN) ? [DAN, ERIN] : [ERIN, DAN]
    await refused(loser, 'used')
    const members = [ALICE, BOB, CAROL, winner].map((i) => node(i).peerId)
    for (const at of [BOB, CAROL, winner]) await waitForMembers(node(at), groupId, members)
    for (const at of [BOB, CAROL, winner]) expect(isMemberAt(at, loser)).toBe(false)
  })

  it('an expired token admits nobody; a member can still add the joiner by hand', async () => {
    const invite = node(CAROL).invite(groupId, { validForMs: 1 })
    const expires = decodeInvite(invite).admits?.token.expiresAt as number
    await waitFor(() => Date.now() > expires, { timeout: 1000, message: 'the invite to expire' })
    const unanswered: JoinUnansweredNotice[] = []
    node(FRANK).addEventListener('join:unanswered', ({ detail }) => unanswered.push(detail))
    await node(FRANK).joinGroup(invite)
    await refused(FRANK, 'expired')
    expect(isMemberAt(BOB, FRANK) || isMemberAt(CAROL, FRANK)).toBe(false)
    // no member tells frank (what a member sends a joiner, a stranger could send too): his own node does
    await waitFor(() => unanswered.length > 0, {
      timeout: NETWORK_TIMEOUT,
      message: 'frank to be told that nobody admitted him',
    })
    expect(unanswered).toEqual([
      {
        group: groupId,
        waitedMs: 2000,
        admits: true,
        inviter: { peerId: node(CAROL).peerId, name: 'carol' },
      },
    ])
    await node(BOB).add(groupId, node(FRANK).peerId)
    await waitFor(() => isMemberAt(FRANK, FRANK), {
      timeout: NETWORK_TIMEOUT,
      message: 'frank to learn that bob added him',
    })
  })

  it('a token whose inviter was removed admits nobody', async () => {
    const loser = isMemberAt(BOB, DAN) ? ERIN : DAN
    const invite = node(CAROL).invite(groupId)
    await node(BOB).remove(groupId, node(CAROL).peerId)
    await waitFor(() => !isMemberAt(FRANK, CAROL), {
      timeout: NETWORK_TIMEOUT,
      message: "frank to learn of carol's removal",
    })
    await node(loser).joinGroup(invite)
    await refused(loser, 'void')
    expect(isMemberAt(BOB, loser)).toBe(false)
  })
})
