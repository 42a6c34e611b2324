/**
 * The bootstrap/relay node: peers whose only bootstrap is the relay, and who are refused any connection
 * to each other, chat through it, catch up from its store after being offline, and find it intact after
 * it restarts. It enforces its storage caps and rate limit without failing other groups, and it never
 * holds anything readable.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hkdf, Identity } from '../../src/crypto/index.js'
import { Group } from '../../src/membership/index.js'
import type { ChatNode } from '../../src/node/chat-node.js'
import { decodeInvite, encodeInvite } from '../../src/node/invite.js'
import { junkGroup } from '../fixtures/attacker-relay.js'
import {
  type ChatNodes,
  createChatNodes,
  createRelay,
  NETWORK_TIMEOUT,
  type TestRelay,
  waitForMembers,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { groupKeyFor } from '../fixtures/membership.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1

describe('relay between peers that can only reach the relay', () => {
  let relay: TestRelay
  let net: ChatNodes
  let groupId: string
  /** Every plaintext sent in this suite: none may show up anywhere in the relay's files. */
  const plaintexts = new Set<string>()

  beforeAll(async () => {
    relay = await createRelay()
    net = await createChatNodes(2, {
      names: ['alice', 'bob'],
      bootstrap: () => relay.relay.addrs(),
      init: {
        // they may reach the relay and nobody else: in particular not each other
        denyPeer: (peerId) => peerId !== relay.relay.peerId,
        syncIntervalMs: 1000,
      },
    })
  }, 60_000)
  afterAll(async () => {
    await net?.teardown()
    await relay?.teardown()
  })

  const node = (i: number): ChatNode => net.node(i)

  async function send(i: number, text: string): Promise<string> {
    plaintexts.add(text)
    return (await node(i).send(groupId, text)).id
  }

  async function waitUntilStored(ids: readonly string[]): Promise<void> {
    await waitFor(() => ids.every((id) => relay.stored.get(groupId)?.includes(id)), {
      timeout: NETWORK_TIMEOUT,
      message: `the relay to store ${ids.length} messages`,
    })
  }

  it('carries the join request, the membership change and messages between them', async () => {
    const [alice, bob] = [node(ALICE), node(BOB)]
    groupId = (await alice.createGroup('via-relay')).id
    // the relay takes up every group a member syncs with it
    await waitForSubscribers(alice, groupId, [relay.relay.peerId])

    // the invite carries alice's own addresses; bob's node is not allowed to use them
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await waitFor(() => net.record(ALICE).joinRequests.some((r) => r.detail.peerId === bob.peerId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see bob's join request through the relay",
    })
    await alice.add(groupId, bob.peerId)
    const change = await net
      .record(BOB)
      .waitForChange(groupId, { action: 'add', by: alice.peerId, member: bob.peerId })
    expect(change.detail.change).toMatchObject({ by: { name: 'alice' }, member: { name: 'bob' } })
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])

    const fromAlice = await send(ALICE, 'hello bob, through the relay')
    expect(await net.record(BOB).waitForText(groupId, 'hello bob, through the relay')).toMatchObject({
      id: fromAlice,
      from: alice.peerId,
      name: 'alice',
    })
    const fromBob = await send(BOB, 'hello alice, through the relay')
    await net.record(ALICE).waitForText(groupId, 'hello alice, through the relay')
    await waitUntilStored([fromAlice, fromBob])

    // they never had a connection to each other: everything went through the relay
    for (const [me, other] of [
      [ALICE, BOB],
      [BOB, ALICE],
    ] as const) {
      expect(
        node(me)
          .libp2p?.getConnections()
          .map((c) => c.remotePeer.toString()),
      ).not.toContain(node(other).peerId)
      expect([...net.record(me).connectedTo]).toEqual([relay.relay.peerId])
    }
  })

  it('gives a member who was offline everything it missed, in order and once', async () => {
    await net.stop(BOB)
    const missed: Array<{ id: string; text: string }> = []
    for (let k = 0; k < 20; k++) {
      const text = `while bob was offline #${k}`
      missed.push({ id: await send(ALICE, text), text })
    }
    await waitUntilStored(missed.map((m) => m.id))
    await net.stop(ALICE)

    // bob comes back with only the relay to talk to
    await net.restart(BOB)
    const bob = net.record(BOB)
    await waitFor(() => bob.messages(groupId).length >= missed.length, {
      timeout: NETWORK_TIMEOUT,
      message: `bob to catch up on ${missed.length} messages from the relay`,
    })
    const shown = bob.messages(groupId)
    expect(shown.map((m) => ({ id: m.id, text: m.text }))).toEqual(missed)
    expect(shown.every((m) => m.from === net.node(ALICE).peerId)).toBe(true)
    expect([...bob.connectedTo]).toEqual([relay.relay.peerId])
  })

  it('keeps its identity and store across a restart and still serves catch-up', async () => {
    await net.stop(BOB)
    await net.restart(ALICE)
    await waitForSubscribers(node(ALICE), groupId, [relay.relay.peerId])
    const missed: Array<{ id: string; text: string }> = []
    for (let k = 0; k < 5; k++) {
      const text = `before the relay restarted #${k}`
      missed.push({ id: await send(ALICE, text), text })
    }
    await waitUntilStored(missed.map((m) => m.id))
    await net.stop(ALICE)

    const { peerId } = relay.relay
    const before = relay.relay.stats()
    expect(before.messages).toBe(2 + 20 + 5)
    await relay.restart()
    expect(relay.relay.peerId).toBe(peerId)
    const after = relay.relay.stats()
    expect(after).toMatchObject({
      groups: before.groups,
      events: before.events,
      messages: before.messages,
      storedBytes: before.storedBytes,
    })

    // bob bootstraps to the restarted relay (new port, same peer id) and gets what he missed from its store
    await net.restart(BOB)
    const bob = net.record(BOB)
    await waitFor(() => bob.messages(groupId).length >= missed.length, {
      timeout: NETWORK_TIMEOUT,
      message: `bob to catch up on ${missed.length} messages from the restarted relay`,
    })
    expect(bob.messages(groupId).map((m) => ({ id: m.id, text: m.text }))).toEqual(missed)
  })

  it('stores nothing readable, and cannot read even when added as a member', async () => {
    const alice = await net.restart(ALICE)
    const bob = node(BOB)
    const relayId = relay.relay.peerId
    await waitForSubscribers(relay.relay, groupId, [alice.peerId, bob.peerId])

    // someone adds the relay to the group: an epoch key is now sealed to it
    await alice.add(groupId, relayId)
    const relayGroup = relay.relay.group(groupId, false)
    if (relayGroup === undefined) throw new Error('the relay does not hold the group')
    await waitFor(() => relayGroup.currentEpoch()?.members.includes(relayId) === true, {
      timeout: NETWORK_TIMEOUT,
      message: 'the relay to learn it was added',
    })
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId, relayId])
    const afterAdd = await send(ALICE, 'said after the relay was added')
    await net.record(BOB).waitForText(groupId, 'said after the relay was added')
    await waitUntilStored([afterAdd])

    // its own replica still opens nothing
    const text = 'sealed under an epoch that includes the relay'
    plaintexts.add(text)
    const sealed = await (alice.group(groupId) as Group).seal(text)
    expect(await relayGroup.open(sealed.bytes)).toMatchObject({
      kind: 'encrypted',
      sender: alice.peerId,
      epoch: relayGroup.currentEpoch()?.id,
    })

    const secrets = [
      ...[...plaintexts].map((t) => ({ what: `the text "${t}"`, bytes: Buffer.from(t) })),
      ...[alice, bob].flatMap((n) => [
        { what: `${n.name}'s identity seed`, bytes: Buffer.from(n.identity.seed) },
        { what: `${n.name}'s identity key`, bytes: Buffer.from(n.identity.toProtobuf()) },
      ]),
      ...(await epochKeys(alice.group(groupId) as Group, alice.identity)),
    ]
    expect(secrets.length).toBeGreaterThan(plaintexts.size + 4)

    const stats = JSON.stringify(relay.relay.stats())
    for (const t of plaintexts) expect(stats).not.toContain(t)
    for (const { what, bytes } of secrets) {
      expect(stats, what).not.toContain(bytes.toString('hex'))
      expect(stats, what).not.toContain(bytes.toString('base64'))
    }

    // the scan does see what the relay stores: every envelope alice holds is in its files
    const envelopes = alice.replica.messageSource.messagesAfter(groupId, {}, null, 10_000).map((m) => m.bytes)
    expect(envelopes.length).toBe(2 + 20 + 5 + 1)
    const running = await filesOf(relay.dataDir)
    expect(running.map((f) => f.name)).toContain('p2pchat.db-wal')
    expectOnlyCiphertext(running, envelopes, secrets)
    await relay.stop()
    expectOnlyCiphertext(await filesOf(relay.dataDir), envelopes, secrets)
  })
})

