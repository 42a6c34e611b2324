/**
 * Membership figures, through the Group API: a 10k-event log (applying it, one concurrent event at its
 * tail, cold start) and a 1,000-member group (removing one member: creating the event and applying it
 * at a member; one add near the size limit; the memory one replica holds).
 */
import { type KeyObject, randomBytes, verify } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { Identity, publicKeyOfMember } from '../src/crypto/index.js'
import { compareBytes, EVENT_VERSION, type EventKey, signEvent } from '../src/membership/event.js'
import { Group } from '../src/membership/index.js'
import {
  ed25519KeyPair,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  floorSeal,
  openOne,
  sealToEach,
  x25519Recipients,
} from './floors.js'
import { type Figure, median, timeMs } from './measure.js'
import { LoopBlockProbe } from './network.js'

/** Size of the long log. */
export interface LongLogInit {
  /** Events in the log (10,000 for the figures). */
  events: number
  /** Cold starts timed, each followed by its floor (the median is reported). */
  coldStarts: number
  /** Progress lines go here. */
  progress: (line: string) => void
}

/** Size of the large group, and how often to time a removal. */
export interface LargeGroupInit {
  /** Members (1,000, the most a group may have). */
  members: number
  /** Removals timed (their median is reported). */
  removals: number
  /** Progress lines go here. */
  progress: (line: string) => void
}

/** A long log made by {@link longLog}, and identities of its members. */
export interface LongLog {
  events: Uint8Array[]
  /** The id of each event. */
  ids: string[]
  groupId: string
  /** A member throughout. */
  reader: Identity
  author: Identity
  spare: Identity
}

const longLogs = new Map<number, Promise<LongLog>>()

/**
 * A log of `total` events by the Group API: a founder adds three members, then adds and removes a spare
 * member over and over, so every event is a real epoch sealed to at most five members. Made once per
 * size and run: the figures that need one share it.
 */
export function longLog(total: number): Promise<LongLog> {
  let log = longLogs.get(total)
  if (log === undefined) {
    log = makeLongLog(total)
    longLogs.set(total, log)
  }
  return log
}

async function makeLongLog(total: number): Promise<LongLog> {
  const members = await Promise.all([0, 1, 2, 3].map(() => Identity.generate()))
  const founder = members[0] as Identity
  const { group } = await Group.create({ identity: founder, name: 'bench', memberName: 'm0' })
  const spare = await Identity.generate()
  for (const m of members.slice(1)) await group.add(m.memberId, 'm')
  for (let count = members.length; count < total; count++) {
    if (group.isMember(spare.memberId)) await group.remove(spare.memberId)
    else await group.add(spare.memberId, 'spare')
  }
  return {
    events: group.events().map((e) => e.bytes),
    ids: group.events().map((e) => e.id),
    groupId: group.id,
    reader: members[1] as Identity,
    author: members[2] as Identity,
    spare,
  }
}

/** Verifies every event's signature with node:crypto alone: the floor of any cold start. */
function verifyAll(events: readonly Uint8Array[]): number {
  const keys = new Map<string, KeyObject>()
  const work = events.map((bytes) => {
    const { payload, sig } = dagCbor.decode(bytes) as { payload: Uint8Array; sig: Uint8Array }
    const { type, author } = dagCbor.decode(payload) as { type: string; author: Uint8Array }
    const id = Buffer.from(author).toString('base64')
    const key = keys.get(id) ?? ed25519PublicKey(publicKeyOfMember(author))
    keys.set(id, key)
    return { key, sig, message: Buffer.concat([Buffer.from(`p2pchat/v1/event:${type}\u0000`), payload]) }
  })
  const start = performance.now()
  for (const w of work)
    if (!verify(null, w.message, w.key, w.sig)) throw new Error('floor: a signature failed')
  return performance.now() - start
}

/**
 * Applying a 10k-event log: late events against early ones, one concurrent event at the tail against
 * the same event on the head, and a cold start against verifying every signature.
 */
