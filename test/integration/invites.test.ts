/**
 * Invites between chat nodes in one process on 127.0.0.1: who a joiner is told founded the group and
 * invited it, a forged invite caught when the genesis arrives (with the log, once a member adds the
 * joiner; and again after a restart), and invites that cannot be made or used.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidOf, Identity } from '../../src/crypto/index.js'
import type { ChatNode, InviteForgedNotice } from '../../src/node/index.js'
import { decodeInvite, encodeInvite, INVITE_PREFIX } from '../../src/node/invite.js'
import { type ChatNodes, createChatNodes, NETWORK_TIMEOUT } from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1
const CAROL = 2

describe('invites between nodes on one host', () => {
  let net: ChatNodes
  let mallory: Identity
  const node = (i: number): ChatNode => net.node(i)
  const ref = (i: number) => ({ peerId: node(i).peerId, name: node(i).name })

  beforeAll(async () => {
    mallory = await Identity.generate()
    net = await createChatNodes(3, {
      names: ['alice', 'bob', 'carol'],
      init: { syncIntervalMs: 1000, listenViaRelay: false },
    })
  }, 60_000)
  afterAll(async () => {
    await net?.teardown()
  })

  /** Resolves once `node` holds the genesis of `groupId`. */
  const genesisAt = (i: number, groupId: string) =>
    waitFor(() => node(i).group(groupId)?.ready === true, {
      timeout: NETWORK_TIMEOUT,
      message: `${node(i).name} to receive the genesis of ${groupId}`,
    })

  it('keeps loopback addresses in an invite when the node has no others', async () => {
    const { id } = await node(ALICE).createGroup('loopback')
    const { addrs } = decodeInvite(node(ALICE).invite(id, { ask: true }))
    expect(addrs.length).toBeGreaterThan(0)
    expect(addrs).toEqual(node(ALICE).addrs())
  })

  it('tells a joiner who founded the group and who invited it; the genesis confirms it', async () => {
    const forged: InviteForgedNotice[] = []
    node(CAROL).addEventListener('invite:forged', ({ detail }) => forged.push(detail))
    const { id } = await node(ALICE).createGroup('team')
    await node(BOB).joinGroup(node(ALICE).invite(id, { ask: true }))
    expect(node(BOB).status(id).group).toEqual({
      id,
      name: 'team',
      founder: ref(ALICE),
      inviter: ref(ALICE),
      inviteForged: false,
    })
    // members send the log only to members: the genesis reaches bob once alice adds him, and then he
    // can pass the group on
    await node(ALICE).add(id, node(BOB).peerId)
    await genesisAt(BOB, id)
    await node(CAROL).joinGroup(node(BOB).invite(id, { ask: true }))
    await node(BOB).add(id, node(CAROL).peerId)
    await genesisAt(CAROL, id)
    expect(node(CAROL).status(id).group).toEqual({
      id,
      name: 'team',
      founder: ref(ALICE),
      inviter: ref(BOB),
      inviteForged: false,
    })
    expect(forged).toEqual([])
  })

  it('reports an invite whose founder the genesis contradicts as forged, and again after a restart', async () => {
    const { id } = await node(ALICE).createGroup('forged')
    // mallory signs an invite to alice's group that says a look-alike "alice" (mallory) founded it
    const lie = encodeInvite(mallory, {
      groupId: id,
      groupName: 'forged',
      founder: { peerId: mallory.memberId, name: 'alice' },
      inviter: { peerId: mallory.memberId, name: 'mallory' },
      addrs: [],
    })
    const expected: InviteForgedNotice = {
      group: id,
      inviter: { peerId: mallory.memberId, name: 'mallory' },
      claimed: { groupName: 'forged', founder: { peerId: mallory.memberId, name: 'alice' } },
      actual: { groupName: 'forged', founder: ref(ALICE) },
    }
    const reported = waitFor(node(BOB), 'invite:forged', {
      filter: (e) => e.detail.group === id,
      timeout: NETWORK_TIMEOUT,
      message: 'bob to report the forged invite once the genesis arrives',
    })
    await node(BOB).joinGroup(lie)
    // the genesis reaches bob when a member adds him, whoever invited him
    await node(ALICE).add(id, node(BOB).peerId)
    expect((await reported).detail).toEqual(expected)
    expect(node(BOB).status(id).group).toMatchObject({
      founder: ref(ALICE),
      inviter: expected.inviter,
      inviteForged: true,
    })

    let again: Promise<CustomEvent<InviteForgedNotice>> | undefined
    await net.restart(BOB, {
      beforeStart: (restarted) => {
        again = waitFor(restarted, 'invite:forged', {
          filter: (e) => e.detail.group === id,
          timeout: NETWORK_TIMEOUT,
          message: 'bob to report the forged invite again when he starts',
        })
      },
    })
    expect((await again)?.detail).toEqual(expected)
  })

  it('makes no invite to a group whose genesis has not arrived, and joins none with a tampered invite', async () => {
    const nowhere = cidOf(new TextEncoder().encode('a group nobody has')).toString()
    const invite = encodeInvite(mallory, {
      groupId: nowhere,
      groupName: 'nowhere',
      founder: { peerId: mallory.memberId, name: 'mallory' },
      inviter: { peerId: mallory.memberId, name: 'mallory' },
      addrs: [],
    })
    const before = node(CAROL).groups()
    const bytes = Buffer.from(invite.slice(INVITE_PREFIX.length), 'base64url')
    const at = bytes.indexOf('nowhere') + 1
    bytes[at] = (bytes[at] as number) ^ 0x01
    await expect(node(CAROL).joinGroup(INVITE_PREFIX + bytes.toString('base64url'))).rejects.toMatchObject({
      name: 'InvalidInviteError',
    })
    expect(node(CAROL).groups()).toEqual(before)

    await node(CAROL).joinGroup(invite)
    expect(() => node(CAROL).invite(nowhere)).toThrow(expect.objectContaining({ name: 'GroupNotReadyError' }))
  })
})