describe('relay limits', () => {
  const ANN = 0
  const CAT = 1
  const DAN = 2
  const RATE = 12
  /**
   * Same length for every k below 100, so every envelope has the same size; long enough that two
   * envelopes outweigh the membership events "other" has beyond those of "capped" (see beforeAll).
   */
  const text = (k: number): string => `limited message #${String(k).padStart(2, '0')} ${'.'.repeat(64)}`
  let envelopeBytes: number
  /** Membership events count against the caps too: those of "capped" (a genesis) and "other" (+ an add). */
  let cappedEvents: number
  let otherEvents: number
  let maxGroupStorage: number
  let relay: TestRelay
  let net: ChatNodes

  beforeAll(async () => {
    const { group, event } = await Group.create({
      identity: await Identity.generate(),
      name: 'capped',
      memberName: 'ann',
    })
    envelopeBytes = (await group.seal(text(0))).bytes.length
    cappedEvents = event.bytes.length
    const other = await Group.create({
      identity: await Identity.generate(),
      name: 'other',
      memberName: 'cat',
    })
    // at most: cat may add dan before his join request (with his name) arrives, as "peer-" + 6 characters
    const addDan = await other.group.add((await Identity.generate()).memberId, 'peer-xxxxxx')
    otherEvents = other.event.bytes.length + addDan.bytes.length
    // room for 3 envelopes of "capped" and 2 of "other" (not 4 of "capped"); the relay for those 5 and a half
    maxGroupStorage = Math.max(cappedEvents + 3 * envelopeBytes, otherEvents + 2 * envelopeBytes)
    expect(maxGroupStorage).toBeLessThan(cappedEvents + 4 * envelopeBytes)
    // "other" has more events than "capped", so a third envelope is over its cap as well
    expect(maxGroupStorage).toBeLessThan(otherEvents + 3 * envelopeBytes)
    const maxStorage = cappedEvents + otherEvents + Math.floor(5.5 * envelopeBytes)
    relay = await createRelay({ maxGroupStorage, maxStorage, ratePerMinute: RATE })
    net = await createChatNodes(3, {
      names: ['ann', 'cat', 'dan'],
      bootstrap: () => relay.relay.addrs(),
      init: { denyPeer: (peerId) => peerId !== relay.relay.peerId, syncIntervalMs: 1000 },
    })
  }, 60_000)
  afterAll(async () => {
    await net?.teardown()
    await relay?.teardown()
  })

  async function rejection(group: string, from: string, reason: RegExp): Promise<string> {
    const matches = (r: { group: string; from: string; reason: string }): boolean =>
      r.group === group && r.from === from && reason.test(r.reason)
    await waitFor(() => relay.rejections.some(matches), {
      timeout: NETWORK_TIMEOUT,
      message: `the relay to reject input of ${from} in ${group} with ${reason}`,
    })
    return relay.rejections.find(matches)?.reason as string
  }

  it('refuses what is over a cap or the rate with a clear reason, and keeps serving other groups', async () => {
    const [ann, cat, dan] = [net.node(ANN), net.node(CAT), net.node(DAN)]
    const capped = (await ann.createGroup('capped')).id
    await waitForSubscribers(ann, capped, [relay.relay.peerId])
    for (let k = 0; k < 4; k++) await ann.send(capped, text(k))
    expect(await rejection(capped, ann.peerId, /^QuotaExceededError: /)).toMatch(
      /^QuotaExceededError: group \S+ is at its storage cap of \d+ bytes$/,
    )
    expect(relay.stored.get(capped)).toHaveLength(3)

    // a member's burst is not cut at the per-peer rate (what names a member as its sender is verified at
    // once): every one of its envelopes meets the storage cap instead (and again at each sync round, as
    // ann offers the relay what it lacks)
    for (let k = 4; k < 4 + RATE; k++) await ann.send(capped, text(k))
    const refusedOf = (from: string, reason: RegExp) =>
      relay.rejections.filter((r) => r.group === capped && r.from === from && reason.test(r.reason))
    await waitFor(() => refusedOf(ann.peerId, /^QuotaExceededError: /).length >= 1 + RATE, {
      timeout: NETWORK_TIMEOUT,
      message: "the relay to judge all of ann's burst",
    })
    expect(refusedOf(ann.peerId, /^RateLimitedError: /)).toEqual([])
    expect(relay.stored.get(capped)).toHaveLength(3)
    // what names no member as its sender counts against the rate of the peer that delivered it
    const stranger = (await junkGroup({ messages: 1 })).envelopes[0] as Uint8Array
    const cappedGroup = relay.relay.group(capped, false) as Group
    for (let k = 0; k <= RATE; k++) await relay.relay.acceptMessage(cappedGroup, stranger, 'peer-x')
    expect(refusedOf('peer-x', /^RateLimitedError: /).map((r) => r.reason)).toEqual([
      `RateLimitedError: peer peer-x sent more than ${RATE} events or envelopes of non-members in a minute`,
    ])

    // another group, other peers: the relay still stores and serves
    const other = (await cat.createGroup('other')).id
    await waitForSubscribers(cat, other, [relay.relay.peerId])
    await dan.joinGroup(cat.invite(other, { ask: true }))
    await cat.add(other, dan.peerId)
    await waitForMembers(dan, other, [cat.peerId, dan.peerId])
    await net.stop(DAN)
    for (const k of [50, 51]) await cat.send(other, text(k))
    await waitFor(() => relay.stored.get(other)?.length === 2, {
      timeout: NETWORK_TIMEOUT,
      message: 'the relay to store both messages of the other group',
    })
    await net.stop(CAT)
    await net.restart(DAN)
    await waitFor(() => net.record(DAN).messages(other).length >= 2, {
      timeout: NETWORK_TIMEOUT,
      message: 'dan to catch up on the other group from the relay',
    })
    expect(
      net
        .record(DAN)
        .messages(other)
        .map((m) => m.text),
    ).toEqual([text(50), text(51)])

    // 3 + 2 envelopes fill the relay; one more of the other group is over its total and over the group's
    // cap. A full relay makes room by evicting its idlest group of lowest standing (see
    // test/adversarial/relay.test.ts), but nothing goes past a group's own cap.
    const cat2 = await net.restart(CAT)
    await waitForSubscribers(cat2, other, [relay.relay.peerId])
    await cat2.send(other, text(52))
    expect(await rejection(other, cat2.peerId, /^QuotaExceededError: /)).toBe(
      `QuotaExceededError: group ${other} is at its storage cap of ${maxGroupStorage} bytes`,
    )
    const stats = relay.relay.stats()
    expect(stats.messages).toBe(5)
    const eventBytes = [capped, other]
      .flatMap((id) => relay.relay.group(id, false)?.events() ?? [])
      .reduce((sum, e) => sum + e.bytes.length, 0)
    expect(eventBytes).toBeGreaterThan(cappedEvents + otherEvents - 10)
    expect(stats.storedBytes).toBe(5 * envelopeBytes + eventBytes)
    expect(stats.rejected).toBeGreaterThanOrEqual(3)
  }, 60_000)
})

