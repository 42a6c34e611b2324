/**
 * The relay against peers that ask it about groups it should not keep: one group however its id is
 * spelled, a restart that survives unusable stored groups, groups kept only once their genesis arrived,
 * bounded and rate-limited group creation, membership events counted against the storage caps and the
 * rate limit, and start/stop that can be called concurrently.
 */
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import * as dagCbor from '@ipld/dag-cbor'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { Group, type SignedEvent } from '../../src/membership/index.js'
import { ChatStore } from '../../src/node/store.js'
import { topicOf } from '../../src/node/wire.js'
import { createRelayNode, type RelayNode } from '../../src/relay/index.js'
import {
  cleanupAfterEach,
  createChatNodes,
  createRelay,
  NETWORK_TIMEOUT,
  type TestRelay,
  tempDir,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

const cleanups = cleanupAfterEach()

async function relayWith(init: Parameters<typeof createRelay>[0] = {}): Promise<TestRelay> {
  const relay = await createRelay(init)
  cleanups.push(() => relay.teardown())
  return relay
}

/** A group id nobody founded: what anyone can put in a sync hello. */
async function randomGroupId(): Promise<string> {
  return CID.create(1, dagCbor.code, await sha256.digest(randomBytes(32))).toString()
}

/** A real group: its genesis and two adds, each by the founder. */
async function groupWithEvents(): Promise<{ id: string; events: SignedEvent[] }> {
  const { group, event } = await Group.create({
    identity: await Identity.generate(),
    name: 'team',
    memberName: 'ann',
  })
  const addBob = await group.add((await Identity.generate()).memberId, 'bob')
  const addCat = await group.add((await Identity.generate()).memberId, 'cat')
  return { id: group.id, events: [event, addBob, addCat] }
}

function topics(relay: RelayNode): string[] {
  return relay.libp2p?.services.pubsub.getTopics() ?? []
}

describe('relay groups', () => {
  it('holds one group however its id is spelled', async () => {
    const relay = await relayWith()
    const { id } = await groupWithEvents()
    const base58 = CID.parse(id).toString(base58btc)
    expect(base58).not.toBe(id)
    const first = relay.relay.group(base58, true, 'peer-a')
    expect(first?.id).toBe(id)
    expect(relay.relay.group(id, true, 'peer-b')).toBe(first)
    expect(relay.relay.group(base58, false)).toBe(first)
    expect(topics(relay.relay).filter((t) => t === topicOf(id))).toHaveLength(1)
    expect(relay.relay.group('not a group id', true, 'peer-a')).toBeUndefined()
  })

  it('starts again over unusable stored groups: not ids, other spellings, no genesis', async () => {
    const relay = await relayWith()
    const { id, events } = await groupWithEvents()
    const withoutGenesis = await randomGroupId()
    await relay.stop()
    const store = ChatStore.open(relay.dataDir)
    // Times are given, not read from the clock: the other spelling is stored a millisecond before the
    // canonical id, so it comes first when the relay lists its groups (by joined_at). Read from the clock,
    // that happened only when the millisecond ticked between the saves.
    const t0 = Date.now() - 60_000
    const rows = ['not a group id', CID.parse(id).toString(base58btc), id, withoutGenesis]
    for (const [k, stored] of rows.entries()) store.saveGroup({ id: stored }, t0 + k)
    for (const event of events) store.addEvent(id, event.id, event.bytes)
    store.close()

    const restarted = await relay.restart()
    expect(restarted.stats()).toMatchObject({ groups: 1, events: 3 })
    expect(restarted.group(id, false)?.events()).toHaveLength(3)
    expect(topics(restarted)).toContain(topicOf(id))
    expect(restarted.group(withoutGenesis, false)).toBeUndefined()
    await relay.stop()
    const after = ChatStore.open(relay.dataDir)
    expect(after.groups().map((g) => g.id)).toEqual([id])
    after.close()
    // and the group is still there after one more restart
    expect((await relay.restart()).group(id, false)?.events()).toHaveLength(3)
  })

  it('keeps a group across restarts only once its genesis arrived', async () => {
    const relay = await relayWith()
    const nobodys = await randomGroupId()
    const { id, events } = await groupWithEvents()
    expect(relay.relay.group(nobodys, true, 'peer-a')).toBeDefined()
    const group = relay.relay.group(id, true, 'peer-a') as Group
    expect(relay.relay.stats().groups).toBe(0)
    relay.relay.acceptEvent(group, (events[0] as SignedEvent).bytes, 'peer-a')
    expect(relay.relay.stats().groups).toBe(1)

    const restarted = await relay.restart()
    expect(restarted.group(id, false)?.events()).toHaveLength(1)
    expect(restarted.group(nobodys, false)).toBeUndefined()
  })

  it('limits the groups one peer makes it take up, to 10 a minute', async () => {
    const relay = await relayWith()
    for (let k = 0; k < 10; k++)
      expect(relay.relay.group(await randomGroupId(), true, 'peer-a')).toBeDefined()
    const eleventh = await randomGroupId()
    expect(relay.relay.group(eleventh, true, 'peer-a')).toBeUndefined()
    expect(relay.rejections.at(-1)).toEqual({
      group: eleventh,
      from: 'peer-a',
      reason: 'RateLimitedError: peer peer-a asked for more than 10 new groups in a minute',
    })
    // another peer is not held back
    expect(relay.relay.group(eleventh, true, 'peer-b')).toBeDefined()
  })

  it('holds at most 64 groups without a genesis, dropping the oldest', async () => {
    const relay = await relayWith()
    const ids: string[] = []
    for (let k = 0; k < 70; k++) {
      ids.push(await randomGroupId())
      expect(relay.relay.group(ids[k] as string, true, `peer-${k}`)).toBeDefined()
    }
    const held = ids.filter((id) => relay.relay.group(id, false) !== undefined)
    expect(held).toEqual(ids.slice(6))
    expect(topics(relay.relay).filter((t) => ids.some((id) => t === topicOf(id)))).toHaveLength(64)
  })

  it('still takes up a real group after a flood of hellos for made-up ones', async () => {
    const relay = await relayWith({ maxGroups: 3 })
    for (let k = 0; k < 10; k++) relay.relay.group(await randomGroupId(), true, `peer-${k}`)
    const net = await createChatNodes(1, { names: ['ann'], bootstrap: () => relay.relay.addrs() })
    cleanups.push(() => net.teardown())
    const { id } = await net.node(0).createGroup('real')
    await waitForSubscribers(net.node(0), id, [relay.relay.peerId])
    await waitFor(() => relay.relay.group(id, false)?.ready === true, {
      timeout: NETWORK_TIMEOUT,
      message: 'the relay to get the genesis of the real group',
    })
    expect(relay.relay.stats().groups).toBe(1)
  })
})

describe('relay limits on membership events', () => {
  it('counts stored events against the group storage cap', async () => {
    const { id, events } = await groupWithEvents()
    const [genesis, addBob] = events as [SignedEvent, SignedEvent]
    const relay = await relayWith({ maxGroupStorage: genesis.bytes.length + 100 })
    const group = relay.relay.group(id, true, 'peer-a') as Group
    relay.relay.acceptEvent(group, genesis.bytes, 'peer-a')
    relay.relay.acceptEvent(group, addBob.bytes, 'peer-a')
    expect(relay.rejections.map((r) => r.reason)).toEqual([
      `QuotaExceededError: group ${id} is at its storage cap of ${genesis.bytes.length + 100} bytes`,
    ])
    expect(relay.relay.stats()).toMatchObject({ events: 1, storedBytes: genesis.bytes.length })
    // and across a restart
    expect((await relay.restart()).stats()).toMatchObject({ events: 1, storedBytes: genesis.bytes.length })
  })

  it('counts events against the per-peer rate limit', async () => {
    const { id, events } = await groupWithEvents()
    const relay = await relayWith({ ratePerMinute: 2 })
    const group = relay.relay.group(id, true, 'peer-a') as Group
    for (const event of events) relay.relay.acceptEvent(group, event.bytes, 'peer-a')
    expect(relay.rejections.map((r) => r.reason)).toEqual([
      'RateLimitedError: peer peer-a sent more than 2 events or envelopes of non-members in a minute',
    ])
    expect(relay.relay.stats().events).toBe(2)
    // from another peer it is taken
    relay.relay.acceptEvent(group, (events[2] as SignedEvent).bytes, 'peer-b')
    expect(relay.relay.stats().events).toBe(3)
  })

  it("stores a member's message forwarded by a peer that used up its rate on junk", async () => {
    const founder = await Identity.generate()
    const { group: ann, event } = await Group.create({ identity: founder, name: 'team', memberName: 'ann' })
    const relay = await relayWith({ ratePerMinute: 2 })
    const group = relay.relay.group(ann.id, true, 'peer-a') as Group
    relay.relay.acceptEvent(group, event.bytes, 'peer-a')
    // the genesis and junk from a non-member use up peer-a's rate of 2
    const junk = await Group.create({ identity: await Identity.generate(), name: 'junk', memberName: 'j' })
    const stranger = (await junk.group.seal('junk')).bytes
    for (let k = 0; k < 2; k++) await relay.relay.acceptMessage(group, stranger, 'peer-a')
    expect(relay.rejections.filter((r) => r.reason.startsWith('RateLimitedError: '))).toHaveLength(1)
    // peer-a forwards ann's message before ann's own copy arrives: gossipsub would drop that one as a
    // duplicate, so the relay must take this one
    const message = await ann.seal('hello')
    await relay.relay.acceptMessage(group, message.bytes, 'peer-a')
    expect(relay.relay.stats().messages).toBe(1)
    expect(relay.rejections.filter((r) => r.reason.startsWith('RateLimitedError: '))).toHaveLength(1)
  })
})

describe('relay start and stop', () => {
  it('starts one libp2p node for concurrent start() calls, stops once, and cannot start again', async () => {
    const dataDir = await tempDir('relay-lifecycle')
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((resolve) => server.close(() => resolve()))

    const relay = await createRelayNode({ dataDir, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    cleanups.push(() => relay.stop())
    await Promise.all([relay.start(), relay.start()])
    expect(relay.addrs().some((a) => a.includes(`/tcp/${port}/`))).toBe(true)

    let firstSettled = false
    const first = relay.stop().then(() => {
      firstSettled = true
    })
    await relay.stop()
    expect(firstSettled).toBe(true)
    await first
    await expect(relay.start()).rejects.toThrow(expect.objectContaining({ name: 'NodeStoppedError' }))
    // the data directory is free again
    await (await createRelayNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'] })).stop()
  })
})
