/**
 * Issue 8's hostile-peer suite: one stranger with throwaway identities on plain libp2p attacks a real
 * group (alice, bob and carol, who reach each other through a relay) with everything at once: slowloris
 * sync streams, garbage frames, bit flips of genuine envelopes it overheard, oversize frames, a flood of
 * 10,000 junk envelopes, and replays of what it overheard, live and after alice restarts. Meanwhile the
 * members keep chatting. What must hold, during and after:
 *
 * - every honest message sent during the attack is shown by every other member exactly once;
 * - the process (members, relay and attacker all run in it) grows by less than {@link RSS_BOUND}, and
 *   keeps less than {@link RETAINED_BOUND} more referenced once the attackers are gone;
 * - every frame an attacker identity sends is refused, with a rejection logged with a typed reason; once
 *   3 of its frames are refused, its score at alice and at the relay is below the graylist threshold and
 *   it is disconnected; replays are dropped as duplicates, not shown again, and not held against anyone;
 * - every sync stream the attacker opens is served (with nothing: it is a stranger), refused or aborted,
 *   and each refusal or abort is logged with a typed reason;
 * - afterwards the relay still admits a new group and serves it by sync.
 *
 * The figures it measures go to docs/RELIABILITY.md, "Hostile peer suite".
 */
import { performance } from 'node:perf_hooks'
import { afterAll, describe, expect, it } from 'vitest'
import * as cryptoErrors from '../../src/crypto/errors.js'
import { Identity } from '../../src/crypto/index.js'
import * as membershipErrors from '../../src/membership/errors.js'
import * as nodeErrors from '../../src/node/errors.js'
import type { TransportNode } from '../../src/node/transport.js'
import { encodeGossip } from '../../src/node/wire.js'
import * as relayErrors from '../../src/relay/errors.js'
import {
  captureFrames,
  GRAYLIST_THRESHOLD,
  gossipScore,
  legitimateGroup,
  publishTo,
} from '../fixtures/attacker-relay.js'
import {
  askForEverything,
  createAttacker,
  openStalledSync,
  openTricklingSync,
  retainedBytes,
  type StalledSyncStream,
  sampleRss,
} from '../fixtures/attacker-sync.js'
import {
  type ChatRecord,
  cleanupAfterEach,
  createChatNodes,
  createRelay,
  NETWORK_TIMEOUT,
  waitForMembers,
} from '../fixtures/chat.js'
import { bitFlips } from '../fixtures/forgery.js'
import {
  HostilePeer,
  type HostileTarget,
  type JudgedFrame,
  memberTarget,
  relayTarget,
  waitForGraylisted,
} from '../fixtures/hostile-peer.js'
import {
  garbageFrames,
  junkEnvelope,
  type LabelledFrame,
  oversizeFrames,
  randomCid,
} from '../fixtures/junk.js'
import { captureLog } from '../fixtures/log-capture.js'
import { waitFor } from '../fixtures/wait-for.js'

const ALICE = 0
const BOB = 1
const CAROL = 2
const NAMES = ['alice', 'bob', 'carol'] as const
/** Junk envelopes in the flood. */
const FLOOD = 10_000
/**
 * The stated bound on the whole test process's RSS growth (peak over the attack, against before it). It
 * holds the members, the relay, ~25 attacker nodes and the garbage of 10,000 signature checks at each
 * target, which V8 keeps as heap until it has a reason to give it back: ~170 MiB measured. Before issue 8's
 * fixes one attack alone took a member or a relay from ~100-180 MiB to ~1000 MiB.
 */
const RSS_BOUND = 256 * 1024 * 1024
/** The bound on what the attack leaves referenced after a full collection, attackers stopped. */
const RETAINED_BOUND = 64 * 1024 * 1024
/** alice's sync stall timeout, short so the test sees a slowloris aborted; the relay keeps its 20 s. */
const STALL_MS = 3000
/** Sync streams each slowloris identity opens: more than the 4 one peer may have served at once. */
const NEVER_READ_STREAMS = 12
const TRICKLE_STREAMS = 6