interface Secret {
  what: string
  bytes: Buffer
}

/** Every epoch's group key and message key that `identity` holds or derives in `group`. */
async function epochKeys(group: Group, identity: Identity): Promise<Secret[]> {
  const out: Secret[] = []
  for (const event of group.events()) {
    if (event.payload.type === 'rename') continue
    let groupKey: Uint8Array
    try {
      groupKey = groupKeyFor(event, identity, group)
    } catch {
      continue // neither sealed to it nor derivable by it
    }
    out.push({ what: `the group key of epoch ${event.id}`, bytes: Buffer.from(groupKey) })
    out.push({
      what: `the message key of epoch ${event.id}`,
      bytes: Buffer.from(hkdf(groupKey, 'p2pchat/v1/message-key')),
    })
  }
  return out
}

async function filesOf(dir: string): Promise<Array<{ name: string; bytes: Buffer }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return Promise.all(
    entries
      .filter((e) => e.isFile())
      .map(async (e) => ({
        name: join(e.parentPath, e.name).slice(dir.length + 1),
        bytes: await readFile(join(e.parentPath, e.name)),
      })),
  )
}

/** The relay's files hold every envelope (so the scan reads what it stores) and none of the secrets. */
function expectOnlyCiphertext(
  files: ReadonlyArray<{ name: string; bytes: Buffer }>,
  envelopes: readonly Uint8Array[],
  secrets: readonly Secret[],
): void {
  for (const [k, envelope] of envelopes.entries()) {
    expect(
      files.some((f) => f.bytes.includes(Buffer.from(envelope))),
      `envelope ${k} in the relay's files`,
    ).toBe(true)
  }
  for (const file of files) {
    for (const secret of secrets) {
      expect(file.bytes.includes(secret.bytes), `${secret.what} in the relay's ${file.name}`).toBe(false)
    }
  }
}

