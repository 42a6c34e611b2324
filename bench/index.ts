/**
 * `npm run bench`: speed targets as ratios against baselines measured in the same run, so a noisy,
 * shared machine changes both sides alike. Prints a table; asserts nothing.
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import * as dagCbor from '@ipld/dag-cbor'
import { ed25519 } from '@noble/curves/ed25519.js'
import {
  aeadDecrypt,
  aeadEncrypt,
  cidOf,
  Identity,
  randomKey,
  randomNonce,
  verifySignature,
} from '../src/crypto/index.js'
import { compareBytes, decodeEvent, EVENT_VERSION, encodePayload } from '../src/membership/event.js'
import { Group, MAX_MEMBERS } from '../src/membership/index.js'

interface Row {
  name: string
  value: string
  baseline: string
  ratio: string
}

const rows: Row[] = []

function opsPerSecond(fn: () => void, minMs = 300): number {
  let n = 0
  const start = performance.now()
  while (performance.now() - start < minMs) {
    fn()
    n++
  }
  return (n * 1000) / (performance.now() - start)
}

async function opsPerSecondAsync(fn: () => Promise<void>, minMs = 300): Promise<number> {
  let n = 0
  const start = performance.now()
  while (performance.now() - start < minMs) {
    await fn()
    n++
  }
  return (n * 1000) / (performance.now() - start)
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(2)
}

async function signatures(): Promise<void> {
  const identity = await Identity.generate()
  const message = new Uint8Array(200).fill(7)
  const sig = identity.sign('envelope', message)
  const native = opsPerSecond(() => verifySignature(identity.memberIdBytes, 'envelope', message, sig))
  // baseline: pure-JS Ed25519 verify of the same-sized input (what a library without node:crypto does)
  const seed = identity.seed
  const pub = ed25519.getPublicKey(seed)
  const jsSig = ed25519.sign(message, seed)
  const js = opsPerSecond(() => {
    ed25519.verify(jsSig, message, pub)
  })
  rows.push({
    name: 'Ed25519 verify/s (node:crypto vs pure JS)',
    value: fmt(native),
    baseline: fmt(js),
    ratio: `${(native / js).toFixed(1)}x`,
  })
}

async function envelopes(): Promise<void> {
  const alice = await Identity.generate()
  const bob = await Identity.generate()
  const { group } = await Group.create({ identity: alice, name: 'bench', memberName: 'alice' })
  await group.add(bob.memberId, 'bob')
  const reader = new Group({ identity: bob, groupId: group.id })
  for (const e of group.events()) reader.receiveEvent(e.bytes)
  const text = 'x'.repeat(200)
  const sealed: Uint8Array[] = []
  for (let i = 0; i < 3000; i++) sealed.push((await group.seal(text)).bytes)
  let i = 0
  const open = await opsPerSecondAsync(async () => {
    await reader.open(sealed[i++ % sealed.length] as Uint8Array).catch(() => {})
  })
  // baseline: the bare AEAD of the same text, i.e. what any encrypted chat must pay at least
  const key = randomKey()
  const nonce = randomNonce()
  const aad = new Uint8Array(120)
  const ct = aeadEncrypt(key, nonce, new TextEncoder().encode(text), aad)
  const bare = opsPerSecond(() => {
    aeadDecrypt(key, nonce, ct, aad)
  })
  rows.push({
    name: 'envelope open/s (decode+verify+replay+AEAD vs bare AEAD)',
    value: fmt(open),
    baseline: fmt(bare),
    ratio: `${(open / bare).toFixed(3)}x`,
  })
}

async function membership(): Promise<void> {
  const members = await Promise.all([0, 1, 2, 3].map(() => Identity.generate()))
  const founder = members[0] as Identity
  const { group } = await Group.create({ identity: founder, name: 'bench', memberName: 'm0' })
  const total = 10_000
  const spare = await Identity.generate()
  for (const m of members.slice(1)) await group.add(m.memberId, 'm')
  for (let count = members.length; count < total; count++) {
    if (group.isMember(spare.memberId)) await group.remove(spare.memberId)
    else await group.add(spare.memberId, 'spare')
  }
  const events = group.events().map((e) => e.bytes)
  // apply all events to a fresh replica, timing the first 1,000 and the last 1,000
  const replica = new Group({ identity: spare, groupId: group.id })
  const timeRange = (from: number, to: number): number => {
    const start = performance.now()
    for (let i = from; i < to; i++) replica.receiveEvent(events[i] as Uint8Array)
    return (performance.now() - start) / (to - from)
  }
  const early = timeRange(0, 1000)
  timeRange(1000, total - 1000)
  const late = timeRange(total - 1000, total)
  rows.push({
    name: 'apply event, µs: events 9k-10k vs 0-1k (incremental ⇒ ~1x)',
    value: fmt(late * 1000),
    baseline: fmt(early * 1000),
    ratio: `${(late / early).toFixed(2)}x`,
  })
}

/**
 * Rejecting a maximum-size junk event (1000 sealed keys, ~135 KB) whose signature is bad. The floor is
 * what no order of checks can avoid: one Ed25519 verify of the same payload bytes. Before issue 8 every
 * member id was parsed before the signature was checked, which is what decoding a valid event of the
 * same size still costs (the second row).
 */
async function junkRejection(): Promise<void> {
  const [author, forger] = [await Identity.generate(), await Identity.generate()]
  const keys = Array.from({ length: MAX_MEMBERS }, () => ({
    to: Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20, ...randomBytes(32)),
    enc: new Uint8Array(randomBytes(32)),
    ct: new Uint8Array(randomBytes(48)),
  })).sort((a, b) => compareBytes(a.to, b.to))
  const payload = encodePayload({
    v: EVENT_VERSION,
    type: 'rekey',
    group: cidOf(randomBytes(16)),
    author: author.memberIdBytes,
    parents: [cidOf(randomBytes(16))],
    keyCommitment: new Uint8Array(32),
    keys,
  })
  const junk = dagCbor.encode({ payload, sig: forger.sign('event:rekey', payload) })
  const valid = dagCbor.encode({ payload, sig: author.sign('event:rekey', payload) })
  const reject = opsPerSecond(() => {
    try {
      decodeEvent(junk)
    } catch {
      // InvalidSignatureError: the point
    }
  })
  const full = opsPerSecond(() => decodeEvent(valid))
  // the floor: a bare node:crypto Ed25519 verify of the payload bytes
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), author.memberIdBytes.subarray(6)]),
    format: 'der',
    type: 'spki',
  })
  const sig = forger.sign('event:rekey', payload)
  const floor = opsPerSecond(() => {
    verify(null, payload, key, sig)
  })
  const us = (opsPerS: number): number => 1e6 / opsPerS
  rows.push({
    name: `reject junk event (${Math.round(junk.length / 1000)} KB, bad sig), µs vs bare verify`,
    value: fmt(us(reject)),
    baseline: fmt(us(floor)),
    ratio: `${(us(reject) / us(floor)).toFixed(2)}x`,
  })
  rows.push({
    name: '  full decode of that event (old cost of junk), µs vs verify',
    value: fmt(us(full)),
    baseline: fmt(us(floor)),
    ratio: `${(us(full) / us(floor)).toFixed(2)}x`,
  })
}

await signatures()
await envelopes()
await membership()
await junkRejection()
const widths = [60, 14, 14, 10]
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 10)).join(' ')
console.log(line(['benchmark', 'value', 'baseline', 'ratio']))
for (const r of rows) console.log(line([r.name, r.value, r.baseline, r.ratio]))
