/**
 * Attack 1 of issue 8: sync streams that ask for everything and never read. A member holds 300 messages
 * of 60 KiB; a stranger, then a member's own identity on a plain libp2p peer, each open 24 sync streams,
 * ask for every message of every epoch and stop reading. The member's memory stays bounded, the streams
 * over the limits are refused, the stalled ones are aborted, and the members keep chatting throughout.
 *
 * RSS is the test process's: the member, its fellow member and the attackers all run in it, so the
 * bound covers the attackers' own buffers too.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Group } from '../../src/membership/index.js'
import { syncWithPeer } from '../../src/node/sync.js'
import type { TransportNode } from '../../src/node/transport.js'
import {
  askForEverything,
  createAttacker,
  openStalledSync,
  type StalledSyncStream,
  sampleRss,
  waitUntilAnswered,
} from '../fixtures/attacker-sync.js'
import { type ChatNodes, createChatNodes, NETWORK_TIMEOUT, waitForMembers } from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1
const MESSAGES = 300
const TEXT_BYTES = 60 * 1024
const STREAMS = 24
/** The stated bound: generous next to what bounded sync needs (a few MiB), far below the 800 MiB of before. */
const RSS_BOUND = 100 * 1024 * 1024
/** Short, so the test sees stalled streams aborted; the default is 20 s. */
const STALL_MS = 3000
/** The answer's fourth frame (after heads, events, end) comes only once the asker's want was read. */
const ANSWERED = 4

const MiB = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

describe('sync streams that never read', () => {
  let net: ChatNodes
  let groupId: string
  const attackers: TransportNode[] = []
  const memberKey = generateKeyPair('Ed25519')

  beforeAll(async () => {
    net = await createChatNodes(2, {
      names: ['alice', 'bob'],
      init: (i) => (i === ALICE ? { syncLimits: { stallTimeoutMs: STALL_MS } } : {}),
    })
    const [alice, bob] = [net.node(ALICE), net.node(BOB)]
    groupId = (await alice.createGroup('big')).id
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await waitFor(() => net.record(ALICE).joinRequests.some((r) => r.detail.peerId === bob.peerId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see bob's join request",
    })
    await alice.add(groupId, bob.peerId)
    // a member whose key the attacker holds (a stolen or buggy device), added while it is offline
    await alice.add(groupId, peerIdFromPrivateKey(await memberKey).toString())
    await waitForMembers(
      bob,
      groupId,
      alice.members(groupId).map((m) => m.peerId),
    )
    const filler = 'x'.repeat(TEXT_BYTES - 16)
    for (let k = 0; k < MESSAGES; k++) await alice.send(groupId, `${k} ${filler}`)
    await waitFor(() => net.record(BOB).messages(groupId).length === MESSAGES, {
      timeout: 60_000,
      message: `bob to get all ${MESSAGES} messages`,
    })
  }, 120_000)
  afterAll(async () => {
    await Promise.allSettled(attackers.map((a) => a.stop()))
    await net?.teardown()
  })

  /**
   * Opens `STREAMS` streams from `attacker` that ask alice for every message and read nothing; waits until
   * alice answered each (or refused it). Returns them, and how many she answered.
   */
  async function stall(
    attacker: TransportNode,
  ): Promise<{ streams: Array<StalledSyncStream | undefined>; answered: number }> {
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, () =>
        openStalledSync(attacker, net.node(ALICE).peerId, askForEverything(groupId)),
      ),
    )
    await waitUntilAnswered(streams, ANSWERED, NETWORK_TIMEOUT)
    return { streams, answered: streams.filter((s) => s !== undefined && s.framesStarted >= ANSWERED).length }
  }

  /** Each of alice and bob says something the other reads. */
  async function chat(label: string): Promise<void> {
    for (const [from, to] of [
      [ALICE, BOB],
      [BOB, ALICE],
    ] as const) {
      const text = `${net.node(from).name}: ${label}`
      await net.node(from).send(groupId, text)
      await net.record(to).waitForText(groupId, text)
    }
  }

  it('keeps the memory of the member bounded, and the members chatting', async () => {
    const alice = net.node(ALICE)
    const rss = sampleRss()

    const stranger = await createAttacker(alice)
    attackers.push(stranger)
    const fromStranger = await stall(stranger)
    await chat('while a stranger asks for everything')

    const member = await createAttacker(alice, { privateKey: await memberKey })
    attackers.push(member)
    const fromMember = await stall(member)
    await chat('while a member asks for everything and never reads')

    const growth = rss.stop()
    console.info(
      `sync-memory: RSS ${MiB(rss.baseline)} before, peak growth ${MiB(growth)}; answered ` +
        `${fromStranger.answered}/${STREAMS} stranger and ${fromMember.answered}/${STREAMS} member streams`,
    )
    expect(growth).toBeLessThan(RSS_BOUND)
    // at most 4 concurrent streams per peer are served; the others are refused at once
    expect(fromMember.answered).toBeLessThanOrEqual(4)
    expect(fromStranger.answered).toBeLessThanOrEqual(4)

    // a stalled stream is aborted after the stall timeout: none is left holding the member's memory
    const all = [...fromStranger.streams, ...fromMember.streams]
    await waitFor(() => all.every((s) => s === undefined || s.ended !== undefined), {
      timeout: STALL_MS + NETWORK_TIMEOUT,
      message: 'alice to abort every stalled sync stream',
    })

    // and an honest member is still served
    const bob = net.node(BOB)
    const result = await syncWithPeer(
      bob.libp2p as TransportNode,
      peerIdFromString(alice.peerId),
      bob.replica,
      bob.group(groupId) as Group,
      AbortSignal.timeout(NETWORK_TIMEOUT),
    )
    expect(result.known).toBe(true)
  }, 120_000)
})
