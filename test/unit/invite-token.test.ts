import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import {
  decodeInviteToken,
  decodeInviteUse,
  InvalidInviteTokenError,
  InviteTokenUsedError,
  signInviteToken,
  useInviteToken,
  VoidInviteTokenError,
} from '../../src/membership/index.js'
import { createScenario, deliver, identities } from '../fixtures/membership.js'

const GROUP = 'bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmi7mvdvbu'
const OTHER_GROUP = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

async function makeToken(inviter: Identity, group = GROUP, expiresAt = Date.now() + 60_000) {
  const oneTime = await Identity.generate()
  const bytes = signInviteToken(inviter, {
    group,
    key: oneTime.memberIdBytes,
    expiresAt,
    nonce: randomBytes(16),
  })
  return { token: decodeInviteToken(bytes), oneTime, bytes }
}

/** Re-signs nothing: re-encodes the token with one payload field changed, keeping the signature. */
function tamper(bytes: Uint8Array, field: string, value: unknown): Uint8Array {
  const { p, s } = dagCbor.decode(bytes) as { p: Uint8Array; s: Uint8Array }
  const payload = dagCbor.decode(p) as Record<string, unknown>
  return dagCbor.encode({ p: dagCbor.encode({ ...payload, [field]: value }), s })
}

describe('invite token format', () => {
  it('decodes what the inviter signed', async () => {
    const [alice] = (await identities(1)) as [Identity]
    const expiresAt = Date.now() + 1000
    const { token, oneTime } = await makeToken(alice, GROUP, expiresAt)
    expect(token).toMatchObject({ group: GROUP, inviter: alice.memberId, expiresAt })
    expect(Buffer.from(token.key)).toEqual(Buffer.from(oneTime.memberIdBytes))
  })

  it('refuses a tampered expiry, a swapped inviter and a forged signature', async () => {
    const [alice, mallory] = (await identities(2)) as [Identity, Identity]
    const { bytes } = await makeToken(alice)
    const refused = (b: Uint8Array) => expect(() => decodeInviteToken(b)).toThrow(InvalidInviteTokenError)
    refused(tamper(bytes, 'x', Date.now() + 10 ** 10))
    refused(tamper(bytes, 'i', mallory.memberIdBytes))
    refused(tamper(bytes, 'g', CID.parse(OTHER_GROUP)))
    // mallory signs a token naming alice as its inviter
    const { p } = dagCbor.decode(bytes) as { p: Uint8Array }
    refused(dagCbor.encode({ p, s: mallory.sign('invite-token', p) }))
    // alice's signature made for another purpose
    refused(dagCbor.encode({ p, s: alice.sign('invite', p) }))
  })

  it('refuses extra fields, a non-canonical encoding, and junk', async () => {
    const [alice] = (await identities(1)) as [Identity]
    const { bytes } = await makeToken(alice)
    const { p, s } = dagCbor.decode(bytes) as { p: Uint8Array; s: Uint8Array }
    expect(() => decodeInviteToken(dagCbor.encode({ p, s, z: 1 }))).toThrow(InvalidInviteTokenError)
    expect(() => decodeInviteToken(tamper(bytes, 'z', 1))).toThrow(InvalidInviteTokenError)
    expect(() => decodeInviteToken(Uint8Array.of(...bytes, 0))).toThrow(InvalidInviteTokenError)
    expect(() => decodeInviteToken(randomBytes(100))).toThrow(InvalidInviteTokenError)
  })

  it('binds a use to the group and to the joiner that proves the one-time key', async () => {
    const [alice, bob, eve] = (await identities(3)) as [Identity, Identity, Identity]
    const { token, oneTime } = await makeToken(alice)
    const use = useInviteToken(oneTime, token, bob.memberIdBytes)
    expect(decodeInviteUse(use, { group: GROUP, joiner: bob.memberIdBytes }).id).toBe(token.id)
    // wrong group
    expect(() => decodeInviteUse(use, { group: OTHER_GROUP, joiner: bob.memberIdBytes })).toThrow(
      InvalidInviteTokenError,
    )
    // eve replays bob's use (seen in his join request) under her own identity
    expect(() => decodeInviteUse(use, { group: GROUP, joiner: eve.memberIdBytes })).toThrow(
      InvalidInviteTokenError,
    )
    // eve proves with her own key for bob's token: not the token's key
    expect(() => useInviteToken(eve, token, eve.memberIdBytes)).toThrow(InvalidInviteTokenError)
    const { t } = dagCbor.decode(use) as { t: Uint8Array }
    const eveProof = eve.sign('invite-proof', dagCbor.encode([token.id, eve.memberIdBytes]))
    expect(() =>
      decodeInviteUse(dagCbor.encode({ t, u: eveProof }), { group: GROUP, joiner: eve.memberIdBytes }),
    ).toThrow(InvalidInviteTokenError)
  })
})

