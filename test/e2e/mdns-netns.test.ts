/**
 * The real CLI on real (virtual) networks: each peer in its own network namespace, wired to bridges the
 * test creates. First a LAN where peers find each other by mDNS alone; then two LANs joined only by a
 * relay host that does not forward IP, so alice and bob can chat only through the relay.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeInvite, encodeInvite } from '../../src/node/invite.js'
import { loadOrCreateIdentity } from '../../src/node/store.js'
import { type CliGroup, type CliProcess, createCliGroup } from '../fixtures/cli.js'
import { createNetnsLab, type Host, type NetnsLab, netnsUnavailableReason } from '../fixtures/netns.js'
import { waitFor } from '../fixtures/wait-for.js'

const run = promisify(execFile)

const unavailable = netnsUnavailableReason()
if (unavailable !== undefined) console.warn(`mdns-netns: skipped: ${unavailable}`)
const skipNote = unavailable === undefined ? '' : ` (skipped: ${unavailable})`

interface Ready {
  peerId: string
  addrs: string[]
  group: { id: string; name: string } | null
  member: boolean
}

describe.sequential('p2pchat on namespaced networks', () => {
  let cli: CliGroup
  let lab: NetnsLab
  let root: string

  beforeAll(async () => {
    if (unavailable !== undefined) return
    cli = createCliGroup()
    lab = createNetnsLab()
    root = await cli.tempDir()
  })
  afterAll(async () => {
    // processes first: a namespace with a process in it outlives its name
    try {
      await cli?.teardown()
    } finally {
      await lab?.teardown()
    }
  })

  /** Start a peer in `host`, with its data in `<root>/<host's namespace>`, and wait for its `ready`. */
  async function peer(host: Host, name: string, args: string[]): Promise<[CliProcess, Ready]> {
    const proc = cli.spawn({
      netns: host.netns,
      args: [
        'start',
        '--json',
        '--name',
        name,
        '--listen',
        '/ip4/0.0.0.0/tcp/0',
        '--data-dir',
        join(root, host.netns),
        ...args,
      ],
    })
    const ready = await proc.waitForNotification('ready', () => true, {
      message: `${name} to start in ${host.netns}`,
      timeout: 15_000,
    })
    return [proc, ready.params as Ready]
  }

  async function add(member: CliProcess, ready: Ready, by: CliProcess): Promise<void> {
    await by.waitForNotification('joinRequest', (p) => p.peerId === ready.peerId, {
      message: `${by.label} to see ${member.label}'s join request`,
      timeout: 15_000,
    })
    const mark = member.mark()
    // by peer id: the name in a join request is only a claim
    await by.request('add', { member: ready.peerId })
    await member.waitForNotification(
      'membership',
      (p) => p.change?.action === 'add' && p.change.member.peerId === ready.peerId,
      {
        message: `${member.label} to see itself added`,
        since: mark,
      },
    )
  }

  async function chat(from: CliProcess, text: string, to: CliProcess[]): Promise<void> {
    const { id } = await from.request<{ id: string }>('send', { text })
    for (const proc of to) {
      const received = await proc.waitForNotification('message', (p) => p.id === id, {
        message: `${proc.label} to read "${text}" from ${from.label}`,
      })
      expect(received.params.text).toBe(text)
    }
  }

  it.skipIf(unavailable !== undefined)(
    `peers on one LAN find each other by mDNS, with an invite that carries no address${skipNote}`,
    { timeout: 60_000 },
    async () => {
      const lan = await lab.addSegment()
      const [a, b, c] = [
        await lab.addHost('a', [lan]),
        await lab.addHost('b', [lan]),
        await lab.addHost('c', [lan]),
      ]

      const [alice, aliceReady] = await peer(a, 'alice', ['--create', 'team'])
      expect(aliceReady.addrs.some((addr) => addr.startsWith(`/ip4/${a.addrOn(lan)}/tcp/`))).toBe(true)
      const { invite } = await alice.request<{ invite: string }>('invite', { ask: true })
      expect(decodeInvite(invite).addrs.length).toBeGreaterThan(0)
      // without addresses, the only way to reach anyone is mDNS; alice's key (in her data directory)
      // signs the bare invite
      const aliceKey = await loadOrCreateIdentity(join(root, a.netns))
      const bare = encodeInvite(aliceKey, { ...decodeInvite(invite), addrs: [] })

      const [[bob, bobReady], [carol, carolReady]] = await Promise.all([
        peer(b, 'bob', ['--join', bare]),
        peer(c, 'carol', ['--join', bare]),
      ])
      await add(bob, bobReady, alice)
      await add(carol, carolReady, alice)

      // carol was never told bob's address, nor bob carol's: mDNS connected them
      for (const proc of [bob, carol]) {
        await waitFor(async () => (await proc.request<{ peers: number }>('status')).peers === 2, {
          message: `${proc.label} to be connected to both other peers`,
          timeout: 15_000,
          interval: 100,
        })
      }
      await chat(bob, 'hello from bob, found by mDNS', [alice, carol])
      await chat(carol, 'and carol', [alice, bob])
    },
  )

  it.skipIf(unavailable !== undefined)(
    `peers on two LANs that only a relay joins chat through the relay${skipNote}`,
    { timeout: 60_000 },
    async () => {
      const [lanA, lanB] = [await lab.addSegment(), await lab.addSegment()]
      const relayHost = await lab.addHost('relay', [lanA, lanB])
      const a = await lab.addHost('ra', [lanA])
      const b = await lab.addHost('rb', [lanB])
      // no route from one LAN to the other
      await expect(run('ip', ['-n', b.netns, 'route', 'get', a.addrOn(lanA)])).rejects.toThrow(/unreachable/i)

      const relay = cli.spawn({
        netns: relayHost.netns,
        label: 'relay',
        args: [
          'relay',
          '--json',
          '--listen',
          '/ip4/0.0.0.0/tcp/0',
          '--data-dir',
          join(root, relayHost.netns),
        ],
      })
      const relayReady = await relay.waitForNotification('ready', () => true, {
        message: 'the relay to start',
        timeout: 15_000,
      })
      const relayAddrs = relayReady.params.addrs as string[]
      const on = (host: Host, lan: typeof lanA): string => {
        const addr = relayAddrs.find((x) => x.startsWith(`/ip4/${host.addrOn(lan)}/tcp/`))
        if (addr === undefined)
          throw new Error(`the relay has no address on ${lan.prefix}.0/24: ${relayAddrs.join(', ')}`)
        return addr
      }

      const [alice] = await peer(a, 'alice', [
        '--create',
        'team',
        '--no-mdns',
        '--bootstrap',
        on(relayHost, lanA),
      ])
      // wait for alice's reservation on the relay, so her invite carries a relayed address
      await waitFor(
        async () =>
          (await alice.request<{ addrs: string[] }>('status')).addrs.some((x) => x.includes('/p2p-circuit')),
        { message: 'alice to hold a reservation on the relay', timeout: 15_000, interval: 100 },
      )
      const { invite } = await alice.request<{ invite: string }>('invite', { ask: true })
      const [bob, bobReady] = await peer(b, 'bob', [
        '--join',
        invite,
        '--no-mdns',
        '--bootstrap',
        on(relayHost, lanB),
      ])

      await add(bob, bobReady, alice)
      await chat(alice, 'hello bob, via the relay', [bob])
      await chat(bob, 'hello alice, same way back', [alice])
      expect(JSON.stringify(relay.notifications)).not.toContain('via the relay')

      // the relay (and the peers) stop on SIGTERM, even with stdin still open
      for (const proc of [bob, alice, relay]) proc.kill('SIGTERM')
      for (const proc of [bob, alice, relay]) {
        expect(await proc.waitForExit({ message: `${proc.label} to exit on SIGTERM` })).toEqual({
          code: 0,
          signal: null,
        })
      }
    },
  )
})