export async function longLogFigures(init: LongLogInit): Promise<Figure[]> {
  const total = init.events
  const started = performance.now()
  const { events, groupId, reader, author, spare } = await longLog(total)
  init.progress(`built a ${total}-event log in ${((performance.now() - started) / 1000).toFixed(1)} s`)

  // kept from the first bench: per-event apply cost, first 1,000 against last 1,000
  const incremental = new Group({ identity: spare, groupId })
  const timeRange = (from: number, to: number): number => {
    const start = performance.now()
    for (let i = from; i < to; i++) incremental.receiveEvent(events[i] as Uint8Array)
    return (performance.now() - start) / (to - from)
  }
  const slice = Math.min(1000, Math.floor(total / 10))
  const early = timeRange(0, slice)
  timeRange(slice, total - slice)
  const late = timeRange(total - slice, total)

  // one concurrent event: a member who missed the last event rekeys; the event forks at the tail
  const upToTail = events.slice(0, -1)
  const authorReplica = new Group({ identity: author, groupId })
  for (const bytes of upToTail) authorReplica.receiveEvent(bytes)
  const concurrent = (await authorReplica.rekey()).bytes
  // its floor: the same event where it extends the only head (a replica without the last event)
  const headReplica = new Group({ identity: reader, groupId })
  for (const bytes of upToTail) headReplica.receiveEvent(bytes)
  const onHead = await timeMs(() => headReplica.receiveEvent(concurrent))
  const atTail: number[] = []

  // cold start: a member's fresh replica takes the stored log and opens the current key
  const cold: number[] = []
  const floor: number[] = []
  for (let i = 0; i < init.coldStarts; i++) {
    const replica = new Group({ identity: reader, groupId })
    cold.push(
      await timeMs(async () => {
        // as ChatStore.restoreGroup reads them: from the node's own store, checked before written
        for (const bytes of events) replica.receiveEvent(bytes, { stored: true })
        if ((await replica.currentKeyProblem()) !== undefined)
          throw new Error('cold start: the current key is bad')
      }),
    )
    if (!replica.isMember()) throw new Error('cold start: the reader is not a member')
    floor.push(verifyAll(events))
    atTail.push(await timeMs(() => replica.receiveEvent(concurrent)))
    if (replica.heads().length !== 2) throw new Error('concurrent event: expected two heads')
  }

  return [
    {
      name: `apply event, µs: events ${total - slice}-${total} vs 0-${slice} (incremental ⇒ ~1x)`,
      unit: 'µs',
      value: late * 1000,
      floorName: `the first ${slice} events (a baseline, not a floor)`,
      floor: early * 1000,
    },
    {
      name: `one concurrent event at the tail of a ${total.toLocaleString('en')}-event log`,
      unit: 'ms',
      value: median(atTail),
      floorName: 'the same event on the head',
      floor: onHead,
      target: { kind: 'value-max', value: 10 },
      note: `median of ${init.coldStarts} (floor: one sample); Group.receiveEvent of a rekey whose parent is the second-to-last event`,
    },
    {
      name: `cold start with a ${total.toLocaleString('en')}-event log`,
      unit: 'ms',
      value: median(cold),
      floorName: `verify all ${total.toLocaleString('en')} signatures`,
      floor: median(floor),
      target: { kind: 'ratio-max', ratio: 0.5 },
      note: `median of ${init.coldStarts}; Group API: receiveEvent(bytes, { stored: true }) of every stored event, as restoreGroup does, then open the current key`,
    },
  ]
}

/**
 * A group of `n` members, built fast: the founder signs `n - 1` adds whose sealed keys are placeholders
 * of the right size (the log checks who keys go to, not what they hold; nothing here reads under these
 * epochs). Returns the founder's replica and a second member's, both holding the whole log.
 */
