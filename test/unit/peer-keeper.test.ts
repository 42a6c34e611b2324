/**
 * Who a node stays connected to, and what it says about it (src/node/peer-keeper.ts, reachability.ts,
 * node-wiring.ts), against a fake libp2p node: members met during a run are kept (tagged KEEP_ALIVE and
 * re-dialled), forgotten relays are not, addresses mDNS finds for a member are remembered, and "no peer
 * reachable" / "back" are said once per change, never during start-up.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { KEEP_ALIVE, type PeerId } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ChatStore, type TransportNode } from '../../src/node/index.js'
import { wireNode } from '../../src/node/node-wiring.js'
import { PeerKeeper } from '../../src/node/peer-keeper.js'
import { Reachability, type ReachabilityNotice } from '../../src/node/reachability.js'

async function newPeer(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** A libp2p node as far as the keeper and the wiring use it, recording tags and dials. */
function fakeLibp2p() {
  const events = new EventTarget()
  const connected = new Set<PeerId>()
  const tags = new Map<string, Record<string, unknown>>()
  const dials: string[] = []
  const node = Object.assign(events, {
    services: { pubsub: new EventTarget() },
    getPeers: () => [...connected],
    peerStore: {
      merge: async (peer: PeerId, data: { tags?: Record<string, unknown> }) => {
        tags.set(peer.toString(), { ...tags.get(peer.toString()), ...data.tags })
      },
    },
    dial: async (target: PeerId | unknown[]) => {
      dials.push(Array.isArray(target) ? String(target[0]) : String(target))
      throw new Error('unreachable')
    },
  })
  const emit = (type: string, detail: unknown): void => {
    events.dispatchEvent(new CustomEvent(type, { detail }))
  }
  return {
    libp2p: node as unknown as TransportNode,
    tags,
    dials,
    connect(peer: PeerId) {
      connected.add(peer)
      emit('peer:connect', peer)
    },
    disconnect(peer: PeerId) {
      connected.delete(peer)
      emit('peer:disconnect', peer)
    },
    emit,
  }
}

const keptAlive = (tags: Map<string, Record<string, unknown>>, peer: PeerId): boolean =>
  tags.get(peer.toString())?.[KEEP_ALIVE] !== undefined

describe('PeerKeeper', () => {
  it('keeps a member met during the run: tagged KEEP_ALIVE on connect, re-dialled while gone', async () => {
    const fake = fakeLibp2p()
    const [member, stranger] = [await newPeer(), await newPeer()]
    const keeper = new PeerKeeper(
      { libp2p: fake.libp2p, logger: defaultLogger() },
      { bootstrap: [], wanted: (id) => id === member.toString() },
    )
    keeper.start()
    fake.connect(member)
    fake.connect(stranger)
    await Promise.resolve()
    expect(keptAlive(fake.tags, member)).toBe(true)
    expect(keptAlive(fake.tags, stranger)).toBe(false)
    fake.disconnect(member)
    fake.disconnect(stranger)
    keeper.redial()
    expect(fake.dials).toEqual([member.toString()])
    keeper.stop()
  })

  it("keeps an invite's inviter from the join on: dialled now, tagged, and dialled again while gone", async () => {
    const fake = fakeLibp2p()
    const inviter = await newPeer()
    const keeper = new PeerKeeper({ libp2p: fake.libp2p, logger: defaultLogger() }, { bootstrap: [] })
    keeper.start()
    const addr = `/ip4/127.0.0.1/tcp/4001/p2p/${inviter}`
    keeper.keepAddrs([addr, addr])
    await Promise.resolve()
    expect(keptAlive(fake.tags, inviter)).toBe(true)
    keeper.redial()
    expect(fake.dials).toEqual([addr, addr])
    expect(keeper.size).toBe(1)
    keeper.stop()
  })

  /** A started keeper of one bootstrap relay; `wanted` says whether the relay is also a member. */
  async function keepingRelay(wanted: boolean) {
    const fake = fakeLibp2p()
    const relay = await newPeer()
    const keeper = new PeerKeeper(
      { libp2p: fake.libp2p, logger: defaultLogger() },
      { bootstrap: [`/ip4/127.0.0.1/tcp/4001/p2p/${relay}`], wanted: () => wanted },
    )
    keeper.start()
    return { fake, relay, keeper }
  }

  it('stops keeping a forgotten relay: untagged, and not dialled again', async () => {
    const { fake, relay, keeper } = await keepingRelay(false)
    keeper.redial()
    expect(fake.dials).toEqual([`/ip4/127.0.0.1/tcp/4001/p2p/${relay}`])
    expect(keeper.forget(relay.toString())).toBe(true)
    await Promise.resolve()
    expect(keptAlive(fake.tags, relay)).toBe(false)
    keeper.redial()
    expect(fake.dials).toHaveLength(1)
    keeper.stop()
  })

  it('a forgotten relay that is also a member is still kept, by peer id, not at the forgotten address', async () => {
    const { fake, relay, keeper } = await keepingRelay(true)
    keeper.forget(relay.toString())
    keeper.redial()
    expect(fake.dials).toEqual([relay.toString()])
    keeper.stop()
  })
})

