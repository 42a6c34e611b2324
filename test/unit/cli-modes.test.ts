/**
 * The two presentations of `p2pchat start` (`--json` and the terminal) over a fake chat node and
 * in-memory streams: event ordering at start-up, error messages, and a stdout whose reader went away.
 */
import { PassThrough } from 'node:stream'
import { TypedEventEmitter } from 'main-event'
import { describe, expect, it } from 'vitest'
import { createInteractiveMode } from '../../src/cli/interactive.js'
import type { CliIO } from '../../src/cli/io.js'
import { createJsonMode, jsonRpcMethods } from '../../src/cli/json-mode.js'
import { createJsonRpcServer } from '../../src/cli/json-rpc.js'
import { ChatSession } from '../../src/cli/session.js'
import { InvalidArgumentError, NoCurrentEpochError } from '../../src/membership/index.js'
import {
  type ChatMessage,
  type ChatNode,
  type ChatNodeEvents,
  type GroupStatus,
  type InviteForgedNotice,
  type MembershipNotice,
  UnverifiedNameError,
} from '../../src/node/index.js'

const ALICE = '12D3KooWJPsRuxqpgyxDLE5Gcs8PqbWjr1Mzyb4wJQU2QrcCVHng'
const BOB = '12D3KooWG7gB6Ptt5NRToWDBa19Mawd8whnrNmDzxqLvgDCFCfXZ'
const CAROL = '12D3KooWRm3AETnJHPfMnTvBuQKiUfGnNdzkn7wp3xQk'
const IMPOSTOR = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
/** A look-alike of alice: another key, the same name. */
const MALLORY = '12D3KooWRm3AETnJHPfMnTvBuQKiUfGnNdzkn7wp3xQkQ7mR'
const GROUP: GroupStatus = {
  id: 'bafyreia3eacpdffdwys3le3z6xjlgwb6rfhdltzouymkabry4ptljk5n3m',
  name: 'team',
  founder: { peerId: ALICE, name: 'alice' },
  inviter: null,
  inviteForged: false,
}

/** bob's invite said alice founded team; the genesis says a look-alike alice did. */
const FORGED: InviteForgedNotice = {
  group: GROUP.id,
  inviter: { peerId: BOB, name: 'bob' },
  claimed: { groupName: 'team', founder: { peerId: ALICE, name: 'alice' } },
  actual: { groupName: 'team', founder: { peerId: MALLORY, name: 'alice' } },
}

/** The part of a ChatNode the CLI modes use, with scripted answers. */
class FakeNode extends TypedEventEmitter<ChatNodeEvents> {
  readonly peerId = ALICE
  readonly name = 'alice'
  stopped = 0
  group: GroupStatus | null = GROUP
  stored: ChatMessage[] = []
  send: (group: string, text: string) => Promise<{ id: string; ts: number; recipients: number }> =
    async () => ({
      id: 'm',
      ts: 1,
      recipients: 1,
    })
  add: (group: string, ref: string) => Promise<Array<{ peerId: string; name: string }>> = async () =>
    this.members()
  #session: ChatSession | undefined
  readonly store = { getMeta: () => undefined, setMeta: () => {} }

  status() {
    return {
      peerId: ALICE,
      name: 'alice',
      group: this.group,
      member: true,
      removed: null,
      addrs: ['/ip4/127.0.0.1/tcp/1'],
      peers: 0,
    }
  }
  members() {
    return [{ peerId: ALICE, name: 'alice' }]
  }
  peers() {
    return []
  }
  invite(_group?: string, _options?: unknown) {
    return 'p2pchat2:invite'
  }
  history(limit: number) {
    return this.stored.slice(-limit)
  }
  async remove() {
    return this.members()
  }
  async stop() {
    this.stopped++
  }
  findGroup() {
    return GROUP
  }
  groups() {
    return [GROUP]
  }
  standing() {
    return { member: true, removed: null }
  }
  /** A session over this node with {@link GROUP} on screen, the same one every call. */
  asSession(): ChatSession {
    if (this.#session === undefined) {
      this.#session = new ChatSession(this as unknown as ChatNode)
      this.#session.select(GROUP.id)
    }
    return this.#session
  }
  created(): void {
    const alice = { peerId: ALICE, name: 'alice' }
    const detail: MembershipNotice = {
      group: GROUP.id,
      members: [alice],
      change: { action: 'create', by: alice, member: alice },
    }
    this.safeDispatchEvent('membership:change', { detail })
  }
  received(message: ChatMessage): void {
    this.safeDispatchEvent('message:receive', { detail: message })
  }
  forged(detail: InviteForgedNotice): void {
    this.safeDispatchEvent('invite:forged', { detail })
  }
}