describe('peer exchange through the relay', () => {
  it('introduces members that only know the relay, so they connect to each other', async () => {
    const relay = await createRelay()
    const net = await createChatNodes(2, {
      names: ['alice', 'bob'],
      bootstrap: () => relay.relay.addrs(),
      init: { syncIntervalMs: 1000 },
    })
    try {
      const [alice, bob] = [net.node(ALICE), net.node(BOB)]
      const groupId = (await alice.createGroup('introduced')).id
      await waitForSubscribers(alice, groupId, [relay.relay.peerId])
      expect(bob.peers().map((p) => p.peerId)).not.toContain(alice.peerId)
      // an invite without addresses: bob can learn where alice is only from the relay
      const invite = decodeInvite(alice.invite(groupId, { ask: true }))
      await bob.joinGroup(encodeInvite(alice.identity, { ...invite, addrs: [] }))
      // the relay names the group's members only to members: bob, once alice has added him
      await waitFor(() => net.record(ALICE).joinRequests.some((r) => r.detail.peerId === bob.peerId), {
        timeout: NETWORK_TIMEOUT,
        message: "alice to see bob's join request through the relay",
      })
      expect(bob.peers().map((p) => p.peerId)).not.toContain(alice.peerId)
      await alice.add(groupId, bob.peerId)
      await waitFor(() => bob.peers().some((p) => p.peerId === alice.peerId), {
        timeout: NETWORK_TIMEOUT,
        message: 'bob to connect to alice after the relay named her in sync',
      })
    } finally {
      await net.teardown()
      await relay.teardown()
    }
  }, 60_000)
})