async function largeGroup(
  n: number,
): Promise<{ founder: Group; member: Group; others: Identity[]; logBytes: number; memberHeap?: number }> {
  const founderId = await Identity.generate()
  const { group: founder } = await Group.create({ identity: founderId, name: 'large', memberName: 'founder' })
  const others = await Promise.all(Array.from({ length: n - 1 }, () => Identity.generate()))
  const groupCid = CID.parse(founder.id)
  const recipients: Uint8Array[] = [founderId.memberIdBytes]
  const enc = new Uint8Array(32).fill(1)
  const ct = new Uint8Array(48).fill(2)
  const log: Uint8Array[] = founder.events().map((e) => e.bytes)
  let head = CID.parse(founder.heads()[0] as string)
  for (const [i, subject] of others.entries()) {
    recipients.push(subject.memberIdBytes)
    recipients.sort(compareBytes)
    const keys: EventKey[] = recipients.map((to) => ({ to, enc, ct }))
    const event = signEvent(founderId, {
      v: EVENT_VERSION,
      type: 'add',
      group: groupCid,
      author: founderId.memberIdBytes,
      parents: [head],
      subject: subject.memberIdBytes,
      subjectName: `m${i + 1}`,
      keyCommitment: new Uint8Array(randomBytes(32)),
      keys,
    })
    founder.receiveEvent(event.bytes)
    log.push(event.bytes)
    head = event.cid
  }
  // the memory one replica holds for this log: heap and buffers it keeps, the event bytes not counted
  // twice (the caller's copies already exist)
  const before = heldBytes()
  const member = new Group({ identity: others[0] as Identity, groupId: founder.id })
  for (const bytes of log) member.receiveEvent(bytes)
  const after = heldBytes()
  if (founder.members().length !== n || member.members().length !== n)
    throw new Error('large group: wrong size')
  const logBytes = log.reduce((sum, bytes) => sum + bytes.length, 0)
  return {
    founder,
    member,
    others,
    logBytes,
    ...(before === undefined || after === undefined ? {} : { memberHeap: after - before }),
  }
}

/** Heap plus array buffers after a full GC, or undefined when node runs without --expose-gc. */
function heldBytes(): number | undefined {
  const { gc } = globalThis as { gc?: () => void }
  if (gc === undefined) return undefined
  gc()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}

/** A group grown by real adds through the Group API, one add at a time. */
export interface GrowthByAdds {
  /** Milliseconds each add took, by the group's size before it (index 1 = the founder's first add). */
  costs: number[]
  /** Milliseconds all adds took together. */
  total: number
}

/**
 * Grows a group from its founder to `to` members by real adds through the Group API (fresh identities,
 * generated beforehand so their key generation is not timed), timing each add.
 */
export async function growByAdds(to: number): Promise<GrowthByAdds> {
  const founderId = await Identity.generate()
  const newcomers = await Promise.all(Array.from({ length: to - 1 }, () => Identity.generate()))
  const { group } = await Group.create({ identity: founderId, name: 'adds', memberName: 'founder' })
  const costs: number[] = [0]
  for (const [i, newcomer] of newcomers.entries()) {
    costs.push(await timeMs(() => group.add(newcomer.memberId, `m${i + 1}`)))
  }
  if (group.members().length !== to) throw new Error('growth by adds: wrong size')
  return { costs, total: costs.reduce((sum, ms) => sum + ms, 0) }
}

/** Median cost of the adds made at sizes `from` (inclusive) to `to` (exclusive). */
function addsBetween(growth: GrowthByAdds, from: number, to: number): number {
  return median(growth.costs.slice(from, to))
}

/**
 * A 1,000-member group: removing one member (creating the event, and applying it at a member), adding
 * one near the size limit against adds in a small group, and the memory a replica of its log holds.
 */