describe('adds by invite token', () => {
  async function setup() {
    const s = await createScenario({
      names: ['alice', 'bob', 'carol', 'dan', 'erin'],
      members: ['alice', 'bob', 'carol'],
    })
    const { token, oneTime } = await makeToken(s.ids.alice, s.groupId)
    const useBy = (joiner: Identity) => useInviteToken(oneTime, token, joiner.memberIdBytes)
    return { ...s, token, useBy }
  }

  it('admits with a token, and refuses a second use causally after the first', async () => {
    const { replicas, ids, useBy } = await setup()
    await replicas.bob.add(ids.dan.memberId, 'dan', { invite: useBy(ids.dan) })
    expect(replicas.bob.isMember(ids.dan.memberId)).toBe(true)
    deliver(replicas.bob, replicas.carol)
    await expect(replicas.carol.add(ids.erin.memberId, 'erin', { invite: useBy(ids.erin) })).rejects.toThrow(
      InviteTokenUsedError,
    )
    expect(replicas.carol.isMember(ids.erin.memberId)).toBe(false)
  })

  it('two members admitting two joiners with one token concurrently: one counts, the same at every replica', async () => {
    const { replicas, ids, useBy, all } = await setup()
    const byBob = await replicas.bob.add(ids.dan.memberId, 'dan', { invite: useBy(ids.dan) })
    const byCarol = await replicas.carol.add(ids.erin.memberId, 'erin', { invite: useBy(ids.erin) })
    for (const r of all) {
      deliver(replicas.bob, r)
      deliver(replicas.carol, r)
    }
    const winner = byBob.id < byCarol.id ? ids.dan : ids.erin
    const loser = winner === ids.dan ? ids.erin : ids.dan
    for (const r of all) {
      expect(r.isMember(winner.memberId)).toBe(true)
      expect(r.isMember(loser.memberId)).toBe(false)
    }
  })

  it('a token from an inviter removed before the add is refused; removed concurrently, the add does not count', async () => {
    const { replicas, ids, useBy, all } = await setup()
    await replicas.bob.remove(ids.alice.memberId)
    deliver(replicas.bob, replicas.carol)
    await expect(replicas.carol.add(ids.dan.memberId, 'dan', { invite: useBy(ids.dan) })).rejects.toThrow(
      VoidInviteTokenError,
    )
    // concurrently: carol admits before she learns that bob removed alice
    const s = await setup()
    await s.replicas.bob.remove(s.ids.alice.memberId)
    await s.replicas.carol.add(s.ids.dan.memberId, 'dan', { invite: s.useBy(s.ids.dan) })
    expect(s.replicas.carol.isMember(s.ids.dan.memberId)).toBe(true)
    for (const r of s.all) {
      deliver(s.replicas.bob, r)
      deliver(s.replicas.carol, r)
      expect(r.isMember(s.ids.dan.memberId)).toBe(false)
    }
    expect(all.length).toBe(5)
  })

  it('refuses an add whose token is proved for another joiner, or made for another group', async () => {
    const { replicas, ids, useBy, groupId } = await setup()
    await expect(replicas.bob.add(ids.erin.memberId, 'erin', { invite: useBy(ids.dan) })).rejects.toThrow(
      InvalidInviteTokenError,
    )
    const other = await makeToken(ids.alice, OTHER_GROUP)
    const use = useInviteToken(other.oneTime, other.token, ids.dan.memberIdBytes)
    expect(groupId).not.toBe(OTHER_GROUP)
    await expect(replicas.bob.add(ids.dan.memberId, 'dan', { invite: use })).rejects.toThrow(
      InvalidInviteTokenError,
    )
  })
})

describe('one-time keys', () => {
  it('an identity restored from its seed is the same identity', async () => {
    const a = await Identity.generate()
    expect(Identity.fromSeed(a.seed).memberId).toBe(a.memberId)
  })
})