/** Every error class p2pchat defines, by name: a rejection's reason must start with one of them. */
const TYPED_ERRORS = new Set(
  [cryptoErrors, membershipErrors, nodeErrors, relayErrors].flatMap((module) =>
    Object.values(module)
      .filter((v): v is typeof Error => typeof v === 'function' && v.prototype instanceof Error)
      .map((cls) => cls.name),
  ),
)

/** The error name a logged reason (`Name: message`) starts with, if it is one of p2pchat's. */
function typedName(reason: string): string | undefined {
  const name = reason.split(':')[0] ?? ''
  return TYPED_ERRORS.has(name) && reason.length > name.length + 2 ? name : undefined
}

const MiB = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

const cleanups = cleanupAfterEach()
const figures: string[] = []
afterAll(() => {
  if (figures.length > 0) console.info(`hostile-peer figures:\n  ${figures.join('\n  ')}`)
})

interface HonestMessage {
  id: string
  from: number
  text: string
}

/** One sync attacker identity and the streams it opened against one target. */
interface Slowloris {
  target: string
  kind: 'never reads' | 'trickles'
  peer: string
  streams: Array<StalledSyncStream | undefined>
}

describe('a hostile peer against a group and its relay (issue 8)', () => {
  it('members chat on, memory stays bounded, every attack frame is refused with its reason and its sender graylisted, and the relay serves a new group', async () => {
    const relay = await createRelay({}, cleanups)
    const net = await createChatNodes(3, {
      names: NAMES,
      bootstrap: () => relay.relay.addrs(),
      init: (i) => (i === ALICE ? { syncLimits: { stallTimeoutMs: STALL_MS } } : {}),
    })
    cleanups.push(() => net.teardown())
    const alice = net.node(ALICE)
    const { id: groupId } = await alice.createGroup('team')
    await waitFor(() => relay.relay.group(groupId, false)?.ready === true, {
      timeout: NETWORK_TIMEOUT,
      message: "the relay to hold alice's group",
    })
    const aliceTarget = memberTarget(net, ALICE)
    const targets: HostileTarget[] = [aliceTarget, relayTarget(relay)]
    const hostile = new HostilePeer(targets, groupId, cleanups)

    // the attacker learns the group id (from its topic) and listens from before bob and carol are added
    const ear = await hostile.fresh('eavesdrop')
    const overheard = captureFrames(ear, groupId)
    for (const i of [BOB, CAROL]) await net.node(i).joinGroup(alice.invite(groupId, { ask: true }))
    for (const i of [BOB, CAROL]) await alice.add(groupId, net.node(i).peerId)
    const everyone = [ALICE, BOB, CAROL].map((i) => net.node(i).peerId)
    for (const i of [BOB, CAROL]) await waitForMembers(net.node(i), groupId, everyone)

    // what every member was shown, over every instance (alice's restart starts a new record)
    const records: ChatRecord[][] = [[net.record(ALICE)], [net.record(BOB)], [net.record(CAROL)]]
    const shown = (member: number, id: string): number =>
      (records[member] ?? []).reduce((n, record) => n + record.timesShown(id), 0)
    const honest: HonestMessage[] = []
    const running = (): number[] => [ALICE, BOB, CAROL].filter((i) => net.running(i))
    /** Each running member sends one message; waits until every other running member shows them all. */
    const chat = async (label: string): Promise<void> => {
      for (const i of running()) {
        const node = net.node(i)
        const text = `${node.name}: ${label}`
        honest.push({ id: (await node.send(groupId, text)).id, from: i, text })
      }
      await waitForDelivery(running())
    }
    const waitForDelivery = async (members: number[]): Promise<void> => {
      const missing = (): HonestMessage[] =>
        honest.filter((m) => members.some((r) => r !== m.from && shown(r, m.id) === 0))
      await waitFor(() => missing().length === 0, {
        timeout: NETWORK_TIMEOUT,
        message: `every member to show every honest message (missing: ${missing()
          .map((m) => m.text)
          .join('; ')})`,
      })
    }
    await chat('before the attack')
    await waitFor(() => overheard.envelopes.length >= 3 && overheard.events.length >= 2, {
      timeout: NETWORK_TIMEOUT,
      message: 'the eavesdropper to overhear the adds and the first messages',
    })
    overheard.stop()
    await hostile.retire('eavesdrop')
    honest.length = 0 // what counts from here is what was sent during the attack

    // the flood's junk envelopes, made beforehand (the attacker's own work is not what is measured): 100
    // throwaway senders nobody added
    const senders = await Promise.all(Array.from({ length: 100 }, () => Identity.generate()))
    const junk = Array.from({ length: FLOOD }, (_, k) =>
      encodeGossip({
        kind: 'message',
        data: junkEnvelope({ group: groupId, sender: senders[k % 100] as Identity, seq: k, size: 100 }),
      }),
    )

    const retainedBefore = retainedBytes()
    const rss = sampleRss()
    const syncLog = captureLog(['p2pchat:sync'])
    cleanups.push(() => syncLog.stop())
    const started = performance.now()
    const phases: string[] = []
    const phase = (name: string, from: number): void => {
      phases.push(`${name} ${((performance.now() - from) / 1000).toFixed(1)} s`)
    }

    // slowloris: per target, one identity opens sync streams that ask for everything and never read, one
    // trickles a request a byte a second; they stay open through what follows, until the target aborts them
    let t = performance.now()
    const slowloris: Slowloris[] = []
    const syncAttackers: TransportNode[] = []
    for (const target of targets) {
      for (const kind of ['never reads', 'trickles'] as const) {
        const attacker = await createAttacker({ addrs: () => target.addrs() })
        syncAttackers.push(attacker)
        cleanups.push(() => attacker.stop())
        const streams = await Promise.all(
          kind === 'never reads'
            ? Array.from({ length: NEVER_READ_STREAMS }, () =>
                openStalledSync(attacker, target.peerId(), askForEverything(groupId)),
              )
            : Array.from({ length: TRICKLE_STREAMS }, () =>
                openTricklingSync(attacker, target.peerId(), { t: 'hello', g: groupId, h: [] }, 1000),
              ),
        )
        slowloris.push({ target: target.name, kind, peer: attacker.peerId.toString(), streams })
      }
    }
    phase('slowloris opened', t)

    /** Checks frames that must all be refused: each with one logged, typed reason, at every target. */
    const judgedFrames: JudgedFrame[] = []
    const graylisted: Array<{ kind: string; target: string; score: number }> = []
    const attack = async (kind: string, frames: LabelledFrame[]): Promise<void> => {
      const t = performance.now()
      const judged = await hostile.judge(kind, frames)
      judgedFrames.push(...judged)
      for (const frame of judged) {
        for (const target of targets) {
          const { verdict, reasons } = frame.at[target.name] ?? { verdict: 'not sent', reasons: [] }
          const what = `${target.name}'s judgement of ${kind} frame "${frame.label}"`
          expect(verdict, what).toBe('reject')
          expect(reasons, `${what}: one logged rejection`).toHaveLength(1)
          expect(reasons.map(typedName), `${what}: a typed reason (${reasons})`).not.toContain(undefined)
        }
      }
      // every identity refused 3 times at a target is graylisted and disconnected there
      for (const from of hostile.identities.get(kind) ?? []) {
        for (const target of targets) {
          const refused = judged.filter((f) => f.from === from && f.at[target.name]?.verdict === 'reject')
          if (refused.length < 3) continue
          graylisted.push({ kind, target: target.name, score: await waitForGraylisted(target, from) })
        }
      }
      for (const target of targets) {
        expect(
          graylisted.filter((g) => g.kind === kind && g.target === target.name).length,
          `${target.name} graylisted some ${kind} identity`,
        ).toBeGreaterThan(0)
      }
      await hostile.retire(kind)
      phase(`${kind} (${frames.length} frames)`, t)
      await chat(`after ${kind}`)
    }

    await attack('garbage', garbageFrames(randomCid().toString(), await Identity.generate()))

    // one bit flipped, at 8 places spread over each, in one genuine envelope of each member
    const genuine = overheard.envelopes.slice(0, 3)
    await attack(
      'mutated',
      genuine.flatMap((envelope, k) =>
        bitFlips(envelope, 8).map(({ bit, bytes }) => ({
          label: `bit ${bit} of overheard envelope ${k}`,
          data: encodeGossip({ kind: 'message', data: bytes }),
        })),
      ),
    )

    await attack('oversize', oversizeFrames())
    // and one frame over gossipsub's 1 MiB RPC limit: gossipsub drops the sender's stream before any
    // validator sees it (logged by libp2p:gossipsub, not judged by p2pchat)
    t = performance.now()
    const gossipLog = captureLog(['libp2p:gossipsub:error'])
    const huge = await hostile.fresh('oversize rpc')
    const hugeFrame = new Uint8Array(1536 * 1024).fill(7)
    expect(await publishTo(huge, groupId, hugeFrame)).toHaveLength(2)
    for (const target of targets) {
      await waitFor(
        () => !(target.libp2p()?.services.pubsub.getPeers() ?? []).some((p) => p.equals(huge.peerId)),
        { timeout: NETWORK_TIMEOUT, message: `${target.name}'s gossipsub to drop the peer of a 1.5 MiB RPC` },
      )
      expect(target.rejections().filter((r) => r.from === huge.peerId.toString())).toEqual([])
    }
    gossipLog.stop()
    await hostile.retire('oversize rpc')
    expect(
      gossipLog.matching('InvalidDataLengthError').length,
      'gossipsub logged why',
    ).toBeGreaterThanOrEqual(2)
    phase('oversize RPC', t)

    // the flood: junk envelopes of 100 throwaway senders nobody added, paced by what the targets judged;
    // the members chat every 2,000
    t = performance.now()
    const flooder = await hostile.flood(junk, {
      batch: 500,
      between: async (sent) => {
        if (sent % 2000 === 0) await chat(`flood at ${sent}`)
      },
    })
    await hostile.retire('flood')
    const floodSeconds = (performance.now() - t) / 1000
    phase(`flood of ${FLOOD}`, t)
    // one rejection per junk envelope, typed; at the relay a few more can come when the flooder, a
    // gossipsub router like any other, forwards a member's message to it past its rate limit
    const floodReasons = new Map<string, string>()
    for (const target of targets) {
      const reasons = target.rejections().filter((r) => r.from === flooder)
      expect(reasons.length, `${target.name} logged a rejection per junk envelope`).toBeGreaterThanOrEqual(
        FLOOD,
      )
      expect(reasons.length, `${target.name}: rejections from the flooder`).toBeLessThan(FLOOD + 10)
      expect(new Set(reasons.map((r) => typedName(r.reason))), target.name).not.toContain(undefined)
      floodReasons.set(target.name, summarise(target, flooder))
    }

    // live replays of everything overheard, then one junk envelope: once it is refused, every replay
    // before it on the same stream has been handled
    t = performance.now()
    const storedBefore = relay.stored.get(groupId)?.length ?? 0
    const logBefore = targets.map((target) => target.rejections().length)
    const replayer = await hostile.replay(overheard.frames)
    const replayerId = replayer.peerId.toString()
    const sentinel = junkEnvelope({ group: groupId, sender: await Identity.generate() })
    await publishTo(replayer, groupId, encodeGossip({ kind: 'message', data: sentinel }))
    for (const [k, target] of targets.entries()) {
      const fromReplayer = () => target.rejections(logBefore[k]).filter((r) => r.from === replayerId)
      await waitFor(() => fromReplayer().length > 0, {
        timeout: NETWORK_TIMEOUT,
        message: `${target.name} to refuse the junk envelope sent after the replays`,
      })
      expect(fromReplayer(), `${target.name} held no replay against the replayer`).toHaveLength(1)
      expect(
        gossipScore(target.libp2p(), replayerId),
        `${target.name}'s score of the replayer`,
      ).toBeGreaterThanOrEqual(0)
    }
    expect(relay.stored.get(groupId)?.length ?? 0, 'the relay stored no replay').toBe(storedBefore)
    await hostile.retire('replay')
    phase(`live replay of ${overheard.frames.length} frames`, t)
    await chat('after the live replay')

    // alice's slowloris streams were refused or aborted, each logged with its reason
    const ofAlice = slowloris.filter((s) => s.target === aliceTarget.name)
    await waitFor(
      () => ofAlice.every((s) => s.streams.every((x) => x === undefined || x.ended !== undefined)),
      {
        timeout: NETWORK_TIMEOUT,
        message: 'alice to end every slowloris stream',
      },
    )

    // alice restarts on her data directory while bob and carol chat; then everything overheard again
    t = performance.now()
    await net.stop(ALICE)
    await chat('while alice restarts')
    await net.restart(ALICE)
    records[ALICE]?.push(net.record(ALICE))
    await waitForDelivery([ALICE, BOB, CAROL])
    const replayed = await hostile.judge(
      'replay after restart',
      overheard.frames.map((data, k) => ({ label: `overheard frame ${k}`, data })),
      [aliceTarget],
    )
    for (const frame of replayed) {
      expect(frame.at.alice, `alice's judgement of replayed ${frame.label}`).toEqual({
        verdict: 'ignore',
        reasons: [],
      })
    }
    await hostile.retire('replay after restart')
    phase(`restart and replay of ${replayed.length} frames`, t)
    await chat('after the restart')

    // the relay aborts its stalled streams after its 20 s stall timeout
    await waitFor(
      () => slowloris.every((s) => s.streams.every((x) => x === undefined || x.ended !== undefined)),
      {
        timeout: 30_000,
        message: 'the relay to end every slowloris stream',
      },
    )
    syncLog.stop()
    const growth = rss.stop()
    await Promise.all(syncAttackers.map((attacker) => attacker.stop()))
    const retained = retainedBytes() - retainedBefore
    const duration = (performance.now() - started) / 1000

    // every honest message sent during the attack, shown exactly once by every other member
    expect(honest.length).toBeGreaterThanOrEqual(20)
    for (const m of honest) {
      for (const r of [ALICE, BOB, CAROL].filter((r) => r !== m.from)) {
        expect(shown(r, m.id), `${NAMES[r]} shows "${m.text}" once`).toBe(1)
      }
    }
    // and nothing else: no attack frame was ever shown
    for (const member of [ALICE, BOB, CAROL]) {
      const all = (records[member] ?? []).flatMap((record) => record.received.map((m) => m.detail.id))
      const expected = honest.filter((m) => m.from !== member).map((m) => m.id)
      expect(all.filter((id) => expected.includes(id)).length, NAMES[member]).toBe(expected.length)
    }

    expect(growth, 'RSS growth of the process (members, relay, attacker) over the attack').toBeLessThan(
      RSS_BOUND,
    )
    expect(
      retained,
      'memory the attack left referenced (members, relay, the records of the test)',
    ).toBeLessThan(RETAINED_BOUND)

    // every sync stream was served, refused or aborted; every refusal or abort logged with a typed reason
    const syncOutcomes: string[] = []
    for (const s of slowloris) {
      const lines = syncLog.matching(s.peer)
      const failures = lines
        .map((line) => /(?:refused a sync stream from|sync served to) \S+(?: failed)?: (.*)$/.exec(line)?.[1])
        .filter((reason): reason is string => reason !== undefined)
      const names = failures.map(typedName)
      expect(names, `${s.target}: the reasons of ${s.kind} streams (${failures})`).not.toContain(undefined)
      const refused = lines.filter((l) => l.includes('refused a sync stream')).length
      const stalled = names.filter((n) => n === nodeErrors.SyncStalledError.name).length
      const opened = s.streams.filter((x) => x !== undefined).length
      expect(refused, `${s.target} refused some ${s.kind} streams, over 4 a peer`).toBeGreaterThan(0)
      if (s.kind === 'trickles')
        expect(stalled, `${s.target} aborted the trickling streams`).toBeGreaterThan(0)
      syncOutcomes.push(
        `${s.target}, ${s.kind}: ${opened} opened, ${refused} refused, ${stalled} stalled, ${
          lines.filter((l) => l.includes('served sync')).length
        } served (nothing)`,
      )
    }

    // no rejection anywhere lacks a typed reason
    const everyRejection = [
      ...records.flat().flatMap((record) => record.rejected.map((r) => r.detail.reason)),
      ...relay.rejections.map((r) => r.reason),
    ]
    expect(everyRejection.filter((reason) => typedName(reason) === undefined)).toEqual([])

    const stored = new Set(relay.stored.get(groupId) ?? [])
    const unstored = honest.filter((m) => !stored.has(m.id)).length

    // after all this, a new group gets in at the relay and is served by it
    t = performance.now()
    const fresh = await legitimateGroup(relay, cleanups, ['dave: hello', 'erin: hello'])
    expect(relay.rejections.filter((r) => r.group === fresh.id)).toEqual([])
    await fresh.net.stop(1)
    await fresh.net.node(0).send(fresh.id, 'while erin was away')
    await waitFor(() => (relay.stored.get(fresh.id)?.length ?? 0) >= 3, {
      timeout: NETWORK_TIMEOUT,
      message: "the relay to store the new group's third message",
    })
    await fresh.net.stop(0)
    await fresh.net.restart(1)
    await fresh.net.record(1).waitForText(fresh.id, 'while erin was away')
    phase('a new group through the relay', t)

    const reasonsOf = (kind: string, target: string): string =>
      [
        ...new Set(
          judgedFrames
            .filter((f) => f.kind === kind)
            .flatMap((f) => f.at[target]?.reasons ?? [])
            .map((r) => typedName(r)),
        ),
      ].join(', ')
    const scores = graylisted.map((g) => g.score)
    figures.push(
      `attack ${duration.toFixed(1)} s: ${phases.join('; ')}`,
      `RSS ${MiB(rss.baseline)} before, peak growth ${MiB(growth)} (bound ${MiB(RSS_BOUND)}); retained after a full GC ${MiB(retained)} more (bound ${MiB(RETAINED_BOUND)})`,
      `honest messages during the attack: ${honest.length}, each shown once by each other member`,
      ...['garbage', 'mutated', 'oversize'].map(
        (kind) =>
          `${kind}: ${judgedFrames.filter((f) => f.kind === kind).length} frames, ${
            hostile.identities.get(kind)?.length
          } identities; alice: ${reasonsOf(kind, 'alice')}; relay: ${reasonsOf(kind, 'relay')}`,
      ),
      `graylisted ${graylisted.length} times, scores ${Math.min(...scores).toFixed(1)} to ${Math.max(...scores).toFixed(1)} (threshold ${GRAYLIST_THRESHOLD})`,
      `flood: ${FLOOD} junk envelopes in ${floodSeconds.toFixed(1)} s; ${[...floodReasons]
        .map(([name, r]) => `${name}: ${r}`)
        .join('; ')}`,
      `honest messages of the attack the relay did not store: ${unstored}`,
      `replays: ${overheard.frames.length} overheard frames live and after the restart: all ignored, none shown`,
      ...syncOutcomes,
    )
  }, 180_000)
})

/** How many rejections `target` logged from `peer`, by reason. */
function summarise(target: HostileTarget, peer: string): string {
  const counts = new Map<string, number>()
  for (const r of target.rejections()) {
    if (r.from !== peer) continue
    const name = r.reason.split(':')[0] ?? ''
    counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  return [...counts].map(([name, n]) => `${n} ${name}`).join(', ')
}
