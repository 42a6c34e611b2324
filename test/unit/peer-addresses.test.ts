/**
 * What a node remembers to find peers again after a restart (src/node/peer-addresses.ts): relays from
 * `--bootstrap`, addresses per peer, and the port of the last run.
 */
import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ChatStore } from '../../src/node/index.js'
import {
  dialableAddrs,
  forgetRelays,
  MAX_ADDRS_PER_PEER,
  redialAddrs,
  rememberAddrs,
  rememberedRelays,
  rememberListenPort,
  rememberRelays,
  stableListen,
} from '../../src/node/peer-addresses.js'

const ALICE = '12D3KooWGRUVh8Fm6vW1L6y4xT6s7m2p6cA1GmYbHqN5TmbbXzAa'
const RELAY = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'

describe('peer addresses', () => {
  const stores: ChatStore[] = []
  const servers: Server[] = []
  afterEach(async () => {
    for (const store of stores.splice(0)) store.close()
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))))
  })
  function open(): ChatStore {
    const store = ChatStore.open(':memory:')
    stores.push(store)
    return store
  }

  it('remembers --bootstrap relays across starts, adding new ones to the old', () => {
    const store = open()
    const first = `/ip4/127.0.0.1/tcp/4001/p2p/${RELAY}`
    expect(rememberRelays(store, [first])).toEqual([first])
    // a start with no --bootstrap keeps them
    expect(rememberRelays(store, [])).toEqual([first])
    const second = `/ip4/127.0.0.2/tcp/4001/p2p/${ALICE}`
    expect(rememberRelays(store, [second, first])).toEqual([first, second])
    expect(rememberedRelays(store)).toEqual([first, second])
  })

  it('forgets a remembered relay by multiaddr or peer id, and keeps the others', () => {
    const store = open()
    const first = `/ip4/127.0.0.1/tcp/4001/p2p/${RELAY}`
    const second = `/ip4/127.0.0.2/tcp/4001/p2p/${ALICE}`
    rememberRelays(store, [first, second])
    expect(forgetRelays(store, 'nobody')).toEqual([])
    expect(forgetRelays(store, RELAY)).toEqual([{ addr: first, peerId: RELAY }])
    expect(rememberedRelays(store)).toEqual([second])
    expect(forgetRelays(store, ` ${second} `)).toEqual([{ addr: second, peerId: ALICE }])
    // a later start without --bootstrap dials none of them
    expect(rememberRelays(store, [])).toEqual([])
    // --forget-relay: forgotten before the start's list is made
    rememberRelays(store, [first, second])
    expect(rememberRelays(store, [], [RELAY])).toEqual([second])
    expect(rememberedRelays(store)).toEqual([second])
  })

  it('keeps only dialable addresses of the peer itself, each ending in its peer id', () => {
    expect(
      dialableAddrs(ALICE, [
        '/ip4/127.0.0.1/tcp/4001',
        `/ip4/127.0.0.1/tcp/4002/p2p/${ALICE}`,
        `/ip4/127.0.0.1/tcp/4003/p2p/${RELAY}/p2p-circuit`,
        `/ip4/127.0.0.1/tcp/4004/p2p/${RELAY}`,
        '/ip4/0.0.0.0/tcp/4005',
        'not a multiaddr',
      ]),
    ).toEqual([
      `/ip4/127.0.0.1/tcp/4001/p2p/${ALICE}`,
      `/ip4/127.0.0.1/tcp/4002/p2p/${ALICE}`,
      `/ip4/127.0.0.1/tcp/4003/p2p/${RELAY}/p2p-circuit/p2p/${ALICE}`,
    ])
  })

  it('keeps the newest addresses per peer, at most MAX_ADDRS_PER_PEER, and re-dials only wanted peers', () => {
    const store = open()
    const addrs = Array.from({ length: MAX_ADDRS_PER_PEER + 2 }, (_, i) => `/ip4/127.0.0.1/tcp/${5000 + i}`)
    rememberAddrs(store, ALICE, addrs.slice(0, 5))
    rememberAddrs(store, ALICE, addrs.slice(5))
    const kept = store.peer(ALICE)?.addrs ?? []
    expect(kept).toHaveLength(MAX_ADDRS_PER_PEER)
    expect(kept[0]).toBe(`${addrs[5]}/p2p/${ALICE}`)
    rememberAddrs(store, RELAY, ['/ip4/127.0.0.1/tcp/6000'])
    expect(redialAddrs(store, (id) => id === ALICE)).toEqual(kept)
  })

  it('reuses the port of the last run when it is free, else a random one', async () => {
    const store = open()
    expect(await stableListen(store)).toEqual(['/ip4/0.0.0.0/tcp/0'])
    const busy = createServer()
    servers.push(busy)
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as { port: number }).port
    rememberListenPort(store, [`/ip4/127.0.0.1/tcp/${port}/p2p/${ALICE}`])
    expect(await stableListen(store)).toEqual(['/ip4/0.0.0.0/tcp/0'])
    await new Promise((resolve) => busy.close(resolve))
    servers.pop()
    expect(await stableListen(store)).toEqual([`/ip4/0.0.0.0/tcp/${port}`])
  })
})
