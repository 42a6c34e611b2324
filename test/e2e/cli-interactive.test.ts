/**
 * The interactive terminal mode, driven in a real pseudo-terminal: bob runs `p2pchat start` inside a
 * private tmux server (fixed size), alice runs in `--json` mode and sends messages in. tmux renders the
 * terminal, so what `capture-pane` returns is what a user would see.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  CLI_BIN,
  type CliGroup,
  type CliProcess,
  createCliGroup,
  loopbackStartArgs,
  NODE_BIN,
} from '../fixtures/cli.js'
import { count, describeInTerminal, EXIT_MARK, Terminal } from '../fixtures/terminal.js'

const PROMPT = 'team> '

describeInTerminal('interactive mode in a terminal', () => {
  let cli: CliGroup
  let root: string
  let alice: CliProcess
  let aliceId: string
  let bobId: string
  let invite: string
  let aliceAddr: string
  const term = new Terminal()

  /** Bob types `line` and presses Enter: the text of the message alice then receives from him. */
  const bobSends = async (line: string): Promise<string> => {
    const mark = alice.mark()
    await term.enter(line)
    const received = await alice.waitForNotification('message', (p) => p.from === bobId, {
      message: `alice to receive bob's message after he typed ${JSON.stringify(line)}`,
      since: mark,
    })
    return received.params.text
  }

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
    alice = cli.spawn({
      args: [
        'start',
        '--json',
        '--no-mdns',
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--name',
        'alice',
        '--create',
        'team',
        '--data-dir',
        join(root, 'alice'),
      ],
    })
    const ready = await alice.waitForNotification('ready', () => true, {
      message: 'alice to start',
      timeout: 15_000,
    })
    aliceId = ready.params.peerId
    aliceAddr = ready.params.addrs[0]
    ;({ invite } = await alice.request<{ invite: string }>('invite', { ask: true }))
    await term.start(join(root, 'tmux.conf'), [
      NODE_BIN,
      CLI_BIN,
      'start',
      '--name',
      'bob',
      '--join',
      invite,
      '--no-mdns',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--bootstrap',
      aliceAddr,
      '--data-dir',
      join(root, 'bob'),
    ])
  })
  afterAll(async () => {
    await term.kill()
    await cli?.teardown()
  })

  it('greets bob, says he is not a member yet, and shows the prompt', async () => {
    bobId = await term.waitFor(
      (lines) => /^p2pchat: you are bob \((12D3KooW\w+)\)$/.exec(lines[0] ?? '')?.[1],
      'the greeting with bob’s peer id',
      15_000,
    )
    const lines = await term.waitFor((l) => l.at(-1) === PROMPT.trimEnd() && l, 'the prompt', 15_000)
    expect(lines.join('\n')).toContain(
      'You are not a member of team yet: a member online admits you if your invite allows it, else must /add you.',
    )
    // alice by name and fingerprint, so a look-alike "alice" would show as someone else
    const alice = `alice (…${aliceId.slice(-4)})`
    expect(lines).toContain(`Founded by ${alice}; invited by ${alice}`)
    expect(lines).toContain('Type /help for commands.')
    // the cursor waits right after the prompt
    const screen = await term.screen()
    const cursor = await term.cursor()
    expect(screen[cursor.y]).toBe(PROMPT.trimEnd())
    expect(cursor.x).toBe(PROMPT.length)
  })

  it('/help lists the commands, and an unknown command gets one line pointing to /help', async () => {
    await term.enter('/help')
    let lines = await term.waitFor((l) => count(l, /^Commands:$/) === 1 && l, '/help to print the commands')
    const help = lines.indexOf('Commands:')
    expect(lines.slice(help + 1, help + 10).map((l) => l.trim().split(/\s+/)[0])).toEqual([
      '/help',
      '/members',
      '/peers',
      '/invite',
      '/invite',
      '/add',
      '/remove',
      '/history',
      '/quit',
    ])
    const groups = lines.indexOf('Groups:', help)
    expect(lines.slice(groups + 1, groups + 8).map((l) => l.trim().split(/\s+/)[0])).toEqual([
      '/groups',
      '/switch',
      '/create',
      '/join',
      '/leave',
      '/rejoin',
      '/forget',
    ])

    await term.enter('/frobnicate')
    const unknown = 'Unknown command /frobnicate: /help lists the commands (// sends a line starting with /).'
    lines = await term.waitFor(
      (l) => l.at(-2) === unknown && l.at(-1) === PROMPT.trimEnd() && l,
      'one line about the unknown command, then the prompt',
    )
    expect(lines.at(-3)).toBe(`${PROMPT}/frobnicate`)
    expect(count(lines, /^Commands:$/)).toBe(1)
  })

  it("a non-member's /add is denied", async () => {
    // members send the log only to members: bob knows the group from his invite, and is no member
    await alice.waitForNotification('joinRequest', (p) => p.peerId === bobId, {
      message: "alice to see bob's join request",
    })
    await term.enter('/add carol')
    await term.waitFor(
      (l) => l.some((line) => line.startsWith('! Access denied: you are not a member of team')),
      'the access denied message',
    )
    // a message bob cannot send yet is shown again under the reason, not lost with its typed line
    await term.enter('hello, anyone?')
    const lines = await term.waitFor(
      (l) => l.at(-1) === PROMPT.trimEnd() && l.at(-2) === '  hello, anyone?' && l,
      'the unsent message shown again under the reason',
    )
    expect(lines.at(-3)).toMatch(/^! Not sent: Access denied: you are not a member of team/)
  })

  it('an incoming message is printed above the prompt without garbling a partly typed line', async () => {
    await alice.request('add', { member: bobId })
    await term.waitFor((l) => l.includes('* alice added bob'), 'bob to see alice add him')

    await term.type('half a thou')
    await term.waitFor((l) => l.at(-1) === `${PROMPT}half a thou`, 'the partly typed line at the prompt')
    await alice.request('send', { text: 'hello from alice' })
    // the message line and the redrawn prompt are two writes: wait for both
    let lines = await term.waitFor(
      (l) =>
        l.some((line) => / alice: hello from alice$/.test(line)) && l.at(-1) === `${PROMPT}half a thou` && l,
      "alice's message to appear, and the prompt redrawn under it",
    )
    const at = lines.findIndex((line) => / alice: hello from alice$/.test(line))
    expect(lines[at]).toMatch(/^\d\d:\d\d alice: hello from alice$/)
    // the message took the prompt's place; the prompt and what bob had typed are redrawn below it
    expect(lines.slice(at + 1)).toEqual([`${PROMPT}half a thou`])
    const screen = await term.screen()
    const cursor = await term.cursor()
    expect(screen[cursor.y]).toBe(`${PROMPT}half a thou`)
    expect(cursor.x).toBe(`${PROMPT}half a thou`.length)

    // bob finishes the line: it is sent whole
    expect(await bobSends('ght')).toBe('half a thought')
    // the typed line gives way to its echo: the time, bob, the text, and the one peer it went to
    lines = await term.waitFor(
      (l) => l.some((line) => / bob: half a thought ✓1$/.test(line)) && l,
      "bob's own line echoed with its delivery",
    )
    expect(lines.filter((line) => line.includes('half a thought'))).toEqual([
      expect.stringMatching(/^\d\d:\d\d bob: half a thought ✓1$/),
    ])
  })

  it('/members lists the members with short ids', async () => {
    await term.enter('/members')
    const line = await term.waitFor(
      (l) => l.find((x) => x.startsWith('Members: ') && x.includes('bob')),
      '/members output',
    )
    expect(line).toContain(`alice (…${aliceId.slice(-4)})`)
    expect(line).toContain(`bob (…${bobId.slice(-4)})`)
  })

  it('/add of a name only a join request gave asks first, undisturbed by incoming lines; only y adds', async () => {
    // a stranger asks to join as "carol": nothing proves it is the carol bob means
    const stranger = cli.spawn({
      args: loopbackStartArgs('carol', join(root, 'carol'), ['--join', invite, '--bootstrap', aliceAddr]),
    })
    const strangerId = (
      await stranger.waitForNotification('ready', () => true, {
        message: 'the stranger to start',
        timeout: 15_000,
      })
    ).params.peerId as string
    await term.waitFor(
      (l) => l.includes(`* carol (…${strangerId.slice(-4)}) asks to join: /add ${strangerId}`),
      "bob to see the stranger's join request",
      15_000,
    )
    const question = `Add carol (…${strangerId.slice(-4)}, ${strangerId})? [y/N]`
    const members = async (): Promise<string[]> =>
      (await alice.request<{ members: Array<{ peerId: string }> }>('members')).members.map((m) => m.peerId)

    await term.enter('/add carol')
    await term.waitFor((l) => l.at(-1) === question, 'the question on the prompt line')
    // a message arriving while bob types his answer is printed above the question, which is redrawn
    await term.type('n')
    await term.waitFor((l) => l.at(-1) === `${question} n`, 'the partly typed answer')
    await alice.request('send', { text: 'while you decide' })
    // the message line and the redrawn question are two writes: wait for both
    const lines = await term.waitFor(
      (l) => l.some((line) => / alice: while you decide$/.test(line)) && l.at(-1) === `${question} n` && l,
      "alice's message to appear while the question is open, and the question redrawn under it",
    )
    expect(lines.slice(lines.findIndex((line) => / alice: while you decide$/.test(line)) + 1)).toEqual([
      `${question} n`,
    ])
    const cursor = await term.cursor()
    expect((await term.screen())[cursor.y]).toBe(`${question} n`)
    expect(cursor.x).toBe(`${question} n`.length)
    await term.press('Enter')
    await term.waitFor((l) => l.at(-2) === 'Not added.' && l.at(-1) === PROMPT.trimEnd(), 'bob to add nobody')
    expect(await members()).not.toContain(strangerId)

    // asked again, bob says yes: the peer he checked is added by its peer id
    await term.enter('/add carol')
    await term.waitFor((l) => l.at(-1) === question, 'the question again')
    await term.enter('y')
    await term.waitFor((l) => l.includes('* bob added carol'), 'bob to add carol')
    expect(await members()).toContain(strangerId)
  })

  it('Ctrl-C with text on the line clears the line, and bob stays', async () => {
    await term.waitFor((l) => l.at(-1) === PROMPT.trimEnd(), 'an empty prompt')
    await term.type('never mind')
    await term.waitFor((l) => l.at(-1) === `${PROMPT}never mind`, 'the typed line')
    await term.press('C-c')
    await term.waitFor((l) => l.at(-1) === PROMPT.trimEnd(), 'the line cleared by Ctrl-C')
    const cursor = await term.cursor()
    expect(cursor.x).toBe(PROMPT.length)
    // still running: a command typed now is answered
    await term.enter('/peers')
    await term.waitFor((l) => l.at(-2)?.startsWith('Connected: ') === true, '/peers after Ctrl-C')
    expect(count(await term.lines(), /^\[p2pchat exited/)).toBe(0)
  })

  it('a line ending in \\ continues the message, which is shown indented under the sender', async () => {
    const continuation = '....> '
    await term.enter('first line\\')
    await term.waitFor((l) => l.at(-1) === continuation.trimEnd(), 'the continuation prompt')
    expect(await bobSends('second line')).toBe('first line\nsecond line')
    let lines = await term.waitFor(
      (l) => l.some((line) => / bob: first line$/.test(line)) && l.at(-1) === PROMPT.trimEnd() && l,
      "bob's two-line message echoed, then his prompt",
    )
    // the two typed lines gave way to the echo
    expect(lines.slice(-3)).toEqual([
      expect.stringMatching(/^\d\d:\d\d bob: first line$/),
      // the peers gossip reached at that moment: alice (who got it) and carol once bob sees her subscribed
      expect.stringMatching(/^ {6}second line ✓[12]$/),
      PROMPT.trimEnd(),
    ])
    expect(count(lines, /first line\\$|^\.\.\.\.> /)).toBe(0)

    await alice.request('send', { text: 'one\ntwo' })
    lines = await term.waitFor(
      (l) => l.some((line) => / alice: one$/.test(line)) && l.at(-1) === PROMPT.trimEnd() && l,
      "alice's two-line message",
    )
    expect(lines.slice(-3)).toEqual([
      expect.stringMatching(/^\d\d:\d\d alice: one$/),
      '      two',
      PROMPT.trimEnd(),
    ])
  })

  it('Ctrl-D on an empty line exits cleanly with status 0', async () => {
    await term.waitFor((l) => l.at(-1) === PROMPT.trimEnd(), 'an empty prompt')
    await term.press('C-d')
    const exit = await term.waitFor(
      (l) => l.find((line) => line.startsWith(EXIT_MARK)),
      'bob to exit after Ctrl-D',
    )
    expect(exit).toBe(`${EXIT_MARK}0]`)
    const lines = await term.lines()
    expect(lines.join('\n')).not.toMatch(/error|\n\s+at /i)
  })
})