/** In-memory stdin/stdout/stderr; `breakStdout()` fails stdout like a pipe whose reader exited. */
function fakeIO(): {
  io: CliIO
  stdin: PassThrough
  out: () => string
  err: () => string
  breakStdout: () => void
} {
  const stdin = new PassThrough()
  let out = ''
  let err = ''
  const handlers = new Set<(err: Error) => void>()
  let broken = false
  const io: CliIO = {
    stdin,
    stdout: (text) => {
      if (!broken) out += text
    },
    stderr: (text) => {
      err += text
    },
    isTTY: false,
    onSignal: () => () => {},
    onStdoutError: (handler) => {
      handlers.add(handler)
      return () => handlers.delete(handler)
    },
    output: new PassThrough(),
  }
  return {
    io,
    stdin,
    out: () => out,
    err: () => err,
    breakStdout: () => {
      broken = true
      for (const handler of handlers) handler(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    },
  }
}

/** Resolves once `check()` holds; fails with `message` after a second. */
async function until(check: () => boolean, message: string): Promise<void> {
  const deadline = Date.now() + 1000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

const lines = (text: string): Array<{ method?: string; params?: Record<string, unknown> }> =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l))

describe('--json mode', () => {
  it('writes ready first, then the notifications raised while the node started, in order', async () => {
    const node = new FakeNode()
    const { io, stdin, out } = fakeIO()
    const mode = createJsonMode(io)
    mode.attach(node.asSession())
    // what openSession does between attach and run: create the group, sync a message
    node.created()
    node.received({ group: GROUP.id, id: 'm1', from: BOB, name: 'bob', text: 'early', ts: 5 })
    expect(out()).toBe('')

    const exit = mode.run(node.asSession())
    const sent = lines(out())
    expect(sent.map((l) => l.method)).toEqual(['ready', 'membership', 'message'])
    expect(sent[1]?.params?.change).toMatchObject({ action: 'create' })
    expect(sent[2]?.params?.text).toBe('early')

    // after ready, notifications go out at once
    node.received({ group: GROUP.id, id: 'm2', from: BOB, name: 'bob', text: 'late', ts: 6 })
    expect(lines(out()).at(-1)?.params?.text).toBe('late')

    stdin.end()
    expect(await exit).toBe(0)
    expect(node.stopped).toBe(1)
  })

  it('reports a forged invite as an inviteForged notification, and founder and inviter in ready', async () => {
    const node = new FakeNode()
    node.group = { ...GROUP, inviter: { peerId: BOB, name: 'bob' } }
    const { io, stdin, out } = fakeIO()
    const mode = createJsonMode(io)
    mode.attach(node.asSession())
    node.forged(FORGED)
    const exit = mode.run(node.asSession())
    const sent = lines(out())
    expect(sent.map((l) => l.method)).toEqual(['ready', 'inviteForged'])
    expect(sent[0]?.params?.group).toEqual({
      ...GROUP,
      founder: { peerId: ALICE, name: 'alice' },
      inviter: { peerId: BOB, name: 'bob' },
    })
    expect(sent[1]?.params).toEqual(FORGED)
    stdin.end()
    expect(await exit).toBe(0)
  })

  it('stops the node cleanly with status 0 when stdout fails (EPIPE)', async () => {
    const node = new FakeNode()
    const { io, breakStdout, err } = fakeIO()
    const mode = createJsonMode(io)
    mode.attach(node.asSession())
    const exit = mode.run(node.asSession())
    breakStdout()
    expect(await exit).toBe(0)
    expect(node.stopped).toBe(1)
    expect(err()).toBe('')
  })
})

