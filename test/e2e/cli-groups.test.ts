/**
 * Several groups in one running session, and leaving, being removed, forgetting and rejoining, through
 * the real CLI: bob runs the terminal UI in a pseudo-terminal (tmux), alice and carol speak JSON-RPC.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  type CliGroup,
  type CliProcess,
  createCliGroup,
  loopbackStartArgs,
  type RpcResponse,
} from '../fixtures/cli.js'
import { count, describeInTerminal, interactiveStartCommand, Terminal } from '../fixtures/terminal.js'

const TIME = '\\d\\d:\\d\\d'

describeInTerminal('one session in three groups', () => {
  let cli: CliGroup
  let root: string
  let alice: CliProcess
  let aliceAddr: string
  let bobId: string
  let team: { id: string; name: string }
  let club: { id: string; name: string }
  const invites: Record<string, string> = {}
  let term = new Terminal()

  /** bob's terminal UI, on his own data directory, dialling alice. */
  async function startBob(extra: string[]): Promise<void> {
    term = new Terminal()
    await term.start(
      join(root, `tmux-${Math.random()}.conf`),
      interactiveStartCommand('bob', join(root, 'bob'), ['--bootstrap', aliceAddr, ...extra]),
    )
  }

  function expectInvalidParams(response: RpcResponse): string {
    expect(response.error?.code, JSON.stringify(response)).toBe(-32602)
    expect(response.error?.data?.name).toBe('InvalidParams')
    return response.error?.message ?? ''
  }

  const last = (lines: string[]): string | undefined => lines.at(-1)

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
    alice = cli.spawn({ args: loopbackStartArgs('alice', join(root, 'alice'), ['--create', 'team']) })
    const ready = await alice.waitForNotification('ready', () => true, {
      message: 'alice to start',
      timeout: 15_000,
    })
    aliceAddr = ready.params.addrs[0]
    team = { id: ready.params.group.id, name: 'team' }
  })
  afterAll(async () => {
    await term.kill()
    await cli?.teardown()
  })

  it('alice creates a second group over JSON-RPC; a request naming no group is then refused, naming both', async () => {
    ;({ group: club } = await alice.request<{ group: { id: string; name: string } }>('create', {
      name: 'club',
    }))
    expect(club).toEqual({ id: expect.any(String), name: 'club' })
    const { groups } = await alice.request<{ groups: unknown[] }>('groups')
    expect(groups).toEqual([
      { ...team, member: true, removed: null },
      { ...club, member: true, removed: null },
    ])
    for (const method of ['send', 'invite', 'members', 'history', 'status']) {
      const message = expectInvalidParams(
        await alice.call(method, method === 'send' ? { text: 'to whom?' } : {}),
      )
      expect(message).toContain(`team (${team.id})`)
      expect(message).toContain(`club (${club.id})`)
    }
    expect(expectInvalidParams(await alice.call('invite', { group: 'nowhere' }))).toContain('club')
    for (const group of [team, club]) {
      ;({ invite: (invites[group.name] as string) } = await alice.request<{ invite: string }>('invite', {
        ask: true,
        group: group.name,
      }))
      expect((await alice.request<{ group: { id: string } }>('status', { group: group.id })).group.id).toBe(
        group.id,
      )
    }
  })

  it('bob, in his own group, joins team and club while running; the prompt shows the group on screen', async () => {
    await startBob(['--create', 'home'])
    bobId = await term.waitFor(
      (lines) => /^p2pchat: you are bob \((12D3KooW\w+)\)$/.exec(lines[0] ?? '')?.[1],
      'the greeting with bob’s peer id',
      15_000,
    )
    await term.waitFor((l) => last(l) === 'home>', 'the prompt of home', 15_000)
    for (const group of [team, club]) {
      await term.enter(`/join ${invites[group.name]}`)
      await term.waitFor(
        (l) =>
          l.includes(`Group ${group.name} (${group.id})`) &&
          l.includes(
            `You are not a member of ${group.name} yet: a member online admits you if your invite allows it, else must /add you. Until then you cannot read its messages.`,
          ) &&
          last(l) === `${group.name}>`,
        `bob to show ${group.name} after /join`,
        15_000,
      )
      await alice.waitForNotification('joinRequest', (p) => p.peerId === bobId && p.group === group.id, {
        message: `alice to see bob ask to join ${group.name}`,
        timeout: 15_000,
      })
      await alice.request('add', { group: group.id, member: bobId })
      await term.waitFor(
        (l) => l.includes('* alice added bob'),
        `bob to see alice add him to ${group.name}`,
        15_000,
      )
    }
  })

  it('a message in another group is a one-line notice with its name; /groups counts it; /switch shows it', async () => {
    // bob has club on screen
    await alice.request('send', { group: 'team', text: 'first in team' })
    await term.waitFor(
      (l) => l.includes('* [team] new message from alice (1 unread: /switch team)'),
      'the notice of a message in team',
    )
    await alice.request('send', { group: 'team', text: 'second in team' })
    await alice.request('send', { group: 'club', text: 'hello club' })
    let lines = await term.waitFor(
      (l) => l.some((x) => new RegExp(`^${TIME} alice: hello club$`).test(x)) && l,
      "alice's message in club, on screen",
    )
    expect(lines).toContain('* [team] new message from alice (2 unread: /switch team)')
    expect(lines.some((x) => x.endsWith('alice: first in team'))).toBe(false)

    await term.enter('/groups')
    lines = await term.waitFor((l) => count(l, /^Groups:$/) === 1 && l, '/groups')
    const at = lines.indexOf('Groups:')
    expect(lines.slice(at + 1, at + 4)).toEqual([
      expect.stringMatching(/^ {2}home \(…\w{4}\)$/),
      `  team (…${team.id.slice(-4)})  2 unread`,
      `> club (…${club.id.slice(-4)})`,
    ])

    await term.enter('/switch team')
    lines = await term.waitFor((l) => last(l) === 'team>' && l, 'the prompt of team after /switch')
    const header = lines.lastIndexOf(`Group team (${team.id})`)
    expect(header).toBeGreaterThan(at)
    const missed = lines.indexOf('2 messages while you were away:', header)
    expect(missed).toBeGreaterThan(header)
    expect(lines.slice(missed + 1, missed + 3)).toEqual([
      expect.stringMatching(new RegExp(`^${TIME} alice: first in team$`)),
      expect.stringMatching(new RegExp(`^${TIME} alice: second in team$`)),
    ])
    // what bob types now goes to team
    const mark = alice.mark()
    await term.enter('back in team')
    const received = await alice.waitForNotification('message', (p) => p.from === bobId, {
      message: "alice to receive bob's line",
      since: mark,
    })
    expect(received.params.group).toBe(team.id)
    await term.enter('/groups')
    lines = await term.waitFor((l) => count(l, /^Groups:$/) === 2 && l, '/groups again')
    expect(lines.slice(lines.lastIndexOf('Groups:') + 2)).toEqual([
      `> team (…${team.id.slice(-4)})`,
      `  club (…${club.id.slice(-4)})`,
      'team>',
    ])
  })

  it('carol joins, leaves and forgets a group over JSON-RPC while running', async () => {
    const carol = cli.spawn({
      args: loopbackStartArgs('carol', join(root, 'carol'), ['--bootstrap', aliceAddr]),
    })
    const ready = await carol.waitForNotification('ready', () => true, {
      message: 'carol to start',
      timeout: 15_000,
    })
    expect(ready.params.group).toBeNull()
    const joined = await carol.request<{ group: { id: string } }>('join', { invite: invites.club })
    expect(joined.group).toEqual(club)
    await alice.waitForNotification('joinRequest', (p) => p.peerId === ready.params.peerId, {
      message: 'alice to see carol ask to join club',
      timeout: 15_000,
    })
    await alice.request('add', { group: 'club', member: ready.params.peerId })
    await carol.waitForNotification('membership', (p) => p.change?.action === 'add', {
      message: 'carol to be added',
      timeout: 15_000,
    })
    // her only group: no need to name it
    expect(await carol.request('status')).toMatchObject({ member: true, removed: null })
    const stillIn = await carol.call('forget', { group: 'club' })
    expect(expectInvalidParams(stillIn)).toMatch(/member of club/)

    const mark = alice.mark()
    expect(await carol.request('leave')).toEqual({})
    const left = await alice.waitForNotification('membership', (p) => p.change?.action === 'remove', {
      message: 'alice to see carol leave club',
      since: mark,
    })
    expect(left.params.change.by.peerId).toBe(ready.params.peerId)
    expect(left.params.change.member.peerId).toBe(ready.params.peerId)
    expect(await carol.request('status')).toMatchObject({
      member: false,
      removed: {
        by: { peerId: ready.params.peerId, name: 'carol' },
        at: expect.any(Number),
        rejoining: false,
      },
    })
    expect(await carol.request('forget', { group: club.id })).toEqual({})
    expect(await carol.request('groups')).toEqual({ groups: [] })
    await carol.request('quit')
  })

  it('a removed member is told by whom and when, and announces no join request until /rejoin', async () => {
    const mark = alice.mark()
    await alice.request('remove', { group: 'team', member: bobId })
    await term.waitFor(
      (l) => l.some((x) => new RegExp(`^\\* you were removed from team by alice at ${TIME}$`).test(x)),
      'bob to be told alice removed him',
    )
    // a restart of bob: he stays out, and asks nothing
    await term.enter('/quit')
    await term.waitFor((l) => l.some((x) => x.startsWith('[p2pchat exited with status 0')), 'bob to quit')
    await term.kill()
    await startBob([])
    const lines = await term.waitFor((l) => last(l) === 'team>' && l, 'bob to start again in team', 15_000)
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^You were removed from team by alice at ${TIME}\\. /rejoin asks to be added again; /forget team deletes it from this device\\.$`,
        ),
      ),
    )
    expect(lines.join('\n')).not.toContain('not a member of team yet')
    // gossip between them works (bob shows alice's messages as ciphertext) and yet bob asked nothing. A
    // message alice sends before she has seen bob subscribe reaches nobody (and sync sends a former
    // member no envelopes), so she sends until one arrives, then one more
    const encrypted = (l: string[]): number => count(l, /^\[encrypted.*from alice/)
    const deadline = Date.now() + 30_000
    for (let k = 0; encrypted(await term.lines()) === 0; k++) {
      if (Date.now() > deadline) throw new Error('bob got none of alice’s messages as ciphertext')
      await alice.request('send', { group: 'team', text: `not for bob #${k}` })
      await term.waitFor((l) => encrypted(l) > 0, 'a message as ciphertext', 2000).catch(() => {})
    }
    const seen = encrypted(await term.lines())
    await alice.request('send', { group: 'team', text: 'still not for bob' })
    await term.waitFor((l) => encrypted(l) > seen, 'bob to get one more message as ciphertext')
    expect(alice.received('joinRequest', mark).filter((p) => p.peerId === bobId)).toEqual([])

    await term.enter('/rejoin')
    await term.waitFor((l) => l.includes('Asking the members of team to add you again.'), '/rejoin')
    await alice.waitForNotification('joinRequest', (p) => p.peerId === bobId && p.group === team.id, {
      message: 'alice to see bob ask to rejoin team',
      since: mark,
      timeout: 15_000,
    })
    await alice.request('add', { group: 'team', member: bobId })
    await term.waitFor((l) => l.includes('* alice added bob'), 'bob to be added again', 15_000)
  })

  it('/leave asks first; /forget deletes a group bob is no longer in, and refuses one he is in', async () => {
    await term.enter('/forget team')
    await term.waitFor(
      (l) => l.includes('! you are a member of team: leave it first, then forget it'),
      '/forget of a group bob is in to be refused',
    )
    const question =
      'Leave team? You will read nothing sent there after this; only a member can add you back. [y/N]'
    await term.enter('/leave')
    await term.waitFor((l) => last(l) === question, 'the question')
    await term.enter('n')
    await term.waitFor((l) => l.at(-2) === 'Still in the group.' && last(l) === 'team>', 'bob to stay')

    const mark = alice.mark()
    await term.enter('/leave')
    await term.waitFor((l) => last(l) === question, 'the question again')
    await term.enter('y')
    await term.waitFor(
      (l) => l.some((x) => new RegExp(`^\\* you left team at ${TIME}$`).test(x)),
      'bob to see that he left',
    )
    const left = await alice.waitForNotification(
      'membership',
      (p) => p.group === team.id && p.change?.action === 'remove',
      { message: 'alice to see bob leave team', since: mark },
    )
    expect(left.params.change).toMatchObject({ by: { peerId: bobId }, member: { peerId: bobId } })

    await term.enter('/forget team')
    await term.waitFor(
      (l) => l.includes('Forgot team: it and its history are deleted from this device. Now in club.'),
      '/forget team',
    )
    await term.waitFor((l) => last(l) === 'club>', 'the prompt of club')
    // the answer to this /groups, not the screen as it was before it (whose last lines look the same)
    const listed = count(await term.lines(), /^Groups:$/)
    await term.enter('/groups')
    const lines = await term.waitFor(
      (l) => last(l) === 'club>' && count(l, /^Groups:$/) > listed && l,
      '/groups',
    )
    const at = lines.lastIndexOf('Groups:')
    expect(lines.slice(at + 1, -1)).toEqual([
      expect.stringMatching(/^ {2}home \(…\w{4}\)$/),
      `> club (…${club.id.slice(-4)})`,
    ])

    // gone from the disk too: a restart does not bring it back
    await term.press('C-d')
    await term.waitFor((l) => l.some((x) => x.startsWith('[p2pchat exited with status 0')), 'bob to quit')
    await term.kill()
    await startBob(['--group', 'team']).catch(() => {})
    await term.waitFor(
      (l) => l.some((x) => x.startsWith('p2pchat: no group "team" here')),
      'bob to know no team any more',
      15_000,
    )
  })
})