describe('wireNode', () => {
  function wire(fake: ReturnType<typeof fakeLibp2p>, store: ChatStore, wanted: (id: string) => boolean) {
    const events = Object.assign(new EventTarget(), { safeDispatchEvent: () => true })
    const wired = wireNode(fake.libp2p, {
      store,
      logger: defaultLogger(),
      log: defaultLogger().forComponent('test'),
      events,
      replica: {} as never,
      pendingBudget: {} as never,
      groups: () => [],
      bootstrap: [],
      remembered: () => [],
      wanted,
      ref: (peerId) => ({ peerId, name: '' }),
    })
    return { ...wired, events }
  }

  it('keeps a connected peer from the moment it becomes a member, not only from its next connection', async () => {
    const fake = fakeLibp2p()
    const store = ChatStore.open(':memory:')
    const bob = await newPeer()
    const members = new Set<string>()
    const { keeper, events } = wire(fake, store, (id) => members.has(id))
    keeper.start()
    fake.connect(bob)
    await Promise.resolve()
    expect(keptAlive(fake.tags, bob)).toBe(false)
    members.add(bob.toString())
    events.dispatchEvent(new CustomEvent('membership:change', { detail: {} }))
    await Promise.resolve()
    expect(keptAlive(fake.tags, bob)).toBe(true)
    keeper.stop()
    store.close()
  })

  it('remembers the addresses discovery (mDNS) finds for a member, not for a stranger', async () => {
    const fake = fakeLibp2p()
    const store = ChatStore.open(':memory:')
    const [member, stranger] = [await newPeer(), await newPeer()]
    const { keeper } = wire(fake, store, (id) => id === member.toString())
    for (const peer of [member, stranger]) {
      fake.emit('peer:discovery', { id: peer, multiaddrs: [multiaddr('/ip4/192.168.1.7/tcp/4001')] })
    }
    expect(store.peer(member.toString())?.addrs).toEqual([`/ip4/192.168.1.7/tcp/4001/p2p/${member}`])
    expect(store.peer(stranger.toString())).toBeUndefined()
    keeper.stop()
    store.close()
  })
})

describe('Reachability', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  function watch(peers: { n: number }, known = 2) {
    const notices: ReachabilityNotice[] = []
    const reach = new Reachability({
      peers: () => peers.n,
      retrying: () => known,
      onChange: (n) => notices.push(n),
      graceMs: 10_000,
    })
    /** `n` peers are connected now, the last of them `peerId`. */
    const connect = (n: number, peerId: string): void => {
      peers.n = n
      reach.connected(peerId)
    }
    /** The last peer went. */
    const dropAll = (): void => {
      peers.n = 0
      reach.disconnected()
    }
    return { reach, notices, connect, dropAll }
  }

  it('says nothing while starting when a peer connects within the grace period', () => {
    const peers = { n: 0 }
    const { reach, notices, connect } = watch(peers)
    reach.start()
    vi.advanceTimersByTime(9_000)
    connect(1, 'bob')
    vi.advanceTimersByTime(60_000)
    expect(notices).toEqual([])
  })

  it('says nothing at start when it knows no peer to dial (a group just founded); a later loss is said', () => {
    const peers = { n: 0 }
    const { reach, notices, connect, dropAll } = watch(peers, 0)
    reach.start()
    vi.advanceTimersByTime(60_000)
    expect(notices).toEqual([])
    connect(1, 'bob')
    dropAll()
    vi.advanceTimersByTime(10_000)
    expect(notices).toEqual([{ reachable: false, peerId: null, retrying: 0 }])
  })

  it('says once that no peer is reachable, and once that one is back', () => {
    const peers = { n: 0 }
    const { reach, notices, connect } = watch(peers)
    reach.start()
    vi.advanceTimersByTime(9_999)
    expect(notices).toEqual([])
    vi.advanceTimersByTime(1)
    vi.advanceTimersByTime(60_000)
    expect(notices).toEqual([{ reachable: false, peerId: null, retrying: 2 }])
    connect(1, 'bob')
    connect(2, 'carol')
    expect(notices.slice(1)).toEqual([{ reachable: true, peerId: 'bob', retrying: 2 }])
  })

  it('says nothing for a last connection that comes back within the grace period; then once when it does not', () => {
    const peers = { n: 1 }
    const { reach, notices, connect, dropAll } = watch(peers)
    reach.start()
    dropAll()
    vi.advanceTimersByTime(5_000)
    connect(1, 'relay')
    vi.advanceTimersByTime(60_000)
    expect(notices).toEqual([])
    dropAll()
    reach.disconnected()
    vi.advanceTimersByTime(60_000)
    expect(notices).toEqual([{ reachable: false, peerId: null, retrying: 2 }])
    reach.stop()
  })
})
