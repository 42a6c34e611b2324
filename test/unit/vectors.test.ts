/**
 * Test vectors: fixed keys give fixed bytes. The JSON files in test/vectors/ pin the wire formats
 * (signatures, sealed keys, events, envelopes), so an accidental change to any encoding fails here, and
 * another implementation can check itself against them.
 *
 * Regenerate (only for an intended format change) with:
 *   UPDATE_VECTORS=1 npx vitest run test/unit/vectors.test.ts
 */
import { createHash, createPublicKey, verify } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import {
  hkdf,
  Identity,
  openKey,
  publicKeyOfMember,
  type SignatureDomain,
  sealKey,
  verifySignature,
} from '../../src/crypto/index.js'
import { decodeEnvelope, openEnvelope, sealEnvelope } from '../../src/membership/envelope.js'
import {
  compareBytes,
  decodeEvent,
  EVENT_VERSION,
  type EventKey,
  type EventPayload,
  keyContext,
  type SignedEvent,
  signEvent,
} from '../../src/membership/event.js'
import { commitToKey } from '../../src/membership/group.js'
import { Group } from '../../src/membership/index.js'
import { decodeInvite, encodeInvite } from '../../src/node/invite.js'

const VECTORS_DIR = new URL('../vectors/', import.meta.url)
const UPDATE = process.env.UPDATE_VECTORS === '1'

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const filled = (length: number, byte: number): Uint8Array => new Uint8Array(length).fill(byte)

const EPOCH_KEY_INFO = utf8('p2pchat/v1/epoch-key')
const MESSAGE_KEY_INFO = 'p2pchat/v1/message-key'
// A record, so that a new signature domain fails to compile here until it is listed (and, in the vectors,
// pinned).
const DOMAIN_SET: Record<SignatureDomain, true> = {
  'event:genesis': true,
  'event:add': true,
  'event:remove': true,
  'event:rekey': true,
  'event:rename': true,
  envelope: true,
  'join-request': true,
  invite: true,
  'invite-token': true,
  'invite-proof': true,
}
const DOMAINS = Object.keys(DOMAIN_SET) as SignatureDomain[]

// ---- fixed inputs ------------------------------------------------------------------------------

const SEEDS = { alice: filled(32, 0x01), bob: filled(32, 0x02), carol: filled(32, 0x03) }
type Who = keyof typeof SEEDS

const SIGNED_MESSAGE = utf8('p2pchat test vector message')
const HPKE = {
  key: filled(32, 0x42),
  info: EPOCH_KEY_INFO,
  aad: utf8('p2pchat test vector context'),
  ephemeralSeed: filled(32, 0x55),
}
const GENESIS = {
  groupName: 'vectors',
  memberName: 'alice',
  nonce: filled(16, 0x10),
  groupKey: filled(32, 0x20),
}
const ADD = { subjectName: 'bob', groupKey: filled(32, 0x21) }
const REMOVE = { groupKey: filled(32, 0x22) }
/** After the removal alice adds carol; the add's key is derived from the removal's (no key of its own). */
const DERIVED_ADD = { subjectName: 'carol', info: 'p2pchat/v1/add-epoch' }
const ENVELOPE = { seq: 7, ts: 1_700_000_000_000, nonce: filled(12, 0x30), text: 'hello, vectors ✓' }
/** bob's addresses as libp2p lists them: loopback (left out of the invite), two LAN ones, a circuit via carol. */
const INVITE_ADDRS = (bob: Identity, carol: Identity): string[] => [
  `/ip4/127.0.0.1/tcp/4555/p2p/${bob.memberId}`,
  `/ip4/192.168.1.20/tcp/4555/p2p/${bob.memberId}`,
  `/ip4/10.0.0.5/tcp/4555/p2p/${bob.memberId}`,
  `/ip4/203.0.113.5/tcp/4001/p2p/${carol.memberId}/p2p-circuit/p2p/${bob.memberId}`,
]

/** A distinct fixed ephemeral seed per sealed key: the event's key byte, then the recipient's index. */
function ephemeralSeed(groupKey: Uint8Array, index: number): Uint8Array {
  const seed = filled(32, groupKey[0] as number)
  seed[31] = index
  return seed
}

