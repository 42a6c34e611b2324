/**
 * Attack 7 of issue 8: a sync partner names any address in its peer-exchange hints, and the member dials
 * it. Now a member dials only hints that come from members (or the relays it was configured with) and
 * that name members; anything else is dropped with a log line. TCP listeners stand in for the addresses
 * named, and count the connections made to them.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import type { PeerHint } from '../../src/node/sync.js'
import type { TransportNode } from '../../src/node/transport.js'
import { createAttacker, type DialWitness, dialWitness, serveHints } from '../fixtures/attacker-sync.js'
import { type ChatNodes, createChatNodes, NETWORK_TIMEOUT } from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

describe('peer hints from a sync partner', () => {
  let net: ChatNodes
  let attacker: TransportNode
  /** Where the attacker says an offline member is, and where it says some unknown peer is. */
  let member: DialWitness
  let unknown: DialWitness
  let daveId: string
  let unknownId: string

  beforeAll(async () => {
    // alice syncs often, so the attacker's hints reach her again and again
    net = await createChatNodes(1, { names: ['alice'], init: { syncIntervalMs: 200 } })
    const alice = net.node(0)
    const { id: groupId } = await alice.createGroup('team')
    // dave is a member who is offline: alice is connected to nobody else of the group
    daveId = (await Identity.generate()).memberId
    await alice.add(groupId, daveId)
    unknownId = (await Identity.generate()).memberId
    ;[member, unknown] = await Promise.all([dialWitness(), dialWitness()])
  }, 60_000)
  afterAll(async () => {
    await attacker?.stop()
    await net?.teardown()
    await Promise.allSettled([member?.close(), unknown?.close()])
  })

  const hints = (): PeerHint[] => [
    { id: daveId, addrs: [`${member.addr}/p2p/${daveId}`] },
    { id: unknownId, addrs: [`${unknown.addr}/p2p/${unknownId}`] },
  ]

  /** Waits until the attacker answered `rounds` more syncs of alice's. */
  async function moreSyncs(server: { served(asker: string): number }, rounds: number): Promise<void> {
    const alice = net.node(0).peerId
    const target = server.served(alice) + rounds
    await waitFor(() => server.served(alice) >= target, {
      timeout: NETWORK_TIMEOUT,
      message: `alice to sync ${rounds} more times with the attacker`,
    })
  }

  it('never dials what a stranger names, even an address it gives for a member', async () => {
    const key = await generateKeyPair('Ed25519')
    attacker = await createAttacker(net.node(0), { privateKey: key })
    const server = await serveHints(attacker, hints)
    // alice syncs with every peer that connects, then with a random one every round
    await moreSyncs(server, 3)
    expect({ member: member.connections, unknown: unknown.connections }).toEqual({ member: 0, unknown: 0 })

    // once a member, the same peer's hint to a member is followed: the witness does see dials
    await net.node(0).add(net.node(0).groups()[0]?.id as string, peerIdFromPrivateKey(key).toString())
    await waitFor(() => member.connections > 0, {
      timeout: NETWORK_TIMEOUT,
      message: "alice to dial the member a member's hint names",
    })
    // but never a hint that names a peer who is not a member
    await moreSyncs(server, 3)
    expect(unknown.connections).toBe(0)
  })
})
