/**
 * An invite that admits on its own, through the real CLI: alice makes an invite and quits; carol starts
 * with it and bob, the one member online, admits her without anyone typing `/add`. A second joiner with
 * the same invite is refused: it was used. Loopback only, mDNS off.
 */
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type CliGroup, type CliProcess, createCliGroup, loopbackStartArgs } from '../fixtures/cli.js'

interface Ready {
  peerId: string
  addrs: string[]
}

describe.sequential('p2pchat start --join: an invite that admits with its inviter offline', () => {
  let cli: CliGroup | undefined
  afterAll(() => cli?.teardown())

  async function started(proc: CliProcess, what: string): Promise<Ready> {
    const ready = await proc.waitForNotification('ready', () => true, { message: what, timeout: 15_000 })
    return ready.params as Ready
  }

  const added = (proc: CliProcess, peerId: string, what: string) =>
    proc.waitForNotification(
      'membership',
      (p) => p.change?.action === 'add' && p.change.member.peerId === peerId,
      {
        message: what,
        timeout: 20_000,
      },
    )

  it('bob admits carol with the invite alice made before she quit; the invite admits nobody else', async () => {
    cli = createCliGroup()
    const root = await cli.tempDir()
    const alice = cli.spawn({ args: loopbackStartArgs('alice', join(root, 'alice'), ['--create', 'team']) })
    const aliceReady = await started(alice, 'alice to start')
    const aliceAddr = aliceReady.addrs[0] as string

    // bob joins by an invite alice approves by hand (--ask)
    const { invite: askInvite } = await alice.request<{ invite: string }>('invite', { ask: true })
    const bob = cli.spawn({
      args: loopbackStartArgs('bob', join(root, 'bob'), ['--join', askInvite, '--bootstrap', aliceAddr]),
    })
    const bobReady = await started(bob, 'bob to start')
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

    const carol = cli.spawn({
      args: loopbackStartArgs('carol', join(root, 'carol'), [
        '--join',
        invite,
        '--bootstrap',
        bobReady.addrs[0] as string,
      ]),
    })
    const carolReady = await started(carol, 'carol to start')
    const admitted = await added(carol, carolReady.peerId, 'carol to be admitted with alice offline')
    expect(admitted.params.change.by.peerId).toBe(bobReady.peerId)
    await carol.request('send', { text: 'hi, alice let me in while she was away' })
    await bob.waitForNotification('message', (p) => p.text === 'hi, alice let me in while she was away', {
      message: 'bob to read carol',
      timeout: 15_000,
    })

    // the same invite, a second time: bob refuses it as used; dan stays outside
    const dan = cli.spawn({
      args: loopbackStartArgs('dan', join(root, 'dan'), [
        '--join',
        invite,
        '--bootstrap',
        bobReady.addrs[0] as string,
      ]),
    })
    const danReady = await started(dan, 'dan to start')
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