describe('--json error mapping', () => {
  async function call(node: FakeNode, method: string, params: Record<string, unknown>) {
    const written: string[] = []
    const server = createJsonRpcServer({
      methods: jsonRpcMethods(node.asSession(), () => {}),
      write: (l) => written.push(l),
    })
    await server.handleLine(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }))
    return JSON.parse(written[0] ?? 'null') as {
      error?: { code: number; message: string; data?: { name: string } }
    }
  }

  it('adding someone who is already a member is InvalidParams, with the reason', async () => {
    const node = new FakeNode()
    node.add = async () => {
      throw new InvalidArgumentError('bob is already a member')
    }
    const response = await call(node, 'add', { member: 'bob' })
    expect(response.error).toEqual({
      code: -32602,
      message: 'bob is already a member',
      data: { name: 'InvalidParams' },
    })
  })

  it('invite passes ask and validForMs to the node (default: an invite that admits), and refuses other values', async () => {
    const node = new FakeNode()
    const asked: unknown[] = []
    node.invite = (_group: string, options?: unknown) => {
      asked.push(options)
      return 'p2pchat2:invite'
    }
    await call(node, 'invite', {})
    await call(node, 'invite', { ask: true, validForMs: 60_000 })
    expect(asked).toEqual([{ ask: false }, { ask: true, validForMs: 60_000 }])
    for (const params of [{ ask: 'yes' }, { validForMs: 0 }, { validForMs: 1.5 }]) {
      expect((await call(node, 'invite', params)).error?.code, JSON.stringify(params)).toBe(-32602)
    }
    expect(asked).toHaveLength(2)
  })

  it('adding by a name only join requesters claimed adds nobody and lists them as candidates', async () => {
    const node = new FakeNode()
    const added: string[] = []
    node.add = async (_group, ref) => {
      if (ref === 'carol') throw new UnverifiedNameError('carol', [{ peerId: CAROL, name: 'carol' }])
      added.push(ref)
      return node.members()
    }
    const response = await call(node, 'add', { member: 'carol' })
    expect(response.error).toEqual({
      code: -32000,
      message: expect.stringContaining(CAROL),
      data: { name: 'UnverifiedName', candidates: [{ peerId: CAROL, name: 'carol' }] },
    })
    expect(added).toEqual([])
  })

  it('sending with no usable group key is InvalidParams that says to retry', async () => {
    const node = new FakeNode()
    node.send = async () => {
      throw new NoCurrentEpochError()
    }
    const response = await call(node, 'send', { text: 'hi' })
    expect(response.error).toEqual({
      code: -32602,
      message: 'no usable group key yet: waiting for a member to rekey; try again shortly',
      data: { name: 'InvalidParams' },
    })
  })
})

