/**
 * Invites through the real CLI: `--join` refuses a tampered, old-format or trailing-junk invite with
 * one line and exit status 1, and a joiner whose invite lied about the group's founder is told so when
 * the group's log reaches it, i.e. once a member adds it.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { encodeInvite } from '../../src/node/invite.js'
import { type CliGroup, type CliProcess, createCliGroup, loopbackStartArgs, runCli } from '../fixtures/cli.js'

const STACK = /\n\s+at /

describe.sequential('p2pchat start --join: invites a user cannot trust', () => {
  let cli: CliGroup
  let root: string
  let alice: CliProcess
  let ready: { peerId: string; addrs: string[]; group: { id: string; name: string } }
  let invite: string

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
    alice = cli.spawn({ args: loopbackStartArgs('alice', join(root, 'alice'), ['--create', 'team']) })
    ready = (
      await alice.waitForNotification('ready', () => true, { message: 'alice to start', timeout: 15_000 })
    ).params
    invite = (await alice.request<{ invite: string }>('invite', { ask: true })).invite
  })
  afterAll(async () => {
    await cli?.teardown()
  })

  /** `p2pchat start --join <text>` for a fresh peer; it must fail with one line on stderr. */
  async function joinRefused(name: string, text: string): Promise<string> {
    const run = await runCli(loopbackStartArgs(name, join(root, name), ['--join', text]), 15_000)
    expect(run.stdout, run.stderr).toBe('')
    expect(run.stderr).not.toMatch(STACK)
    expect(run.stderr.split('\n'), run.stderr).toHaveLength(2) // one line and its newline
    expect(run.code, run.stderr).toBe(1)
    return run.stderr
  }

  it('refuses an invite whose group name was altered on the way, saying it was changed', async () => {
    const [prefix, body] = invite.split(':') as [string, string]
    const bytes = Buffer.from(body, 'base64url')
    const at = bytes.indexOf('team')
    expect(at).toBeGreaterThan(0)
    bytes.write('tean', at)
    const stderr = await joinRefused('tampered', `${prefix}:${bytes.toString('base64url')}`)
    expect(stderr).toMatch(
      /^p2pchat: the invite does not match its signature: it was changed after it was made/,
    )
  })

  it('refuses an invite with junk after it', async () => {
    const stderr = await joinRefused('junk', `${invite}!!`)
    expect(stderr).toMatch(/^p2pchat: the invite is damaged .*copy it again/)
  })

  it('says an invite of the old p2pchat1: format is out of date', async () => {
    const stderr = await joinRefused(
      'old',
      'p2pchat1:pGFhgXhRL2lwNC8xMjcuMC4wLjEvdGNwLzQ1NTUvcDJwLzEyRDNLb29X',
    )
    expect(stderr).toMatch(/^p2pchat: that invite \(p2pchat1:\) is from an older p2pchat .*new one/)
  })

  it('tells a joiner, as soon as the genesis arrives (once added), that an invite naming a look-alike founder is forged', async () => {
    // mallory signs an invite to alice's group that claims mallory, calling herself alice, founded it
    const mallory = await Identity.generate()
    const forged = encodeInvite(mallory, {
      groupId: ready.group.id,
      groupName: 'team',
      founder: { peerId: mallory.memberId, name: 'alice' },
      inviter: { peerId: mallory.memberId, name: 'mallory' },
      addrs: [],
    })
    const bob = cli.spawn({
      args: loopbackStartArgs('bob', join(root, 'bob'), [
        '--join',
        forged,
        '--bootstrap',
        ready.addrs[0] as string,
      ]),
    })
    const bobReady = await bob.waitForNotification('ready', () => true, {
      message: 'bob to start',
      timeout: 15_000,
    })
    // before the genesis, all bob has is the claim
    expect(bobReady.params.group).toMatchObject({
      id: ready.group.id,
      inviter: { peerId: mallory.memberId, name: 'mallory' },
    })
    // members send the log only to members: the genesis reaches bob once alice adds him
    await alice.waitForNotification('joinRequest', (p) => p.peerId === bobReady.params.peerId, {
      message: "alice to see bob's join request",
      timeout: 15_000,
    })
    await alice.request('add', { member: bobReady.params.peerId })
    const notice = await bob.waitForNotification('inviteForged', () => true, {
      message: "bob to be told the invite lied once alice's genesis arrives",
      timeout: 15_000,
    })
    expect(notice.params).toEqual({
      group: ready.group.id,
      inviter: { peerId: mallory.memberId, name: 'mallory' },
      claimed: { groupName: 'team', founder: { peerId: mallory.memberId, name: 'alice' } },
      actual: { groupName: 'team', founder: { peerId: ready.peerId, name: 'alice' } },
    })
    expect(await bob.request('status')).toMatchObject({
      group: { founder: { peerId: ready.peerId, name: 'alice' }, inviteForged: true },
    })
  })
})
