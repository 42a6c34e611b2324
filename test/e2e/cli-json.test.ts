/**
 * The real CLI in `--json` mode: three (and a few more) processes on 127.0.0.1 play a whole group
 * story over JSON-RPC 2.0, from creating the group to restarting from the data directory.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CliGroup,
  type CliProcess,
  createCliGroup,
  loopbackStartArgs,
  REPO_ROOT,
  type RpcResponse,
  runCli,
} from '../fixtures/cli.js'

interface Peer {
  peerId: string
  name: string
}

interface Ready {
  peerId: string
  name: string
  addrs: string[]
  group: {
    id: string
    name: string
    founder: Peer | null
    inviter: Peer | null
    inviteForged: boolean
  } | null
  member: boolean
}

const peerIdPattern = /^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/

describe.sequential('p2pchat start --json: a group story with real processes', () => {
  let cli: CliGroup
  let root: string
  const procs: CliProcess[] = []
  let alice: CliProcess
  let bob: CliProcess
  let carol: CliProcess
  let aliceReady: Ready
  let bobReady: Ready
  let carolReady: Ready
  let invite: string
  /** Ids of the messages alice's history must hold, oldest first. */
  const readable: Array<{ id: string; text: string }> = []
  /** Id of what alice said before anyone else was a member. */
  let membersOnly = ''

  /** Start a peer on 127.0.0.1, no mDNS, and wait for its `ready`. */
  async function start(
    name: string,
    extra: string[],
    dataDir = join(root, name),
  ): Promise<[CliProcess, Ready]> {
    const proc = cli.spawn({
      args: loopbackStartArgs(name, dataDir, extra),
    })
    procs.push(proc)
    const ready = await proc.waitForNotification('ready', () => true, {
      message: `${name} to print its ready notification`,
      timeout: 15_000,
    })
    return [proc, ready.params as Ready]
  }

  function expectError(response: RpcResponse, code: number, name: string): void {
    expect(response.result, `expected an error, got ${JSON.stringify(response)}`).toBeUndefined()
    expect(response.error?.code).toBe(code)
    expect(response.error?.data?.name).toBe(name)
    expect(typeof response.error?.message).toBe('string')
  }

  const byId = (list: Peer[]): Peer[] => [...list].sort((a, b) => a.peerId.localeCompare(b.peerId))
  const me = (ready: Ready): Peer => ({ peerId: ready.peerId, name: ready.name })

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
  })
  afterAll(async () => {
    await cli?.teardown()
  })

  it('alice creates a group and announces herself with a ready notification', async () => {
    ;[alice, aliceReady] = await start('alice', ['--create', 'team'])
    expect(aliceReady.peerId).toMatch(peerIdPattern)
    expect(aliceReady.name).toBe('alice')
    expect(aliceReady.member).toBe(true)
    // she founded it: nobody invited her
    expect(aliceReady.group).toEqual({
      id: expect.any(String),
      name: 'team',
      founder: me(aliceReady),
      inviter: null,
      inviteForged: false,
    })
    expect(aliceReady.addrs.length).toBeGreaterThan(0)
    for (const addr of aliceReady.addrs) {
      expect(addr).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/[1-9]\\d*/p2p/${aliceReady.peerId}$`))
    }
    const result = await alice.request<{ invite: string }>('invite', { ask: true })
    expect(result.invite).toMatch(/^p2pchat2:[A-Za-z0-9_-]+$/)
    invite = result.invite
  })

  it("ready is alice's first line, then the membership notification of her --create", async () => {
    const created = await alice.waitForNotification('membership', (p) => p.change?.action === 'create', {
      message: 'alice to be told that she created team',
    })
    expect(alice.stdoutLines[0]).toBeDefined()
    expect(JSON.parse(alice.stdoutLines[0] as string)).toMatchObject({ method: 'ready' })
    expect(alice.notifications.map((n) => n.method).slice(0, 2)).toEqual(['ready', 'membership'])
    expect(created.params).toEqual({
      group: aliceReady.group?.id,
      members: [me(aliceReady)],
      change: { action: 'create', by: me(aliceReady), member: me(aliceReady) },
    })
  })

  it('bob and carol join by invite as non-members, and alice sees their join requests', async () => {
    const bootstrap = aliceReady.addrs[0] as string
    ;[[bob, bobReady], [carol, carolReady]] = await Promise.all([
      start('bob', ['--join', invite, '--bootstrap', bootstrap]),
      start('carol', ['--join', invite, '--bootstrap', bootstrap]),
    ])
    for (const ready of [bobReady, carolReady]) {
      // the invite names alice as founder and inviter, by peer id as well as by name
      expect(ready.group).toEqual({ ...aliceReady.group, inviter: me(aliceReady) })
      expect(ready.member).toBe(false)
    }
    for (const ready of [bobReady, carolReady]) {
      const request = await alice.waitForNotification('joinRequest', (p) => p.peerId === ready.peerId, {
        message: `alice to see ${ready.name}'s join request`,
      })
      expect(request.params).toEqual({ group: aliceReady.group?.id, peerId: ready.peerId, name: ready.name })
    }
    // members send the group's log only to members: until one adds them, bob and carol know the group
    // from the invite alone, and are shown nothing of it
    for (const proc of [bob, carol]) {
      expect(proc.received('membership')).toEqual([])
      expect((await proc.request<{ member: boolean }>('status')).member).toBe(false)
    }
  })

  it('a message alice sends while she is the only member is for her alone', async () => {
    const sent = await alice.request<{ id: string; ts: number }>('send', { text: 'members only, bob' })
    expect(sent).toEqual({ id: expect.any(String), ts: expect.any(Number) })
    readable.push({ id: sent.id, text: 'members only, bob' })
    // bob and carol get it by gossip, but no log to tell it from junk: later tests check they never read it
    membersOnly = sent.id
  })

  it("a non-member's send, add and remove are denied", async () => {
    const attempts: Array<[string, Record<string, unknown>]> = [
      ['send', { text: 'let me in' }],
      ['add', { member: 'carol' }],
      ['add', { member: carolReady.peerId }],
      ['remove', { member: 'alice' }],
    ]
    for (const [method, params] of attempts) {
      const response = await bob.call(method, params)
      expectError(response, -32000, 'AccessDenied')
      expect(response.error?.message).toMatch(/^Access denied: you are not a member of team/)
    }
  })

  it("bob's name from his join request adds nobody; alice adds him by peer id, and every peer sees it", async () => {
    // anyone can ask to join as "bob": the name alone is refused, with who asked under it
    const claimed = await alice.call('add', { member: 'bob' })
    expectError(claimed, -32000, 'UnverifiedName')
    expect(claimed.error?.data?.candidates).toEqual([me(bobReady)])
    expect((await alice.request<{ members: Peer[] }>('members')).members).toEqual([me(aliceReady)])

    const marks = [alice, bob].map((p) => p.mark())
    const result = await alice.request<{ members: Peer[] }>('add', { member: bobReady.peerId })
    const members = byId([me(aliceReady), me(bobReady)])
    expect(byId(result.members)).toEqual(members)
    // carol, not a member, is told nothing of it
    await Promise.all(
      [alice, bob].map(async (proc, i) => {
        const notice = await proc.waitForNotification('membership', (p) => p.change?.action === 'add', {
          message: `${proc.label} to see alice add bob`,
          since: marks[i] as number,
        })
        expect(notice.params.group).toBe(aliceReady.group?.id)
        expect(notice.params.change).toEqual({ action: 'add', by: me(aliceReady), member: me(bobReady) })
        expect(byId(notice.params.members)).toEqual(members)
      }),
    )
    const status = await bob.request<{ member: boolean }>('status')
    expect(status.member).toBe(true)

    // adding him again is a mistake in the request (the node's InvalidArgumentError), not an unknown member;
    // his name now comes from the group's own signed add event, so it resolves
    for (const member of ['bob', bobReady.peerId]) {
      const again = await alice.call('add', { member })
      expectError(again, -32602, 'InvalidParams')
      expect(again.error?.message).toBe('bob is already a member')
    }
  })

  it('bob, now a member, reads new messages and sends his own, but not what came before; carol reads nothing', async () => {
    const welcome = await alice.request<{ id: string }>('send', { text: 'welcome, bob' })
    readable.push({ id: welcome.id, text: 'welcome, bob' })
    const received = await bob.waitForNotification('message', (p) => p.id === welcome.id, {
      message: "bob to read alice's welcome",
    })
    expect(received.params).toEqual({
      group: aliceReady.group?.id,
      id: welcome.id,
      from: aliceReady.peerId,
      name: 'alice',
      text: 'welcome, bob',
      ts: expect.any(Number),
    })
    // alice's earlier message reached him first, under an epoch before his: he never reads it
    expect(bob.received('message').map((p) => p.id)).not.toContain(membersOnly)
    expect(JSON.stringify(bob.notifications)).not.toContain('members only, bob')

    const reply = await bob.request<{ id: string }>('send', { text: 'thanks, alice' })
    readable.push({ id: reply.id, text: 'thanks, alice' })
    const atAlice = await alice.waitForNotification('message', (p) => p.id === reply.id, {
      message: "alice to read bob's reply",
    })
    expect(atAlice.params).toMatchObject({ from: bobReady.peerId, name: 'bob', text: 'thanks, alice' })

    // carol, not a member, was sent no log: she cannot tell the group's ciphertext from junk
    expect(carol.received('message')).toEqual([])
    expect(carol.received('membership')).toEqual([])
  })

  it('a name two join requesters claim lists both as candidates; unknown names are refused', async () => {
    // a second peer calling itself carol asks to join
    const [impostor, impostorReady] = await start(
      'carol',
      ['--join', invite, '--bootstrap', aliceReady.addrs[0] as string],
      join(root, 'carol-2'),
    )
    await alice.waitForNotification('joinRequest', (p) => p.peerId === impostorReady.peerId, {
      message: "alice to see the second carol's join request",
    })

    const claimed = await alice.call('add', { member: 'carol' })
    expectError(claimed, -32000, 'UnverifiedName')
    expect(byId((claimed.error?.data?.candidates ?? []) as Peer[])).toEqual(
      byId([me(carolReady), me(impostorReady)]),
    )
    expect(claimed.error?.message).toContain(carolReady.peerId)
    expect(claimed.error?.message).toContain(impostorReady.peerId)

    expectError(await alice.call('add', { member: 'nobody' }), -32000, 'UnknownMember')
    expectError(await alice.call('remove', { member: 'nobody' }), -32000, 'UnknownMember')

    await impostor.request('quit')
    expect(await impostor.waitForExit()).toEqual({ code: 0, signal: null })
  })

  it('alice adds carol by peer id, and carol reads from then on', async () => {
    const mark = carol.mark()
    const result = await alice.request<{ members: Peer[] }>('add', { member: carolReady.peerId })
    expect(byId(result.members)).toEqual(byId([me(aliceReady), me(bobReady), me(carolReady)]))
    // the log reaches her all at once now (members send it only to members): find her own add in it
    const added = (p: { change?: { action: string; member: Peer } }): boolean =>
      p.change?.action === 'add' && p.change.member.peerId === carolReady.peerId
    const notice = await carol.waitForNotification('membership', added, {
      message: 'carol to see herself added',
      since: mark,
    })
    expect(notice.params.change).toEqual({ action: 'add', by: me(aliceReady), member: me(carolReady) })

    const hello = await alice.request<{ id: string }>('send', { text: 'hi carol' })
    readable.push({ id: hello.id, text: 'hi carol' })
    for (const proc of [bob, carol]) {
      const message = await proc.waitForNotification('message', (p) => p.id === hello.id, {
        message: `${proc.label} to read "hi carol"`,
      })
      expect(message.params.text).toBe('hi carol')
    }
  })

  it('after alice removes bob, bob gets only ciphertext', async () => {
    const marks = [alice, bob, carol].map((p) => p.mark())
    const result = await alice.request<{ members: Peer[] }>('remove', { member: 'bob' })
    expect(byId(result.members)).toEqual(byId([me(aliceReady), me(carolReady)]))
    await Promise.all(
      [alice, bob, carol].map(async (proc, i) => {
        const notice = await proc.waitForNotification('membership', (p) => p.change?.action === 'remove', {
          message: `${proc.label} to see alice remove bob`,
          since: marks[i] as number,
        })
        expect(notice.params.change).toEqual({ action: 'remove', by: me(aliceReady), member: me(bobReady) })
      }),
    )

    const secret = await alice.request<{ id: string }>('send', { text: 'bob has left' })
    readable.push({ id: secret.id, text: 'bob has left' })
    await carol.waitForNotification('message', (p) => p.id === secret.id && p.text === 'bob has left', {
      message: 'carol to read the message sent after bob was removed',
    })
    await bob.waitForNotification('encrypted', (p) => p.id === secret.id, {
      message: 'bob to get the message sent after his removal as ciphertext',
    })
    expect(bob.received('message', marks[1]).filter((p) => p.id === secret.id)).toEqual([])
    expect(JSON.stringify(bob.notifications)).not.toContain('bob has left')

    const denied = await bob.call('send', { text: 'still here?' })
    expectError(denied, -32000, 'AccessDenied')
    expect(denied.error?.message).toMatch(/^Access denied: you are not a member of team/)
  })

  it('members, history and status have their documented shapes', async () => {
    const members = await alice.request<{ members: Peer[] }>('members')
    expect(Object.keys(members)).toEqual(['members'])
    expect(byId(members.members)).toEqual(byId([me(aliceReady), me(carolReady)]))

    const all = await alice.request<{ messages: Array<Record<string, unknown>> }>('history')
    expect(all.messages.map((m) => m.id)).toEqual(readable.map((m) => m.id))
    for (const message of all.messages) {
      expect(Object.keys(message).sort()).toEqual(['from', 'group', 'id', 'name', 'text', 'ts'])
      expect(message.group).toBe(aliceReady.group?.id)
      expect(typeof message.ts).toBe('number')
    }
    const last2 = await alice.request<{ messages: Array<{ id: string; text: string }> }>('history', {
      limit: 2,
    })
    expect(last2.messages.map((m) => m.text)).toEqual(readable.slice(-2).map((m) => m.text))

    const status = await alice.request<Record<string, unknown>>('status')
    expect(status).toEqual({
      peerId: aliceReady.peerId,
      name: 'alice',
      group: aliceReady.group,
      member: true,
      removed: null,
      addrs: aliceReady.addrs,
      peers: expect.any(Number),
    })
    expect(status.peers).toBeGreaterThanOrEqual(2)
    expect(await bob.request('status')).toMatchObject({ peerId: bobReady.peerId, member: false })
  })

  it('bad params and calls outside a group get JSON-RPC errors', async () => {
    const noText = await alice.call('send', {})
    expectError(noText, -32602, 'InvalidParams')
    expect(noText.error?.message).toContain('text')
    expectError(await alice.call('send', { text: 42 }), -32602, 'InvalidParams')
    expectError(await alice.call('add', {}), -32602, 'InvalidParams')
    expectError(await alice.call('history', { limit: 0 }), -32602, 'InvalidParams')
    const unknown = await alice.call('frobnicate')
    expect(unknown.error?.code).toBe(-32601)

    const [loner, lonerReady] = await start('dave', [])
    expect(lonerReady.group).toBeNull()
    expect(lonerReady.member).toBe(false)
    for (const [method, params] of [
      ['send', { text: 'anyone?' }],
      ['members', undefined],
      ['invite', undefined],
      ['history', undefined],
    ] as const) {
      expectError(await loner.call(method, params), -32000, 'NotInGroup')
    }
    loner.closeStdin()
    expect(await loner.waitForExit()).toEqual({ code: 0, signal: null })
  })

  it('quit, stdin EOF and SIGTERM each stop a peer with exit status 0', async () => {
    const quit = await bob.call('quit')
    expect(quit.result).toEqual({})
    carol.closeStdin()
    alice.kill('SIGTERM')
    const message = (how: string): { message: string; timeout: number } => ({ message: how, timeout: 10_000 })
    expect(await bob.waitForExit(message('bob to exit after quit'))).toEqual({ code: 0, signal: null })
    expect(await carol.waitForExit(message('carol to exit on stdin EOF'))).toEqual({ code: 0, signal: null })
    expect(await alice.waitForExit(message('alice to exit on SIGTERM'))).toEqual({ code: 0, signal: null })
  })

  it('alice restarted with the same --data-dir and no --create has her group, members and history', async () => {
    const [again, ready] = await start('alice', [])
    expect(ready).toMatchObject({ peerId: aliceReady.peerId, group: aliceReady.group, member: true })
    expect(ready.group?.founder).toEqual(me(aliceReady))
    const members = await again.request<{ members: Peer[] }>('members')
    expect(byId(members.members)).toEqual(byId([me(aliceReady), me(carolReady)]))
    const history = await again.request<{ messages: Array<{ id: string; text: string }> }>('history')
    expect(history.messages).toEqual(readable.map((m) => expect.objectContaining(m)))
    await again.request('quit')
    expect(await again.waitForExit()).toEqual({ code: 0, signal: null })
  })

  it('every process wrote only JSON-RPC lines to stdout', () => {
    // alice (twice), bob, carol, the second carol, dave
    expect(procs.length).toBe(6)
    for (const proc of procs) {
      expect(proc.invalidLines, `${proc.label} wrote non-JSON-RPC lines to stdout`).toEqual([])
      expect(proc.stdoutLines.length).toBeGreaterThan(0)
    }
  })
})

