/**
 * Signature and envelope figures: Ed25519 through node:crypto against pure JS, and sealing/opening a
 * 200-byte message against the bare AEAD and signature it is made of.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import * as dagCbor from '@ipld/dag-cbor'
import { ed25519 } from '@noble/curves/ed25519.js'
import { Identity, verifySignature } from '../src/crypto/index.js'
import { Group } from '../src/membership/index.js'
import {
  chachaDecrypt,
  chachaEncrypt,
  chachaKey,
  ed25519KeyPair,
  ed25519Sign,
  ed25519Verify,
} from './floors.js'
import { type Figure, opsPerSecond, timeMs } from './measure.js'

/** How long each rate is measured. */
export interface RateInit {
  minMs: number
}

/** How long each rate is measured, and how many messages are sealed and opened. */
export interface EnvelopeBenchInit extends RateInit {
  messages: number
}

const TEXT = 'x'.repeat(200)

/** Ed25519 verify/s: node:crypto against pure JS (kept from the first bench; no target). */
export async function signatureFigures(init: RateInit): Promise<Figure[]> {
  const identity = await Identity.generate()
  const message = new Uint8Array(200).fill(7)
  const sig = identity.sign('envelope', message)
  const native = opsPerSecond(
    () => verifySignature(identity.memberIdBytes, 'envelope', message, sig),
    init.minMs,
  )
  // baseline: pure-JS Ed25519 verify of the same-sized input (what a library without node:crypto does)
  const pub = ed25519.getPublicKey(identity.seed)
  const jsSig = ed25519.sign(message, identity.seed)
  const js = opsPerSecond(() => {
    ed25519.verify(jsSig, message, pub)
  }, init.minMs)
  return [
    {
      name: 'Ed25519 verify/s (node:crypto vs pure JS)',
      unit: 'ops/s',
      value: native,
      floorName: 'pure-JS verify (a baseline, not a floor)',
      floor: js,
    },
  ]
}

/**
 * Members of one group, built by the Group API: the founder writes, and `readers` more replicas hold
 * the log (each with its own identity).
 */
async function groupOf(size: number): Promise<Group[]> {
  const ids = await Promise.all(Array.from({ length: size }, () => Identity.generate()))
  const [founder, ...others] = ids as [Identity, ...Identity[]]
  const { group } = await Group.create({ identity: founder, name: 'bench', memberName: 'm0' })
  for (const [i, id] of others.entries()) await group.add(id.memberId, `m${i + 1}`)
  const replicas = others.map((identity) => new Group({ identity, groupId: group.id }))
  for (const replica of replicas) for (const e of group.events()) replica.receiveEvent(e.bytes)
  return [group, ...replicas]
}

/** The parts of an envelope its floor works on: associated data, ciphertext, signed bytes. */
function envelopeParts(bytes: Uint8Array): { aad: Uint8Array; ct: Uint8Array; signed: Uint8Array } {
  const { ct, sig: _sig, ...header } = dagCbor.decode(bytes) as Record<string, unknown> & { ct: Uint8Array }
  return {
    aad: dagCbor.encode(header),
    ct,
    // what p2pchat signs: the domain prefix, then header and ciphertext
    signed: Buffer.concat([Buffer.from('p2pchat/v1/envelope\u0000'), dagCbor.encode({ ...header, ct })]),
  }
}

/**
 * Envelope open/s and seal/s against their floors.
 * Each figure and its floor are timed in alternating chunks, so a load that comes and goes on a shared
 * machine falls on both, after one untimed chunk of each.
 */