async function fixedIdentities(): Promise<Record<Who, Identity>> {
  const out = {} as Record<Who, Identity>
  for (const [who, seed] of Object.entries(SEEDS) as Array<[Who, Uint8Array]>) {
    out[who] = new Identity(await generateKeyPairFromSeed('Ed25519', seed))
  }
  return out
}

async function fixedKeys(
  base: Omit<EventPayload, 'keys' | 'keyCommitment'>,
  groupKey: Uint8Array,
  to: Identity[],
): Promise<{ keyCommitment: Uint8Array; keys: EventKey[] }> {
  const recipients = to.map((i) => i.memberIdBytes).sort(compareBytes)
  const keyCommitment = commitToKey(groupKey)
  const aad = keyContext({ ...base, keyCommitment })
  const keys: EventKey[] = []
  for (const [index, recipient] of recipients.entries()) {
    const sealed = sealKey(recipient, groupKey, EPOCH_KEY_INFO, aad, {
      ephemeralSeedForTests: ephemeralSeed(groupKey, index),
    })
    keys.push({ to: recipient, ...sealed })
  }
  return { keyCommitment, keys }
}

/**
 * A derived add's group key, written out from the spec: HKDF-SHA256(base key, no salt, info
 * "p2pchat/v1/add-epoch" NUL hex(SHA-256(DAG-CBOR of the payload without keys and keyCommitment))).
 */
function derivedKeyOf(
  baseKey: Uint8Array,
  payload: Omit<EventPayload, 'keys' | 'keyCommitment'>,
): Uint8Array {
  const { keys: _keys, keyCommitment: _commitment, ...rest } = payload as EventPayload
  const context = createHash('sha256').update(dagCbor.encode(rest)).digest('hex')
  return hkdf(baseKey, `${DERIVED_ADD.info}\u0000${context}`)
}

/** The fixed history: alice founds a group, adds bob, removes bob, adds carol deriving the key. */
async function fixedEvents(ids: Record<Who, Identity>): Promise<{
  genesis: SignedEvent
  add: SignedEvent
  remove: SignedEvent
  derivedAdd: SignedEvent
  derivedKey: Uint8Array
}> {
  const { alice, bob, carol } = ids
  const genesisBase = {
    v: EVENT_VERSION,
    type: 'genesis' as const,
    group: null,
    author: alice.memberIdBytes,
    parents: [],
    subject: alice.memberIdBytes,
    subjectName: GENESIS.memberName,
    groupName: GENESIS.groupName,
    nonce: GENESIS.nonce,
  }
  const genesis = signEvent(alice, {
    ...genesisBase,
    ...(await fixedKeys(genesisBase, GENESIS.groupKey, [alice])),
  })
  // every later event is alice's, on the one event before it
  const after = <T extends 'add' | 'remove'>(type: T, parent: SignedEvent, fields: object) => ({
    v: EVENT_VERSION,
    type,
    group: genesis.cid,
    author: alice.memberIdBytes,
    parents: [parent.cid],
    ...fields,
  })
  const addBase = after('add', genesis, { subject: bob.memberIdBytes, subjectName: ADD.subjectName })
  const add = signEvent(alice, { ...addBase, ...(await fixedKeys(addBase, ADD.groupKey, [alice, bob])) })
  const removeBase = after('remove', add, { subject: bob.memberIdBytes })
  const remove = signEvent(alice, {
    ...removeBase,
    ...(await fixedKeys(removeBase, REMOVE.groupKey, [alice])),
  })
  const derivedBase = after('add', remove, {
    subject: carol.memberIdBytes,
    subjectName: DERIVED_ADD.subjectName,
    base: remove.cid,
  })
  const derivedKey = derivedKeyOf(REMOVE.groupKey, derivedBase)
  const derivedAdd = signEvent(alice, {
    ...derivedBase,
    ...(await fixedKeys(derivedBase, derivedKey, [carol])),
  })
  return { genesis, add, remove, derivedAdd, derivedKey }
}

// ---- the vectors -------------------------------------------------------------------------------

type Vectors = Record<string, unknown>