describe.concurrent('p2pchat command line', () => {
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
    .version

  it('a bad flag exits 2 with one error line and the usage on stderr, nothing on stdout', async ({
    expect,
  }) => {
    const run = await runCli(['start', '--name', 'alice', '--bogus'])
    expect(run.code).toBe(2)
    expect(run.stdout).toBe('')
    const [first, blank, ...usage] = run.stderr.split('\n')
    expect(first).toBe("p2pchat: unknown option '--bogus' for 'start'")
    expect(blank).toBe('')
    expect(usage[0]).toMatch(/^Usage: p2pchat start/)
    expect(usage.join('\n')).toContain('--join <invite>')
    expect(run.stderr).not.toMatch(/\n\s+at /) // no stack trace
  })

  it('--help prints the usage and exits 0', async ({ expect }) => {
    for (const args of [['--help'], ['start', '--help']]) {
      const run = await runCli(args)
      expect(run.code, `p2pchat ${args.join(' ')}`).toBe(0)
      expect(run.stderr).toBe('')
      expect(run.stdout).toMatch(/^(p2pchat - |Usage: p2pchat start)/)
      expect(run.stdout).toContain('Usage:')
    }
  })

  it('--version prints the package version and exits 0', async ({ expect }) => {
    const run = await runCli(['--version'])
    expect(run).toMatchObject({ code: 0, stderr: '', stdout: `p2pchat ${version}\n` })
  })
})