export async function envelopeFigures(init: EnvelopeBenchInit): Promise<Figure[]> {
  const [writer, reader] = (await groupOf(2)) as [Group, Group]
  const sample = (await writer.seal(TEXT)).bytes
  // floors over the same sizes: decrypt + verify, encrypt + sign
  const parts = envelopeParts(sample)
  const key = chachaKey()
  const nonce = new Uint8Array(randomBytes(12))
  const plaintext = new Uint8Array(parts.ct.length - 16)
  const ct = chachaEncrypt(key, nonce, plaintext, parts.aad)
  const signer = ed25519KeyPair()
  const sig = ed25519Sign(signer.privateKey, parts.signed)

  const chunks = 10
  const perChunk = Math.ceil(init.messages / chunks)
  const sealed: Uint8Array[] = []
  const ms = { seal: 0, open: 0, floorSeal: 0, floorOpen: 0 }
  // chunk -1 warms every loop up (JIT, caches) and is not counted: a steady rate is the figure
  for (let c = -1; c < chunks; c++) {
    if (c === 0) for (const k of Object.keys(ms) as Array<keyof typeof ms>) ms[k] = 0
    const from = sealed.length
    ms.seal += await timeMs(async () => {
      for (let i = 0; i < perChunk; i++) sealed.push((await writer.seal(TEXT)).bytes)
    })
    ms.floorSeal += await timeMs(() => {
      for (let i = 0; i < perChunk; i++) {
        chachaEncrypt(key, nonce, plaintext, parts.aad)
        ed25519Sign(signer.privateKey, parts.signed)
      }
    })
    // every envelope once: a second open would be a replay, which is rejected before any crypto
    ms.open += await timeMs(async () => {
      for (let i = from; i < sealed.length; i++) await reader.open(sealed[i] as Uint8Array)
    })
    ms.floorOpen += await timeMs(() => {
      for (let i = 0; i < perChunk; i++) {
        chachaDecrypt(key, nonce, ct, parts.aad)
        ed25519Verify(signer.publicKey, parts.signed, sig)
      }
    })
  }

  const rate = (took: number): number => (chunks * perChunk * 1000) / took
  const size = `${chunks * perChunk} messages of 200 bytes`
  return [
    {
      name: 'envelope open/s (200-byte text)',
      unit: 'ops/s',
      value: rate(ms.open),
      floorName: 'ChaCha20-Poly1305 decrypt + Ed25519 verify',
      floor: rate(ms.floorOpen),
      target: { kind: 'ratio-min', ratio: 0.8 },
      note: size,
    },
    {
      name: 'envelope seal/s (200-byte text)',
      unit: 'ops/s',
      value: rate(ms.seal),
      floorName: 'ChaCha20-Poly1305 encrypt + Ed25519 sign',
      floor: rate(ms.floorSeal),
      target: { kind: 'ratio-min', ratio: 0.8 },
      note: size,
    },
  ]
}

/** How many messages a member catches up on. */
export interface CatchUpInit {
  messages: number
}

/**
 * Catch-up at the Group layer: a member of a three-member group, back from away, opens the messages
 * the other two sent meanwhile (alternating senders), against verifying and decrypting as many
 * envelopes of the same size. The sync protocol and the store are not in this figure.
 */
export async function catchUpFigures(init: CatchUpInit): Promise<Figure[]> {
  const [alice, bob, carol] = (await groupOf(3)) as [Group, Group, Group]
  const backlog: Uint8Array[] = []
  for (let i = 0; i < init.messages; i++) backlog.push((await (i % 2 === 0 ? alice : bob).seal(TEXT)).bytes)

  let opened = 0
  const value = await timeMs(async () => {
    for (const bytes of backlog) if ((await carol.open(bytes)).kind === 'message') opened++
  })
  if (opened !== backlog.length) throw new Error(`catch-up: opened ${opened} of ${backlog.length}`)
  const floor = verifyDecryptFloor(backlog[0] as Uint8Array, backlog.length)
  return [
    {
      name: `catch-up of ${init.messages.toLocaleString('en')} messages, 3 members (Group layer)`,
      unit: 'ms',
      value,
      floorName: `Ed25519 verify + ChaCha20-Poly1305 decrypt ×${init.messages.toLocaleString('en')}`,
      floor,
      target: { kind: 'ratio-max', ratio: 1.5 },
      note: 'Group.open of every message, two senders alternating; no sync protocol, no store',
    },
  ]
}

/**
 * The floor of any catch-up: Ed25519 verify + ChaCha20-Poly1305 decrypt, `count` times, over the sizes of
 * the envelope `sample` (bare node:crypto, keys made up front). Returns milliseconds.
 */
export function verifyDecryptFloor(sample: Uint8Array, count: number): number {
  const parts = envelopeParts(sample)
  const key = chachaKey()
  const nonce = new Uint8Array(randomBytes(12))
  const ct = chachaEncrypt(key, nonce, new Uint8Array(parts.ct.length - 16), parts.aad)
  const signer = ed25519KeyPair()
  const sig = ed25519Sign(signer.privateKey, parts.signed)
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    ed25519Verify(signer.publicKey, parts.signed, sig)
    chachaDecrypt(key, nonce, ct, parts.aad)
  }
  return performance.now() - start
}