describeInTerminal('interactive mode, founding a group', () => {
  let cli: CliGroup
  let root: string
  const term = new Terminal()

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
    await term.start(join(root, 'tmux.conf'), [
      NODE_BIN,
      CLI_BIN,
      'start',
      '--name',
      'carol',
      '--create',
      'club',
      '--no-mdns',
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--data-dir',
      join(root, 'carol'),
    ])
  })
  afterAll(async () => {
    await term.kill()
    await cli?.teardown()
  })

  it('says "* carol created club" after the greeting, before the prompt', async () => {
    const lines = await term.waitFor((l) => l.at(-1) === 'club>' && l, 'the prompt', 15_000)
    const greeting = lines.findIndex((line) => line.startsWith('p2pchat: you are carol'))
    const created = lines.indexOf('* carol created club')
    expect(greeting, lines.join('\n')).toBe(0)
    expect(created, lines.join('\n')).toBeGreaterThan(greeting)
    expect(created).toBeLessThan(lines.indexOf('Type /help for commands.'))
    expect(count(lines, /created club/)).toBe(1)
  })

  it('echoes a message nobody got, wider than the terminal, in place of the typed line', async () => {
    const long = `anyone ${'there '.repeat(30)}?`
    await term.enter(long)
    const lines = await term.waitFor(
      (l) => l.at(-1) === 'club>' && l.some((line) => line.includes('not delivered yet')) && l,
      'the echo saying nobody got it yet',
    )
    // the echo replaced all the rows the typed line took; nothing of it is left above
    expect(lines.slice(lines.indexOf('Type /help for commands.') + 1)).toEqual([
      expect.stringMatching(
        /^\d\d:\d\d carol: anyone (there ){30}\? \(not delivered yet: it is sent when a member connects\)$/,
      ),
      'club>',
    ])

    await term.press('C-c')
    const exit = await term.waitFor(
      (l) => l.find((line) => line.startsWith(EXIT_MARK)),
      'carol to exit after Ctrl-C on an empty line',
    )
    expect(exit).toBe(`${EXIT_MARK}0]`)
  })
})
