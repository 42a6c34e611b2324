/**
 * An invite that admits on its own, through the real CLI: alice makes an invite and quits; carol starts
 * with it and bob, the one member online, admits her without anyone typing `/add`. A second joiner with
 * the same invite is refused: it was used. Loopback only, mDNS off.
 */
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type CliGroup, type CliProcess, createCliGroup, loopbackStartArgs } from '../fixtures/cli.js'

describe.sequential('p2pchat start --join: an invite that admits with its inviter offline', () => {
  let cli: CliGroup | undefined
  let root: string
  afterAll(() => cli?.teardown())

  /** Starts `name` in JSON mode with `extra` flags; resolves with the process and its ready notice. */
  async function startPeer(name: string, extra: string[]) {
    const proc = (cli as CliGroup).spawn({ args: loopbackStartArgs(name, join(root, name), extra) })
    const ready = await proc.waitForNotification('ready', () => true, {
      message: `${name} to start`,
      timeout: 15_000,
    })
    return { proc, ...(ready.params as { peerId: string; addrs: string[] }) }
  }

  const added = (proc: CliProcess, peerId: string, what: string) =>
    proc.waitForNotification(
      'membership',
      (p) => p.change?.action === 'add' && p.change.member.peerId === peerId,
      { message: what, timeout: 20_000 },
    )

  it('bob admits carol with the invite alice made before she quit; the invite admits nobody else', async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
    const aliceReady = await startPeer('alice', ['--create', 'team'])
    const alice = aliceReady.proc
    const aliceAddr = aliceReady.addrs[0] as string

    // bob joins by an invite alice approves by hand (--ask)
    const { invite: askInvite } = await alice.request<{ invite: string }>('invite', { ask: true })
    const bobReady = await startPeer('bob', ['--join', askInvite, '--bootstrap', aliceAddr])
    const bob = bobReady.proc
    await alice.waitForNotification('joinRequest', (p) => p.peerId === bobReady.peerId, {
      message: "alice to see bob's join request",
      timeout: 15_000,
    })
    await alice.request('add', { member: bobReady.peerId })
    await added(bob, bobReady.peerId, 'bob to see himself added')

    // alice makes the invite that admits on its own, and quits
    const { invite } = await alice.request<{ invite: string }>('invite')
    await alice.request('quit')
    expect(await alice.waitForExit({ message: 'alice to exit' })).toEqual({ code: 0, signal: null })

    const viaBob = ['--join', invite, '--bootstrap', bobReady.addrs[0] as string]
    const carolReady = await startPeer('carol', viaBob)
    const carol = carolReady.proc
    const admitted = await added(carol, carolReady.peerId, 'carol to be admitted with alice offline')
    expect(admitted.params.change.by.peerId).toBe(bobReady.peerId)
    await carol.request('send', { text: 'hi, alice let me in while she was away' })
    await bob.waitForNotification('message', (p) => p.text === 'hi, alice let me in while she was away', {
      message: 'bob to read carol',
      timeout: 15_000,
    })

    // the same invite, a second time: bob refuses it as used; dan stays outside
    const danReady = await startPeer('dan', viaBob)
    const refused = await bob.waitForNotification('inviteRefused', (p) => p.peerId === danReady.peerId, {
      message: "bob to refuse dan's reuse of the invite",
      timeout: 20_000,
    })
    expect(refused.params.reason).toBe('used')
    const { members } = await bob.request<{ members: Array<{ peerId: string }> }>('members')
    expect(members.map((m) => m.peerId).sort()).toEqual(
      [aliceReady.peerId, bobReady.peerId, carolReady.peerId].sort(),
    )
  }, 120_000)
})