async function computeVectors(): Promise<Record<string, Vectors>> {
  const ids = await fixedIdentities()
  const { genesis, add, remove, derivedAdd, derivedKey } = await fixedEvents(ids)
  const hpke = sealKey(ids.bob.memberIdBytes, HPKE.key, HPKE.info, HPKE.aad, {
    ephemeralSeedForTests: HPKE.ephemeralSeed,
  })
  const messageKey = hkdf(ADD.groupKey, MESSAGE_KEY_INFO)
  const envelope = sealEnvelope({
    identity: ids.alice,
    group: genesis.cid,
    epoch: add.cid,
    seq: ENVELOPE.seq,
    key: messageKey,
    body: { text: ENVELOPE.text, ts: ENVELOPE.ts },
    nonce: ENVELOPE.nonce,
  })
  const eventVector = (event: SignedEvent, groupKey: Uint8Array) => ({
    id: event.id,
    type: event.payload.type,
    groupKey: hex(groupKey),
    ephemeralSeeds: event.payload.keys.map((_k, i) => hex(ephemeralSeed(groupKey, i))),
    bytes: hex(event.bytes),
  })
  return {
    'identities.json': {
      description:
        'Ed25519 identities from fixed 32-byte seeds: public key, peer id (member id) and its bytes',
      identities: Object.fromEntries(
        (Object.keys(SEEDS) as Who[]).map((who) => [
          who,
          {
            seed: hex(SEEDS[who]),
            publicKey: hex(publicKeyOfMember(ids[who].memberIdBytes)),
            memberId: ids[who].memberId,
            memberIdBytes: hex(ids[who].memberIdBytes),
          },
        ]),
      ),
    },
    'signatures.json': {
      description: 'Identity.sign by alice: Ed25519 over "p2pchat/v1/<domain>" NUL message',
      signer: 'alice',
      message: hex(SIGNED_MESSAGE),
      signatures: Object.fromEntries(DOMAINS.map((d) => [d, hex(ids.alice.sign(d, SIGNED_MESSAGE))])),
    },
    'hpke.json': {
      description:
        'sealKey to bob with a fixed ephemeral seed (HPKE base mode, X25519/HKDF-SHA256/AES-256-GCM)',
      recipient: 'bob',
      key: hex(HPKE.key),
      info: hex(HPKE.info),
      aad: hex(HPKE.aad),
      ephemeralSeed: hex(HPKE.ephemeralSeed),
      enc: hex(hpke.enc),
      ct: hex(hpke.ct),
    },
    'events.json': {
      description:
        'alice founds "vectors", adds bob, removes bob, then adds carol with a key derived from the removal\'s (derivedAdd: HKDF-SHA256(remove.groupKey, info "p2pchat/v1/add-epoch" NUL hex SHA-256 of its payload without keys and keyCommitment), sealed to carol only); each epoch key sealed with fixed ephemeral seeds, in recipient order',
      genesis: eventVector(genesis, GENESIS.groupKey),
      add: eventVector(add, ADD.groupKey),
      remove: eventVector(remove, REMOVE.groupKey),
      derivedAdd: eventVector(derivedAdd, derivedKey),
    },
    'invite.json': {
      description:
        'bob invites to the group of events.json (founded by alice), signed in domain "invite"; the loopback address is left out, and each address loses its /p2p/<bob> suffix inside the invite',
      inviter: 'bob',
      addrsGiven: INVITE_ADDRS(ids.bob, ids.carol),
      invite: encodeInvite(ids.bob, {
        groupId: genesis.id,
        groupName: GENESIS.groupName,
        founder: { peerId: ids.alice.memberId, name: GENESIS.memberName },
        inviter: { peerId: ids.bob.memberId, name: ADD.subjectName },
        addrs: INVITE_ADDRS(ids.bob, ids.carol),
      }),
    },
    'envelope.json': {
      description: 'alice seals a message in the epoch of the add event (message key = HKDF(group key))',
      sender: 'alice',
      group: genesis.id,
      epoch: add.id,
      groupKey: hex(ADD.groupKey),
      messageKey: hex(messageKey),
      seq: ENVELOPE.seq,
      ts: ENVELOPE.ts,
      nonce: hex(ENVELOPE.nonce),
      text: ENVELOPE.text,
      id: decodeEnvelope(envelope).id,
      bytes: hex(envelope),
    },
  }
}

