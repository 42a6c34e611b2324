/**
 * Two relays: peers that bootstrap to both, and may connect to nothing but relays, keep chatting while
 * either relay is down; a relay that comes back (same data directory, same address) carries the chat
 * again and first gets what it missed; and a member who was offline catches up from whichever relay is
 * up. Peers reconnect by themselves to a relay that came back.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatNode } from '../../src/node/chat-node.js'
import {
  type ChatNodes,
  createChatNodes,
  createRelay,
  NETWORK_TIMEOUT,
  type TestRelay,
  waitForMembers,
  waitForSubscribers,
} from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1

describe('two relays', () => {
  let r1: TestRelay
  let r2: TestRelay
  let net: ChatNodes
  let groupId: string
  /** Ids of what alice and bob said while R1 was down. */
  let saidWithoutR1: string[] = []
  /** Listen address of each relay, kept across its restarts as a deployed relay's address is. */
  const listenOf = new Map<TestRelay, string>()

  beforeAll(async () => {
    r1 = await createRelay()
    r2 = await createRelay()
    for (const relay of [r1, r2]) {
      const tcp = multiaddr(relay.relay.addrs()[0] as string)
        .getComponents()
        .filter((c) => c.name === 'ip4' || c.name === 'tcp')
      listenOf.set(relay, tcp.map((c) => `/${c.name}/${c.value}`).join(''))
    }
    const relayIds = new Set([r1.relay.peerId, r2.relay.peerId])
    net = await createChatNodes(2, {
      names: ['alice', 'bob'],
      // both relays, always at the same addresses
      bootstrap: () => [...r1.relay.addrs(), ...r2.relay.addrs()],
      init: {
        // relays only: alice and bob never connect to each other, so all they say goes through a relay
        denyPeer: (peerId) => !relayIds.has(peerId),
        syncIntervalMs: 500,
      },
    })
  }, 60_000)
  afterAll(async () => {
    await net?.teardown()
    await r1?.teardown()
    await r2?.teardown()
  })

  const node = (i: number): ChatNode => net.node(i)
  const name = (relay: TestRelay): string => (relay === r1 ? 'R1' : 'R2')

  function connectedTo(i: number, relay: TestRelay): boolean {
    return node(i)
      .peers()
      .some((p) => p.peerId === relay.relay.peerId)
  }

  async function waitUntilStored(relay: TestRelay, ids: readonly string[]): Promise<void> {
    await waitFor(() => ids.every((id) => relay.stored.get(groupId)?.includes(id)), {
      timeout: NETWORK_TIMEOUT,
      message: `${name(relay)} to store ${ids.length} messages`,
    })
  }

  /** Stop a relay and wait until the running peers notice it is gone. */
  async function stopRelay(relay: TestRelay): Promise<void> {
    await relay.stop()
    const running = [ALICE, BOB].filter((i) => net.running(i))
    await waitFor(() => running.every((i) => !connectedTo(i, relay)), {
      timeout: NETWORK_TIMEOUT,
      message: `the peers to notice ${name(relay)} stopped`,
    })
  }

  /** Start a relay again on its data directory and its old address. */
  async function restartRelay(relay: TestRelay): Promise<void> {
    const { peerId } = relay.relay
    await relay.restart({ listen: [listenOf.get(relay) as string] })
    expect(relay.relay.peerId).toBe(peerId)
  }

  /** Each of alice and bob says something; the other reads it. Returns the ids, alice's first. */
  async function chat(label: string): Promise<string[]> {
    const ids: string[] = []
    for (const [from, to] of [
      [ALICE, BOB],
      [BOB, ALICE],
    ] as const) {
      const text = `${node(from).name}: ${label}`
      const sent = await node(from).send(groupId, text)
      expect(await net.record(to).waitForText(groupId, text)).toMatchObject({
        id: sent.id,
        from: node(from).peerId,
      })
      ids.push(sent.id)
    }
    return ids
  }

  function expectOnlyRelayConnections(): void {
    const relays = [r1.relay.peerId, r2.relay.peerId]
    for (const i of [ALICE, BOB].filter((k) => net.running(k))) {
      for (const peer of net.record(i).connectedTo)
        expect(relays, `${node(i).name} connected to ${peer}`).toContain(peer)
    }
  }

  /** Start whichever relay is stopped, then restart alice and bob so they bootstrap to both afresh. */
  async function everythingUp(): Promise<void> {
    for (const relay of [r1, r2]) if (relay.relay.libp2p?.status !== 'started') await restartRelay(relay)
    for (const i of [ALICE, BOB]) await net.restart(i)
    for (const i of [ALICE, BOB])
      await waitForSubscribers(node(i), groupId, [r1.relay.peerId, r2.relay.peerId])
  }

  it('peers keep chatting through one relay while the other is down', async () => {
    const [alice, bob] = [node(ALICE), node(BOB)]
    groupId = (await alice.createGroup('two-relays')).id
    await waitForSubscribers(alice, groupId, [r1.relay.peerId, r2.relay.peerId])
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await waitFor(() => net.record(ALICE).joinRequests.some((r) => r.detail.peerId === bob.peerId), {
      timeout: NETWORK_TIMEOUT,
      message: "alice to see bob's join request through a relay",
    })
    await alice.add(groupId, bob.peerId)
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])

    const bothUp = await chat('both relays up')
    await waitUntilStored(r1, bothUp)
    await waitUntilStored(r2, bothUp)

    await stopRelay(r1)
    saidWithoutR1 = await chat('R1 is down')
    await waitUntilStored(r2, saidWithoutR1)
    expectOnlyRelayConnections()
  })

  it('a relay restarted on its data directory carries the chat again, and first gets what it missed', async () => {
    expect(saidWithoutR1).toHaveLength(2)
    await restartRelay(r1)
    // the peers start again, as they will not go back to R1 by themselves (see the test below)
    await everythingUp()
    // the first member to sync with R1 gives it what was said while it was down
    await waitUntilStored(r1, saidWithoutR1)
    await waitForSubscribers(r1.relay, groupId, [node(ALICE).peerId, node(BOB).peerId])

    await stopRelay(r2)
    const onlyR1 = await chat('R2 is down, R1 is back')
    await waitUntilStored(r1, onlyR1)
    expectOnlyRelayConnections()
  })

  // libp2p announces the bootstrap list once and drops a relay's keep-alive tag when its connection
  // closes; the node re-dials unconnected bootstrap peers on every anti-entropy round.
  it('peers reconnect by themselves to a relay that restarted at the same address', async () => {
    await restartRelay(r2)
    await waitFor(() => connectedTo(ALICE, r2) && connectedTo(BOB, r2), {
      timeout: NETWORK_TIMEOUT,
      message: 'alice and bob to reconnect to R2 after it restarted at the same address',
    })
    for (const i of [ALICE, BOB]) await waitForSubscribers(node(i), groupId, [r2.relay.peerId])
    await stopRelay(r1)
    const onlyR2 = await chat('R1 is down again, R2 is back')
    await waitUntilStored(r2, onlyR2)
  })

  it('a member who was offline catches up from whichever relay is up', async () => {
    await everythingUp()
    const texts = new Map<string, string>()
    const send = async (text: string): Promise<string> => {
      const { id } = await node(ALICE).send(groupId, text)
      texts.set(id, text)
      return id
    }
    const shownToBob = () =>
      net
        .record(BOB)
        .messages(groupId)
        .map((m) => ({ id: m.id, text: m.text }))

    // bob is away; alice writes while both relays are up, then while only R2 is
    await net.stop(BOB)
    const whileBoth = [await send('for bob, both relays up #1'), await send('for bob, both relays up #2')]
    await waitUntilStored(r1, whileBoth)
    await waitUntilStored(r2, whileBoth)
    await stopRelay(r1)
    const whileR2 = [await send('for bob, only R2 up #1'), await send('for bob, only R2 up #2')]
    await waitUntilStored(r2, whileR2)
    await net.stop(ALICE)

    // bob comes back, his bootstrap naming both relays, and only R2 answers
    await net.restart(BOB, { waitForPeers: [r2.relay.peerId] })
    const first = [...whileBoth, ...whileR2]
    await waitFor(() => shownToBob().length >= first.length, {
      timeout: NETWORK_TIMEOUT,
      message: `bob to catch up on ${first.length} messages from R2`,
    })
    expect(shownToBob()).toEqual(first.map((id) => ({ id, text: texts.get(id) })))
    await net.stop(BOB)

    // the other way round: R1 is back and R2 is down; alice writes once more and leaves
    await restartRelay(r1)
    await r2.stop()
    await net.restart(ALICE, { waitForPeers: [r1.relay.peerId] })
    await waitForSubscribers(node(ALICE), groupId, [r1.relay.peerId])
    const whileR1 = [await send('for bob, only R1 up')]
    await waitUntilStored(r1, whileR1)
    await net.stop(ALICE)

    await net.restart(BOB, { waitForPeers: [r1.relay.peerId] })
    await waitFor(() => shownToBob().length >= whileR1.length, {
      timeout: NETWORK_TIMEOUT,
      message: 'bob to catch up from R1',
    })
    // each once, and nothing he had already seen shown again
    expect(shownToBob()).toEqual(whileR1.map((id) => ({ id, text: texts.get(id) })))
    expectOnlyRelayConnections()
  })
})
