/**
 * Connections that survive restarts, through the real CLI: carol joins alice's group through an invite
 * and a relay, quits, and starts again twice with neither `--join` nor `--bootstrap`. Each time she is
 * connected again and catches up on what alice said while she was away, from the addresses and relays
 * her data directory remembers. Loopback only, mDNS off.
 */
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type CliGroup, type CliProcess, createCliGroup, loopbackStartArgs } from '../fixtures/cli.js'

interface Ready {
  peerId: string
  addrs: string[]
}

describe.sequential('p2pchat start: restarts need no flags', () => {
  let cli: CliGroup | undefined
  afterAll(() => cli?.teardown())

  async function started(proc: CliProcess, what: string): Promise<Ready> {
    const ready = await proc.waitForNotification('ready', () => true, { message: what, timeout: 15_000 })
    return ready.params as Ready
  }

  async function quit(proc: CliProcess): Promise<void> {
    await proc.request('quit')
    expect(await proc.waitForExit({ message: `${proc.label} to exit after quit` })).toEqual({
      code: 0,
      signal: null,
    })
  }

  it('a peer that joined across a relay reconnects and catches up after two restarts with no flags', async () => {
    cli = createCliGroup()
    const root = await cli.tempDir()
    const relay = cli.spawn({
      label: 'relay',
      args: ['relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(root, 'relay')],
    })
    const relayAddr = (await started(relay, 'the relay to start')).addrs[0] as string
    const alice = cli.spawn({
      args: loopbackStartArgs('alice', join(root, 'alice'), ['--create', 'team', '--bootstrap', relayAddr]),
    })
    await started(alice, 'alice to start')
    const { invite } = await alice.request<{ invite: string }>('invite', { ask: true })

    // carol's first run: the invite and the relay, as a new user is told to start
    const carolDir = join(root, 'carol')
    let carol = cli.spawn({
      args: loopbackStartArgs('carol', carolDir, ['--join', invite, '--bootstrap', relayAddr]),
    })
    const carolId = (await started(carol, 'carol to start with --join')).peerId
    await alice.waitForNotification('joinRequest', (p) => p.peerId === carolId, {
      message: "alice to see carol's join request",
      timeout: 15_000,
    })
    await alice.request('add', { member: carolId })
    await carol.waitForNotification(
      'membership',
      (p) => p.change?.action === 'add' && p.change.member.peerId === carolId,
      { message: 'carol to see herself added', timeout: 15_000 },
    )
    await quit(carol)

    for (const run of [2, 3]) {
      const text = `while carol was away #${run}`
      await alice.request('send', { text })
      // only --name and the data directory (and loopback, no mDNS, JSON, as every host test runs)
      carol = cli.spawn({ args: loopbackStartArgs('carol', carolDir) })
      await started(carol, `carol's run ${run} to start`)
      await carol.waitForNotification('message', (p) => p.text === text, {
        message: `carol's run ${run}, started with no --join or --bootstrap, to catch up on "${text}"`,
        timeout: 20_000,
      })
      const { peers } = await carol.request<{ peers: Array<{ peerId: string }> }>('peers')
      expect(peers.length, `carol's run ${run} is connected`).toBeGreaterThan(0)
      const reply = `carol is back (run ${run})`
      await carol.request('send', { text: reply })
      await alice.waitForNotification('message', (p) => p.text === reply, {
        message: `alice to hear carol's run ${run}`,
        timeout: 15_000,
      })
      await quit(carol)
    }
  }, 120_000)

  it('JSON connect dials a multiaddr, and says Unreachable when nothing answers', async () => {
    cli = cli ?? createCliGroup()
    const root = await cli.tempDir()
    const relay = cli.spawn({
      label: 'relay',
      args: ['relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(root, 'relay')],
    })
    const relayReady = await started(relay, 'the relay to start')
    const dave = cli.spawn({ args: loopbackStartArgs('dave', join(root, 'dave')) })
    await started(dave, 'dave to start')
    const { peer } = await dave.request<{ peer: { peerId: string } }>('connect', {
      addr: relayReady.addrs[0],
    })
    expect(peer.peerId).toBe(relayReady.peerId)
    const refused = await dave.call('connect', { addr: '/ip4/127.0.0.1/tcp/1' })
    expect(refused.error?.data?.name).toBe('Unreachable')
    expect(refused.error?.message).toMatch(/^could not connect to \/ip4\/127\.0\.0\.1\/tcp\/1: /)
    await quit(dave)
  }, 60_000)
})