export async function largeGroupFigures(init: LargeGroupInit): Promise<Figure[]> {
  const started = performance.now()
  const { founder, member, others, logBytes, memberHeap } = await largeGroup(init.members)
  init.progress(
    `built a ${init.members}-member group in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  )

  // floors: the same number of recipients and bytes, bare node:crypto
  const recipients = x25519Recipients(init.members - 1)
  const signer = ed25519KeyPair()
  const aad = new Uint8Array(randomBytes(200))
  const key = new Uint8Array(randomBytes(32))

  // each sample times the figure and then its floor, so a passing load falls on both
  const create: number[] = []
  const apply: number[] = []
  const floorCreate: number[] = []
  const floorApply: number[] = []
  const eventBytes: number[] = []
  const blocks: number[] = []
  const probe = new LoopBlockProbe()
  for (let i = 0; i < init.removals; i++) {
    const victim = others[others.length - 1 - i] as Identity
    let bytes: Uint8Array = new Uint8Array(0)
    probe.start()
    create.push(
      await timeMs(async () => {
        bytes = (await founder.remove(victim.memberId)).bytes
      }),
    )
    blocks.push(probe.stop())
    eventBytes.push(bytes.length)
    const message = new Uint8Array(randomBytes(bytes.length))
    floorCreate.push(
      await timeMs(() => {
        sealToEach(recipients, key, aad)
        ed25519Sign(signer.privateKey, message)
      }),
    )
    apply.push(
      await timeMs(async () => {
        member.receiveEvent(bytes)
        if ((await member.currentKeyProblem()) !== undefined) throw new Error('apply: the new key is bad')
      }),
    )
    const signature = ed25519Sign(signer.privateKey, message)
    const sealed = floorSeal(aad)
    floorApply.push(
      await timeMs(() => {
        ed25519Verify(signer.publicKey, message, signature)
        openOne(sealed)
      }),
    )
  }

  // the removals made room: adds near the size limit, against adds while a group grows from 10 to 100
  const lateAdds: number[] = []
  for (let i = 0; i < init.removals; i++) {
    const newcomer = await Identity.generate()
    lateAdds.push(await timeMs(() => founder.add(newcomer.memberId, `late${i}`)))
  }
  const growth = await growByAdds(init.members)
  init.progress(
    `grew a group to ${init.members} members by real adds in ${(growth.total / 1000).toFixed(1)} s`,
  )
  const earlyAdd = addsBetween(growth, 10, 100)
  const lateFrom = Math.max(10, init.members - 100)

  const note = `median of ${init.removals}; ${init.members - 1} recipients, event ${Math.round(median(eventBytes) / 1024)} KiB`
  const MB = 1e6
  return [
    {
      name: `remove one member, ${init.members.toLocaleString('en')}-member group: create`,
      unit: 'ms',
      value: median(create),
      floorName: 'X25519+HKDF+AES-GCM per recipient + one Ed25519 sign',
      floor: median(floorCreate),
      target: { kind: 'ratio-max', ratio: 1.5 },
      note: `${note}; longest event-loop block while creating: ${Math.max(...blocks).toFixed(0)} ms (monitorEventLoopDelay, 10 ms resolution)`,
    },
    {
      name: '…apply it at a member (receive, open the new key)',
      unit: 'ms',
      value: median(apply),
      floorName: 'one Ed25519 verify + one open',
      floor: median(floorApply),
      target: { kind: 'value-max', value: 10 },
      note,
    },
    {
      name: `add one member at ~${init.members.toLocaleString('en')} members`,
      unit: 'ms',
      value: median(lateAdds),
      floorName: 'one add while growing 10→100 (a baseline)',
      floor: earlyAdd,
      target: { kind: 'ratio-max', ratio: 3 },
      note: `median of ${init.removals} adds at ${init.members - init.removals} members, in a group built with placeholder keys and then ${init.removals} real removals (the adds derive from the last removal's key); baseline: median of 90 adds of the growth below`,
    },
    {
      name: `build a group to ${init.members.toLocaleString('en')} members by real adds: one add at ${lateFrom.toLocaleString('en')}–${init.members.toLocaleString('en')}`,
      unit: 'ms',
      value: addsBetween(growth, lateFrom, init.members),
      floorName: 'one add at 10–100 (a baseline)',
      floor: earlyAdd,
      target: { kind: 'ratio-max', ratio: 3 },
      note: `Group.add of fresh identities from 1 to ${init.members} members, all ${init.members - 1} adds took ${(growth.total / 1000).toFixed(1)} s; medians`,
    },
    memberHeap === undefined
      ? {
          name: `memory of a replica holding the ${init.members.toLocaleString('en')}-member log`,
          unit: 'MB',
          missing: 'run node with --expose-gc (npm run bench does)',
        }
      : {
          name: `memory of a replica holding the ${init.members.toLocaleString('en')}-member log`,
          unit: 'MB',
          value: memberHeap / MB,
          floorName: 'event bytes of the log',
          floor: logBytes / MB,
          note: 'heap + array buffers after GC, before and after one replica applies the log; target O(events), not O(events × members): read the ratio',
        },
  ]
}