describe('interactive mode', () => {
  it('prints "* alice created team" after the greeting, and a message from start-up only once', async () => {
    const node = new FakeNode()
    const { io, stdin, out } = fakeIO()
    const mode = createInteractiveMode(io)
    mode.attach(node.asSession())
    node.created()
    const early: ChatMessage = {
      group: GROUP.id,
      id: 'm1',
      from: BOB,
      name: 'bob',
      text: 'synced early',
      ts: 5,
    }
    node.stored.push(early)
    node.received(early) // also in the history the greeting shows
    node.received({ ...early, id: 'm2', text: 'another group', group: 'bafyother' })
    expect(out()).toBe('')

    const exit = mode.run(node.asSession())
    const shown = out().split('\n')
    const created = shown.indexOf('* alice created team')
    expect(created, out()).toBeGreaterThan(shown.findIndex((l) => l.startsWith('p2pchat: you are alice')))
    expect(created).toBeLessThan(shown.indexOf('Type /help for commands.'))
    expect(shown.filter((l) => l.endsWith('bob: synced early'))).toHaveLength(1)
    expect(out()).not.toContain('another group')

    stdin.end()
    expect(await exit).toBe(0)
  })

  /** The lines the terminal shows up to the prompt; `starting` runs between attach and run. */
  async function greeting(node: FakeNode, starting: () => void = () => {}): Promise<string[]> {
    const { io, stdin, out } = fakeIO()
    const mode = createInteractiveMode(io)
    mode.attach(node.asSession())
    starting()
    const exit = mode.run(node.asSession())
    const shown = out().split('\n')
    stdin.end()
    expect(await exit).toBe(0)
    return shown
  }

  it('greets a peer that joined by invite with the founder and the inviter, each with a fingerprint', async () => {
    const node = new FakeNode()
    node.group = { ...GROUP, inviter: { peerId: BOB, name: 'bob' } }
    const shown = await greeting(node)
    expect(shown[shown.findIndex((l) => l.startsWith('Group team ')) + 1]).toBe(
      'Founded by alice (…VHng); invited by bob (…CfXZ)',
    )
  })

  it('does not greet the founder of a group with who invited them', async () => {
    expect((await greeting(new FakeNode())).join('\n')).not.toContain('invited by')
  })

  it('warns loudly, after the greeting, that an invite the genesis contradicts is forged', async () => {
    const node = new FakeNode()
    node.group = { ...GROUP, founder: FORGED.actual.founder, inviter: FORGED.inviter, inviteForged: true }
    const shown = await greeting(node, () => {
      node.forged(FORGED)
      node.forged({ ...FORGED, group: 'bafyother' })
    })
    const warnings = shown.filter((l) => l.startsWith('!! FORGED INVITE'))
    expect(warnings).toEqual([
      '!! FORGED INVITE: bob (…CfXZ) said this group is team, founded by alice (…VHng), but it is team, founded by alice (…Q7mR). It is not the group the invite claimed: do not trust it; /quit to leave.',
    ])
    expect(shown.indexOf(warnings[0] as string)).toBeGreaterThan(
      shown.findIndex((l) => l.startsWith('Group team')),
    )
  })

  it('explains a send refused for want of a group key', async () => {
    const node = new FakeNode()
    node.send = async () => {
      throw new NoCurrentEpochError()
    }
    const { io, stdin, out } = fakeIO()
    const mode = createInteractiveMode(io)
    mode.attach(node.asSession())
    const exit = mode.run(node.asSession())
    stdin.write('hello\n')
    await until(() => out().includes('no usable group key'), 'the refusal to be printed')
    // the reason, then the text that was not sent, so it is not lost
    expect(out()).toContain(
      '! Not sent: no usable group key yet: waiting for a member to rekey; try again shortly\n  hello\n',
    )
    stdin.end()
    expect(await exit).toBe(0)
  })

  describe('/add of a name only join requesters claimed', () => {
    /**
     * A terminal session over a node where "carol" is claimed by `claimants`: `added` records what the
     * node really adds; `end()` ends the input and resolves with the exit status.
     */
    function session(claimants: string[]) {
      const node = new FakeNode()
      const added: string[] = []
      node.add = async (_group, ref) => {
        if (ref === 'carol')
          throw new UnverifiedNameError(
            'carol',
            claimants.map((peerId) => ({ peerId, name: 'carol' })),
          )
        added.push(ref)
        return node.members()
      }
      const { io, stdin, out } = fakeIO()
      const mode = createInteractiveMode(io)
      mode.attach(node.asSession())
      const exit = mode.run(node.asSession())
      const end = (): Promise<number> => {
        stdin.end()
        return exit
      }
      return { node, added, out, type: (line: string) => stdin.write(`${line}\n`), end }
    }

    async function answer(reply: string): Promise<{ added: string[]; out: string }> {
      const { node, added, out, type, end } = session([CAROL])
      type('/add carol')
      await until(() => out().includes('? [y/N]'), 'the question')
      // a message arriving while the question is open does not answer it
      node.received({ group: GROUP.id, id: 'm1', from: BOB, name: 'bob', text: 'meanwhile', ts: 5 })
      type(reply)
      await until(() => added.length > 0 || out().includes('Not added.'), 'the answer to be acted on')
      expect(await end()).toBe(0)
      return { added, out: out() }
    }

    it('asks, showing the short id and the peer id, and adds by peer id on y or yes', async () => {
      for (const reply of ['y', 'Y', 'yes', ' YES ']) {
        const { added, out } = await answer(reply)
        expect(out).toContain(`Add carol (…${CAROL.slice(-4)}, ${CAROL})? [y/N]`)
        expect(out).toContain('bob: meanwhile')
        expect(added, reply).toEqual([CAROL])
      }
    })

    it('adds nobody on any other answer', async () => {
      for (const reply of ['', 'n', 'no', 'sure', 'y carol', 'yy']) {
        const { added, out } = await answer(reply)
        expect(added, JSON.stringify(reply)).toEqual([])
        expect(out).toContain('Not added.')
      }
    })

    it('lists several claimants to add by peer id, and asks nothing', async () => {
      const { added, out, type, end } = session([CAROL, IMPOSTOR])
      type('/add carol')
      await until(() => out().includes(IMPOSTOR), 'the list of claimants')
      expect(out()).toContain('2 peers asked to join as carol')
      expect(out()).toContain(`carol (…${CAROL.slice(-4)}) ${CAROL}`)
      expect(out()).toContain(`carol (…${IMPOSTOR.slice(-4)}) ${IMPOSTOR}`)
      expect(out()).not.toContain('[y/N]')
      // the next line is a message, not an answer
      type('y')
      expect(await end()).toBe(0)
      expect(added).toEqual([])
    })

    it('adds by peer id without asking', async () => {
      const { added, out, type, end } = session([CAROL])
      type(`/add ${CAROL}`)
      await until(() => added.length > 0, 'the add')
      expect(await end()).toBe(0)
      expect(added).toEqual([CAROL])
      expect(out()).not.toContain('[y/N]')
    })

    it('takes an open question as a no when the input ends', async () => {
      const { added, out, type, end } = session([CAROL])
      type('/add carol')
      await until(() => out().includes('? [y/N]'), 'the question')
      expect(await end()).toBe(0)
      expect(added).toEqual([])
      expect(out()).toContain('Not added.')
    })
  })

  it('stops the node cleanly when stdout fails', async () => {
    const node = new FakeNode()
    const { io, breakStdout } = fakeIO()
    const mode = createInteractiveMode(io)
    mode.attach(node.asSession())
    const exit = mode.run(node.asSession())
    breakStdout()
    expect(await exit).toBe(0)
    expect(node.stopped).toBe(1)
  })
})
