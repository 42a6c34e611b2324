/**
 * Connections that survive restarts, through the real CLI: carol joins alice's group through an invite
 * and a relay, quits, and starts again twice with neither `--join` nor `--bootstrap`. Each time she is
 * connected again and catches up on what alice said while she was away, from the addresses and relays
 * her data directory remembers. Loopback only, mDNS off.
 */
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type CliGroup, type CliProcess, createCliGroup, loopbackStartArgs } from '../fixtures/cli.js'
import { waitFor } from '../fixtures/wait-for.js'

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

  /** A relay on loopback, in a fresh temporary directory of the test's CLI group. */
  async function withRelay(): Promise<{ cli: CliGroup; root: string; relayReady: Ready }> {
    const group = cli ?? createCliGroup()
    cli = group
    const root = await group.tempDir()
    const relay = group.spawn({
      label: 'relay',
      args: ['relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(root, 'relay')],
    })
    return { cli: group, root, relayReady: await started(relay, 'the relay to start') }
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
    const { cli, root, relayReady } = await withRelay()
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

  it('a member met during the run is dialled again after a disconnect, with a line when none is reachable and when one is back', async () => {
    cli = cli ?? createCliGroup()
    const root = await cli.tempDir()
    const aliceArgs = (listen: string) => [
      'start',
      '--json',
      '--no-mdns',
      '--listen',
      listen,
      '--name',
      'alice',
      '--data-dir',
      join(root, 'alice'),
    ]
    let alice = cli.spawn({ args: [...aliceArgs('/ip4/127.0.0.1/tcp/0'), '--create', 'team'] })
    const aliceReady = await started(alice, 'alice to start')
    const { invite } = await alice.request<{ invite: string }>('invite', { ask: true })
    // bob meets alice only during the run, through the invite: nothing is remembered from before
    const bob = cli.spawn({ args: loopbackStartArgs('bob', join(root, 'bob'), ['--join', invite]) })
    const bobId = (await started(bob, 'bob to start')).peerId
    await alice.waitForNotification('joinRequest', (p) => p.peerId === bobId, {
      message: "alice to see bob's join request",
      timeout: 15_000,
    })
    // alice goes away; bob, connected to nobody else, says so once the grace period is over
    await quit(alice)
    const lost = await bob.waitForNotification('reachability', (p) => p.reachable === false, {
      message: 'bob to say no peer is reachable after alice quit',
      timeout: 20_000,
    })
    expect(lost.params).toEqual({ reachable: false, peer: null, retrying: 1 })
    // she comes back on the same address; she does not dial bob (he is no member), so bob must redial her
    alice = cli.spawn({ args: aliceArgs(aliceReady.addrs[0] as string) })
    await started(alice, 'alice to start again')
    const back = await bob.waitForNotification('reachability', (p) => p.reachable === true, {
      message: 'bob to dial alice again in the same run, and say a peer is reachable',
      timeout: 30_000,
    })
    expect(back.params).toEqual({
      reachable: true,
      // a joiner not added yet holds no log to name alice by: the invite's name for her, marked as a claim
      peer: { peerId: aliceReady.peerId, name: 'alice', unverified: true },
      retrying: 1,
    })
    // once per change: one line each way, none at start
    expect(bob.received('reachability')).toHaveLength(2)
    await quit(bob)
    await quit(alice)
  }, 90_000)

  it('remembered relays are listed and forgotten over JSON-RPC, and stay forgotten after a restart', async () => {
    const { cli, root, relayReady } = await withRelay()
    const relayAddr = relayReady.addrs[0] as string
    const erinDir = join(root, 'erin')
    let erin = cli.spawn({ args: loopbackStartArgs('erin', erinDir, ['--bootstrap', relayAddr]) })
    await started(erin, 'erin to start with --bootstrap')
    await quit(erin)
    erin = cli.spawn({ args: loopbackStartArgs('erin', erinDir) })
    await started(erin, 'erin to start again with no flags')
    expect(await erin.request('relays')).toEqual({ relays: [relayAddr] })
    const unknown = await erin.request('forgetRelay', { relay: 'nobody' })
    expect(unknown).toEqual({ forgotten: [], relays: [relayAddr] })
    expect(await erin.request('forgetRelay', { relay: relayReady.peerId })).toEqual({
      forgotten: [relayAddr],
      relays: [],
    })
    await quit(erin)
    erin = cli.spawn({ args: loopbackStartArgs('erin', erinDir, ['--bootstrap', relayAddr]) })
    await started(erin, 'erin to start once more, with the relay again')
    expect(await erin.request('relays')).toEqual({ relays: [relayAddr] })
    await quit(erin)
    // the flag forgets it before the start, so this run does not dial it
    erin = cli.spawn({
      args: loopbackStartArgs('erin', erinDir, ['--forget-relay', relayAddr, '--forget-relay', 'nobody']),
    })
    await started(erin, 'erin to start with --forget-relay')
    expect(await erin.request('relays')).toEqual({ relays: [] })
    // a name that matched no remembered relay is said once, on stderr (stdout carries JSON-RPC), not fatal
    const said = (): string[] => erin.stderr.split('\n').filter((line) => line.includes('--forget-relay'))
    await waitFor(() => said().length > 0, { message: 'erin to say that no remembered relay is "nobody"' })
    const unmatched = said()
    expect(unmatched).toEqual([
      'p2pchat: --forget-relay: no remembered relay is nobody; relays remembered: none',
    ])
    await quit(erin)
  }, 60_000)
})