function readVectors(file: string): Vectors {
  return JSON.parse(readFileSync(new URL(file, VECTORS_DIR), 'utf8')) as Vectors
}

type EventName = 'genesis' | 'add' | 'remove' | 'derivedAdd'

interface StoredEvent {
  id: string
  bytes: string
  groupKey: string
}

describe('test vectors', () => {
  it('encoding with fixed keys reproduces the committed vectors exactly', async () => {
    const computed = await computeVectors()
    if (UPDATE) {
      for (const [file, vectors] of Object.entries(computed)) {
        writeFileSync(new URL(file, VECTORS_DIR), `${JSON.stringify(vectors, null, 2)}\n`)
      }
      return
    }
    for (const [file, vectors] of Object.entries(computed)) expect(vectors, file).toEqual(readVectors(file))
  })

  it('the committed signatures verify, each in its own domain only', () => {
    const { identities } = readVectors('identities.json') as {
      identities: Record<Who, { memberIdBytes: string }>
    }
    const { message, signatures } = readVectors('signatures.json') as {
      message: string
      signatures: Record<SignatureDomain, string>
    }
    const alice = fromHex(identities.alice.memberIdBytes)
    for (const domain of DOMAINS) {
      const sig = fromHex(signatures[domain])
      expect(() => verifySignature(alice, domain, fromHex(message), sig)).not.toThrow()
      const other = DOMAINS.find((d) => d !== domain) as SignatureDomain
      expect(() => verifySignature(alice, other, fromHex(message), sig)).toThrow(
        expect.objectContaining({ name: 'InvalidSignatureError' }),
      )
    }
  })

  it('the committed signatures are plain Ed25519 over "p2pchat/v1/<domain>", a zero byte, then the message', () => {
    const { identities } = readVectors('identities.json') as {
      identities: Record<Who, { publicKey: string }>
    }
    const { message, signatures } = readVectors('signatures.json') as {
      message: string
      signatures: Record<SignatureDomain, string>
    }
    const publicKey = createPublicKey({
      key: Buffer.concat([
        Buffer.from('302a300506032b6570032100', 'hex'),
        Buffer.from(identities.alice.publicKey, 'hex'),
      ]),
      format: 'der',
      type: 'spki',
    })
    for (const domain of DOMAINS) {
      const signed = Buffer.concat([Buffer.from(`p2pchat/v1/${domain}\u0000`), Buffer.from(message, 'hex')])
      expect(verify(null, signed, publicKey, Buffer.from(signatures[domain], 'hex')), domain).toBe(true)
    }
  })

  it('the committed invite decodes to what bob signed, addresses with /p2p/<bob> put back', async () => {
    const ids = await fixedIdentities()
    const { invite, addrsGiven } = readVectors('invite.json') as { invite: string; addrsGiven: string[] }
    const events = readVectors('events.json') as Record<'genesis', StoredEvent>
    expect(decodeInvite(invite)).toEqual({
      groupId: events.genesis.id,
      groupName: GENESIS.groupName,
      founder: { peerId: ids.alice.memberId, name: GENESIS.memberName },
      inviter: { peerId: ids.bob.memberId, name: ADD.subjectName },
      addrs: addrsGiven.slice(1),
    })
  })

  it('the committed sealed key opens for its recipient', async () => {
    const ids = await fixedIdentities()
    const v = readVectors('hpke.json') as Record<string, string>
    const sealed = { enc: fromHex(v.enc as string), ct: fromHex(v.ct as string) }
    expect(openKey(ids.bob, sealed, fromHex(v.info as string), fromHex(v.aad as string))).toEqual(
      fromHex(v.key as string),
    )
    expect(() => openKey(ids.alice, sealed, fromHex(v.info as string), fromHex(v.aad as string))).toThrow(
      expect.objectContaining({ name: 'DecryptionError' }),
    )
  })

  it('the committed events decode, verify, keep their ids, and hand each member its epoch key', async () => {
    const ids = await fixedIdentities()
    const stored = readVectors('events.json') as Record<EventName, StoredEvent>
    const decoded = {
      genesis: decodeEvent(fromHex(stored.genesis.bytes)),
      add: decodeEvent(fromHex(stored.add.bytes)),
      remove: decodeEvent(fromHex(stored.remove.bytes)),
      derivedAdd: decodeEvent(fromHex(stored.derivedAdd.bytes)),
    }
    for (const [name, event] of Object.entries(decoded) as Array<[keyof typeof decoded, SignedEvent]>) {
      expect(event.id, name).toBe(stored[name].id)
      expect(event.author).toBe(ids.alice.memberId)
      // every recipient opens the same group key
      for (const key of event.payload.keys) {
        const who = (Object.keys(ids) as Who[]).find(
          (w) => compareBytes(ids[w].memberIdBytes, key.to) === 0,
        ) as Who
        const groupKey = openKey(ids[who], key, EPOCH_KEY_INFO, keyContext(event.payload))
        expect(hex(groupKey), `${name} key for ${who}`).toBe(stored[name].groupKey)
        expect(hex(commitToKey(groupKey)), `${name} commitment`).toBe(
          hex(event.payload.keyCommitment as Uint8Array),
        )
      }
    }
    expect(decoded.add.subject).toBe(ids.bob.memberId)
    expect(String(decoded.add.payload.group)).toBe(stored.genesis.id)
    // the derived add's key: what alice computes from the removal's key, and carol opens
    expect(String(decoded.derivedAdd.payload.base)).toBe(stored.remove.id)
    expect(decoded.derivedAdd.payload.keys).toHaveLength(1)
    expect(hex(derivedKeyOf(fromHex(stored.remove.groupKey), decoded.derivedAdd.payload))).toBe(
      stored.derivedAdd.groupKey,
    )
  })

  it('alice, replaying the committed history, derives the key carol opens', async () => {
    const ids = await fixedIdentities()
    const stored = readVectors('events.json') as Record<EventName, StoredEvent>
    const [alice, carol] = [ids.alice, ids.carol].map((identity) => {
      const group = new Group({ identity, groupId: stored.genesis.id })
      for (const name of ['genesis', 'add', 'remove', 'derivedAdd'] as const)
        group.receiveEvent(fromHex(stored[name].bytes))
      return group
    }) as [Group, Group]
    expect(alice.currentEpoch()?.id).toBe(stored.derivedAdd.id)
    expect(await alice.currentKeyProblem()).toBeUndefined()
    expect(await carol.currentKeyProblem()).toBeUndefined()
    const sealed = await alice.seal('derived')
    expect(await carol.open(sealed.bytes)).toMatchObject({ kind: 'message', text: 'derived' })
  })

  it('a group replays the committed history and opens the committed envelope', async () => {
    const ids = await fixedIdentities()
    const stored = readVectors('events.json') as Record<'genesis' | 'add' | 'remove', StoredEvent>
    const env = readVectors('envelope.json') as Record<string, string | number>
    const bob = new Group({ identity: ids.bob, groupId: stored.genesis.id })
    bob.receiveEvent(fromHex(stored.genesis.bytes))
    bob.receiveEvent(fromHex(stored.add.bytes))
    expect(bob.members().map((m) => m.name)).toEqual(['alice', 'bob'])

    const bytes = fromHex(env.bytes as string)
    const envelope = decodeEnvelope(bytes)
    expect(envelope.id).toBe(env.id)
    expect(envelope.sender).toBe(ids.alice.memberId)
    expect(envelope.epochId).toBe(env.epoch)
    expect(envelope.groupId).toBe(CID.parse(env.group as string).toString())
    expect(openEnvelope(envelope, fromHex(env.messageKey as string))).toEqual({ text: env.text, ts: env.ts })
    expect(await bob.open(bytes)).toMatchObject({ kind: 'message', text: env.text, ts: env.ts, seq: env.seq })

    // after the committed removal, bob can no longer read a new epoch: the history still replays
    bob.receiveEvent(fromHex(stored.remove.bytes))
    expect(bob.isMember()).toBe(false)
    expect(bob.currentEpoch()?.id).toBe(stored.remove.id)
  })
})
