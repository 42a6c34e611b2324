/**
 * The prompt under stress, in a real pseudo-terminal (tmux): a typed line wider than the terminal, with
 * double-width characters, survives a resize and a message arriving under it; a pasted block of three
 * lines is one message. Bob types in tmux; alice runs `--json` and sends and receives.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type CliGroup, type CliProcess, createCliGroup, loopbackStartArgs } from '../fixtures/cli.js'
import { count, describeInTerminal, interactiveStartCommand, Terminal } from '../fixtures/terminal.js'

const PROMPT = 'team> '

describeInTerminal('the prompt in a terminal', () => {
  let cli: CliGroup
  let root: string
  let alice: CliProcess
  let aliceId: string
  let bobId: string
  const term = new Terminal()

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
    alice = cli.spawn({ args: loopbackStartArgs('alice', join(root, 'alice'), ['--create', 'team']) })
    const ready = await alice.waitForNotification('ready', () => true, {
      message: 'alice to start',
      timeout: 15_000,
    })
    aliceId = ready.params.peerId
    const { invite } = await alice.request<{ invite: string }>('invite', { ask: true })
    await term.start(
      join(root, 'tmux.conf'),
      interactiveStartCommand('bob', join(root, 'bob'), [
        '--join',
        invite,
        '--bootstrap',
        ready.params.addrs[0],
      ]),
    )
    bobId = await term.waitFor(
      (lines) => /^p2pchat: you are bob \((12D3KooW\w+)\)$/.exec(lines[0] ?? '')?.[1],
      'the greeting with bob’s peer id',
      15_000,
    )
    await alice.waitForNotification('joinRequest', (p) => p.peerId === bobId, {
      message: "alice to see bob's join request",
      timeout: 15_000,
    })
    await alice.request('add', { member: bobId })
    await term.waitFor((l) => l.includes('* alice added bob') && l.at(-1) === 'team>', 'bob to be added')
  }, 60_000)
  afterAll(async () => {
    await term.kill()
    await cli?.teardown()
  })

  it('a typed line wider than the terminal, with double-width characters, survives a resize and a message', async () => {
    // 6 + 6 + 40×2 + 8 + 72 = 172 columns: two rows at 120 columns, three at 70
    const typed = `START ${'漢字'.repeat(20)} middle ${'x'.repeat(69)}END`
    await term.type(typed.slice(0, -3))
    await term.waitFor((l) => l.at(-1) === `${PROMPT}${typed.slice(0, -3)}` && l, 'the long typed line')
    await term.tmux('resize-window', '-t', term.target, '-x', '70', '-y', '40')
    expect((await term.tmux('display-message', '-p', '-t', term.target, '#{window_width}')).trim()).toBe('70')
    // typed after the resize: shown once bob's side has taken the resize in
    await term.type('END')
    await term.waitFor(
      (l) => l.at(-1) === `${PROMPT}${typed}` && l,
      'the end of the line typed after the resize',
    )
    await alice.request('send', { text: 'after the resize' })
    const lines = await term.waitFor(
      (l) =>
        l.some((line) => / alice: after the resize$/.test(line)) && l.at(-1) === `${PROMPT}${typed}` && l,
      "alice's message above the prompt, redrawn with the whole typed line",
    )
    // nothing of the typed line is left anywhere but on the prompt line under the message
    const at = lines.findIndex((line) => / alice: after the resize$/.test(line))
    expect(lines.slice(at)).toEqual([
      expect.stringMatching(/^\d\d:\d\d alice: after the resize$/),
      `${PROMPT}${typed}`,
    ])
    expect(count(lines, /START|漢字|xxxxx|END/), lines.join('\n')).toBe(1)
    const cursor = await term.cursor()
    // at 70 columns the line ends on its third row, where the cursor waits
    expect(cursor.x).toBe(172 - 2 * 70)

    // the line is sent whole, and its echo takes the place of all the rows it took
    const mark = alice.mark()
    await term.press('Enter')
    const received = await alice.waitForNotification('message', (p) => p.from === bobId, {
      message: "alice to receive bob's long line",
      since: mark,
    })
    expect(received.params.text).toBe(typed)
    const after = await term.waitFor(
      (l) => l.some((line) => line.includes('bob: START')) && l.at(-1) === 'team>' && l,
      "bob's echo, then the prompt",
    )
    expect(after.slice(at + 1)).toEqual([expect.stringMatching(/^\d\d:\d\d bob: START .* ✓1$/), 'team>'])
  })

  it('a pasted block of three lines is one message', async () => {
    await term.tmux('set-buffer', '-b', 'block', 'line one\nline two\nline three\n')
    // -p: wrapped in the bracketed-paste sequences, as a terminal does when the program asked for them
    await term.tmux('paste-buffer', '-p', '-b', 'block', '-t', term.target)
    const pasted = await term.waitFor(
      (l) => l.at(-1) === '....> line three' && l,
      'the pasted block at the prompt, its last line still open to edit',
    )
    expect(pasted.slice(-3)).toEqual(['team> line one', '....> line two', '....> line three'])
    const mark = alice.mark()
    await term.press('Enter')
    const received = await alice.waitForNotification('message', (p) => p.from === bobId, {
      message: "alice to receive bob's pasted block",
      since: mark,
    })
    expect(received.params.text).toBe('line one\nline two\nline three')
    const lines = await term.waitFor(
      (l) => l.some((line) => / bob: line one$/.test(line)) && l.at(-1) === 'team>' && l,
      "bob's echo of the block",
    )
    expect(lines.slice(-4)).toEqual([
      expect.stringMatching(/^\d\d:\d\d bob: line one$/),
      '      line two',
      expect.stringMatching(/^ {6}line three ✓1$/),
      'team>',
    ])
    // alice got it once, not as three messages
    const fromBob = alice.received('message', mark).filter((p) => p.from === bobId)
    expect(fromBob.map((p) => p.text)).toEqual(['line one\nline two\nline three'])
  })

  it('/relays and /forget-relay; a line when no peer is reachable any more', async () => {
    // bob started with --bootstrap at alice's address: it is remembered as a relay to dial
    await term.enter('/relays')
    const lines = await term.waitFor(
      (l) => l.at(-2)?.includes(`/p2p/${aliceId}`) === true && l.at(-3) === 'Relays remembered:' && l,
      'the remembered relays',
    )
    const addr = (lines.at(-2) ?? '').trim()
    await term.enter('/forget-relay nobody')
    await term.waitFor(
      (l) => l.at(-3) === 'No remembered relay is nobody. Relays remembered:' && l,
      'one line saying no relay matched, and the list',
    )
    await term.enter(`/forget-relay ${aliceId}`)
    await term.waitFor((l) => l.at(-2) === `Forgot ${addr}: not dialled any more.`, 'the relay forgotten')
    await term.enter('/relays')
    await term.waitFor((l) => l.at(-2) === 'No relays remembered.', 'no relay left')

    // alice goes; bob still dials her as the member who invited him, and says nobody is reachable
    await alice.request('quit')
    const gone = await term.waitFor(
      (l) => l.find((line) => line.startsWith('* no peer is reachable')),
      'the line saying no peer is reachable',
      25_000,
    )
    expect(gone).toBe(
      '* no peer is reachable now; trying 1 known peer again. What you send waits here, and goes when one connects.',
    )
    expect((await term.lines()).at(-1)).toBe('team>')
  }, 40_000)
})
