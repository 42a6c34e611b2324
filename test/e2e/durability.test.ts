/**
 * Anything already acknowledged to the user survives `kill -9`: the real CLI in `--json` mode is killed
 * with SIGKILL right after it answered, and the same data directory, opened again, still holds every
 * acknowledged message and membership change. The same for the relay: what it stored (as seen by a peer
 * that synced it from the relay) is still served after it is killed and started again.
 */
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createChatNodes, NETWORK_TIMEOUT, waitForMembers, waitForSubscribers } from '../fixtures/chat.js'
import {
  type CliGroup,
  type CliProcess,
  createCliGroup,
  loopbackStartArgs,
  type RpcResponse,
} from '../fixtures/cli.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1
const CAROL = 2

interface Ready {
  peerId: string
  name: string
  addrs: string[]
  group: { id: string; name: string } | null
  member: boolean
}

interface Peer {
  peerId: string
  name: string
}

interface HistoryEntry {
  id: string
  from: string
  text: string
}

describe('p2pchat survives kill -9 with everything it acknowledged', () => {
  let cli: CliGroup
  let root: string

  beforeAll(async () => {
    cli = createCliGroup()
    root = await cli.tempDir()
  })
  afterAll(async () => {
    await cli?.teardown()
  })

  /** `p2pchat start --json` on 127.0.0.1 without mDNS; resolves at its `ready` notification. */
  async function startPeer(
    name: string,
    dataDir: string,
    extra: string[] = [],
  ): Promise<[CliProcess, Ready]> {
    const proc = cli.spawn({
      args: loopbackStartArgs(name, dataDir, extra),
    })
    const ready = await proc.waitForNotification('ready', () => true, {
      message: `${name} to print its ready notification`,
      timeout: 15_000,
    })
    return [proc, ready.params as Ready]
  }

  /** `p2pchat relay --json` on 127.0.0.1; resolves at its `ready` notification. */
  async function startRelay(dataDir: string): Promise<[CliProcess, { peerId: string; addrs: string[] }]> {
    const proc = cli.spawn({
      label: 'relay',
      args: ['relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', dataDir],
    })
    const ready = await proc.waitForNotification('ready', () => true, {
      message: 'the relay to print its ready notification',
      timeout: 15_000,
    })
    return [proc, ready.params as { peerId: string; addrs: string[] }]
  }

  async function quit(proc: CliProcess): Promise<void> {
    await proc.request('quit')
    expect(await proc.waitForExit({ message: `${proc.label} to exit after quit` })).toEqual({
      code: 0,
      signal: null,
    })
  }

  async function historyOf(proc: CliProcess): Promise<HistoryEntry[]> {
    return (await proc.request<{ messages: HistoryEntry[] }>('history', { limit: 10_000 })).messages
  }

  it('a peer killed with SIGKILL the moment it answered still has every acknowledged message and member', async () => {
    const dataDir = join(root, 'alice')
    const [alice, ready] = await startPeer('alice', dataDir, ['--create', 'team'])
    expect(ready.member).toBe(true)
    const acknowledged = new Map<string, string>()

    for (let k = 0; k < 5; k++) {
      const text = `acknowledged one by one #${k}`
      const { id } = await alice.request<{ id: string }>('send', { text })
      acknowledged.set(id, text)
    }
    // a member added while offline: known only by peer id, and only to alice's own disk so far
    const dave = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const added = await alice.request<{ members: Peer[] }>('add', { member: dave })
    expect(added.members.map((m) => m.peerId)).toContain(dave)

    // a stream of sends, always a few in flight; the process is killed the moment the 50th answer to
    // them reaches us, while it is still working on the next ones
    const burst = Array.from({ length: 300 }, (_, k) => `sent in a stream #${k}`)
    const sentTexts = new Set([...acknowledged.values(), ...burst])
    const answered: Array<{ id: string; text: string }> = []
    let unanswered = 0
    let answersSeen = 0
    alice.child.stdout.on('data', (chunk: Buffer) => {
      // raw stdout, before the lines are parsed: no time passes between the answer and the kill
      answersSeen += chunk.toString('utf8').split('"result"').length - 1
      if (answersSeen >= 50 && alice.exitStatus === undefined) alice.kill('SIGKILL')
    })
    const calls: Array<Promise<void>> = []
    let next = 0
    const sendNext = (): void => {
      if (next >= burst.length || alice.exitStatus !== undefined) return
      const text = burst[next++] as string
      calls.push(
        alice.call('send', { text }).then(
          (response: RpcResponse) => {
            expect(response.error, `send "${text}"`).toBeUndefined()
            // every answer counts, also one that was on its way when the kill landed
            answered.push({ id: (response.result as { id: string }).id, text })
            sendNext()
          },
          () => {
            // no answer before the process died: not acknowledged, so it may or may not be there
            unanswered++
          },
        ),
      )
    }
    for (let k = 0; k < 8; k++) sendNext()
    expect(await alice.waitForExit({ message: 'alice to die of SIGKILL' })).toEqual({
      code: null,
      signal: 'SIGKILL',
    })
    await Promise.all(calls)
    expect(answered.length + unanswered).toBe(calls.length)
    expect(answered.length).toBeGreaterThanOrEqual(50)
    for (const { id, text } of answered) acknowledged.set(id, text)

    // the same data directory, no --create
    const [again, readyAgain] = await startPeer('alice', dataDir)
    expect(readyAgain).toMatchObject({ peerId: ready.peerId, group: ready.group, member: true })
    const history = await historyOf(again)
    const shown = new Map(history.map((m) => [m.id, m.text]))
    for (const [id, text] of acknowledged) expect(shown.get(id), `acknowledged "${text}"`).toBe(text)
    // nothing twice, nothing that was never sent, nothing garbled
    expect(shown.size).toBe(history.length)
    for (const m of history) {
      expect(sentTexts.has(m.text), `history holds "${m.text}"`).toBe(true)
      expect(m.from).toBe(ready.peerId)
    }
    const members = await again.request<{ members: Peer[] }>('members')
    expect(members.members.map((m) => m.peerId).sort()).toEqual([ready.peerId, dave].sort())

    // and it carries on: a new message is stored next to the old ones
    const after = await again.request<{ id: string }>('send', { text: 'after the crash' })
    expect((await historyOf(again)).map((m) => m.id)).toContain(after.id)
    await quit(again)
  }, 60_000)

  it('a relay killed with SIGKILL right after it passed messages on still serves them after a restart', async () => {
    const relayDir = join(root, 'relay')
    let [relay, relayReady] = await startRelay(relayDir)
    const relayId = relayReady.peerId
    // in-process peers that may connect to the relay and nobody else, so whatever reaches one of them
    // came through the relay, which stores a message before it passes it on
    const net = await createChatNodes(3, {
      names: ['alice', 'bob', 'carol'],
      bootstrap: () => relayReady.addrs,
      init: { denyPeer: (peerId) => peerId !== relayId, syncIntervalMs: 500 },
    })
    try {
      const [alice, bob, carol] = [net.node(ALICE), net.node(BOB), net.node(CAROL)]
      const groupId = (await alice.createGroup('relayed')).id
      await waitForSubscribers(alice, groupId, [relayId])
      for (const peer of [bob, carol]) {
        await peer.joinGroup(alice.invite(groupId, { ask: true }))
        await alice.add(groupId, peer.peerId)
      }
      for (const peer of [bob, carol]) {
        await waitForMembers(peer, groupId, [alice.peerId, bob.peerId, carol.peerId])
      }
      await waitForSubscribers(bob, groupId, [relayId])
      await net.stop(CAROL)

      // alice talks, bob hears it through the relay, and the relay dies the moment bob has it all
      const texts = Array.from({ length: 8 }, (_, k) => `kept by the relay #${k}`)
      const heard = new Set<string>()
      bob.addEventListener('message:receive', ({ detail }) => {
        if (detail.group !== groupId || !texts.includes(detail.text)) return
        heard.add(detail.text)
        if (heard.size === texts.length) relay.kill('SIGKILL')
      })
      const sent: Array<{ id: string; text: string }> = []
      for (const text of texts) sent.push({ id: (await alice.send(groupId, text)).id, text })
      expect(
        await relay.waitForExit({ message: 'the relay to die of SIGKILL once bob heard everything' }),
      ).toEqual({ code: null, signal: 'SIGKILL' })
      expect(heard.size).toBe(texts.length)
      await net.stop(ALICE)
      await net.stop(BOB)

      // the relay starts again on the same data directory (a new port, the same identity); carol, who
      // was away, can only get what she missed from it
      ;[relay, relayReady] = await startRelay(relayDir)
      expect(relayReady.peerId).toBe(relayId)
      await net.restart(CAROL, { bootstrap: relayReady.addrs })
      const shownToCarol = () =>
        net
          .record(CAROL)
          .messages(groupId)
          .map((m) => ({ id: m.id, text: m.text }))
      await waitFor(() => shownToCarol().length >= sent.length, {
        timeout: NETWORK_TIMEOUT,
        message: `carol to catch up on ${sent.length} messages from the relay restarted after kill -9`,
      })
      expect(shownToCarol()).toEqual(sent)

      relay.closeStdin()
      expect(await relay.waitForExit({ message: 'the relay to exit on stdin EOF' })).toEqual({
        code: 0,
        signal: null,
      })
    } finally {
      await net.teardown()
    }
  }, 60_000)
})
