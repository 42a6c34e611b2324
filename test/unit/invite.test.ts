/**
 * The invite codec: what an invite carries, that nobody can alter it on its way (a signature by its
 * inviter over the exact bytes, strict decoding), which addresses it carries, and how a lie about the
 * founder is caught once the genesis is known.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { multiaddr } from '@multiformats/multiaddr'
import { beforeAll, describe, expect, it } from 'vitest'
import { cidOf, Identity } from '../../src/crypto/index.js'
import { decodeInviteToken, signInviteToken } from '../../src/membership/index.js'
import {
  decodeInvite,
  encodeInvite,
  forgedClaim,
  INVITE_PREFIX,
  type Invite,
  MAX_INVITE_ADDRS,
} from '../../src/node/invite.js'
import { identities } from '../fixtures/membership.js'

const GROUP_ID = cidOf(new TextEncoder().encode('a genesis')).toString()
/** Characters of the typical invite below (README, "Invites", states it). */
const TYPICAL_INVITE_LENGTH = 407

let alice: Identity
let bob: Identity
let relay: Identity

beforeAll(async () => {
  ;[alice, bob, relay] = (await identities(3)) as [Identity, Identity, Identity]
})

/** bob's invite to alice's group `team`, with `addrs` (libp2p's form, `/p2p/<bob>` at the end). */
function bobsInvite(addrs: string[] = []): Invite {
  return {
    groupId: GROUP_ID,
    groupName: 'team',
    founder: { peerId: alice.memberId, name: 'alice' },
    inviter: { peerId: bob.memberId, name: 'bob' },
    addrs,
  }
}

const own = (addr: string): string => `${addr}/p2p/${bob.memberId}`
const typicalAddrs = (): string[] => [
  own('/ip4/192.168.1.20/tcp/4555'),
  own('/ip4/10.0.0.5/tcp/4555'),
  own(`/ip4/203.0.113.5/tcp/4001/p2p/${relay.memberId}/p2p-circuit`),
]

const bytesOf = (text: string): Uint8Array =>
  new Uint8Array(Buffer.from(text.slice(INVITE_PREFIX.length), 'base64url'))
const textOf = (bytes: Uint8Array): string => INVITE_PREFIX + Buffer.from(bytes).toString('base64url')

/** An invite built by hand, properly signed by `signer`: only the decoder's own checks can refuse it. */
function signedRaw(signer: Identity, payload: Record<string, unknown>): string {
  const p = dagCbor.encode(payload)
  return textOf(dagCbor.encode({ p, s: signer.sign('invite', p) }))
}

function rawPayload(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const decoded = dagCbor.decode(bytesOf(encodeInvite(bob, bobsInvite(typicalAddrs())))) as { p: Uint8Array }
  return { ...(dagCbor.decode(decoded.p) as Record<string, unknown>), ...overrides }
}

/** The error `run` throws; fails the test when it throws nothing. */
function errorOf(run: () => unknown): Error {
  try {
    run()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected an error, but nothing was thrown')
}

function expectRefused(text: string, message?: RegExp): void {
  const err = errorOf(() => decodeInvite(text))
  expect(err.name, `${err.message} for ${text}`).toBe('InvalidInviteError')
  // one line the CLI prints as is
  expect(err.message).not.toContain('\n')
  if (message !== undefined) expect(err.message).toMatch(message)
}

describe('invites: what they carry', () => {
  it('decodes to what the inviter signed: group, founder, inviter, and addresses with /p2p/<inviter>', () => {
    const text = encodeInvite(bob, bobsInvite(typicalAddrs()))
    expect(text.startsWith(INVITE_PREFIX)).toBe(true)
    expect(decodeInvite(text)).toEqual(bobsInvite(typicalAddrs()))
    // pasted with the line break and spaces a terminal adds
    expect(decodeInvite(`  ${text}\n`)).toEqual(bobsInvite(typicalAddrs()))
  })

  it('is one line of a few hundred characters for 2 TCP addresses and a relay circuit', () => {
    const text = encodeInvite(bob, bobsInvite(typicalAddrs()))
    expect(text).toMatch(/^p2pchat2:[A-Za-z0-9_-]+$/)
    expect(text.length).toBe(TYPICAL_INVITE_LENGTH)
  })

  it('carries addresses as multiaddr bytes without the /p2p/<inviter> suffix', () => {
    const text = encodeInvite(bob, bobsInvite(typicalAddrs()))
    const { a, i } = rawPayload()
    expect(i).toEqual(bob.memberIdBytes)
    expect((a as Uint8Array[]).map((bytes) => multiaddr(bytes).toString())).toEqual(
      typicalAddrs().map((addr) => addr.slice(0, -`/p2p/${bob.memberId}`.length)),
    )
    // bob's id is in the invite once, as the inviter
    expect(
      Buffer.from(bytesOf(text)).toString('hex').split(Buffer.from(bob.memberIdBytes).toString('hex')),
    ).toHaveLength(2)
  })

  it('leaves loopback addresses out when there are others: the invite goes to another host', () => {
    const addrs = [
      own('/ip4/127.0.0.1/tcp/4555'),
      own('/ip6/::1/tcp/4556'),
      own('/ip4/192.168.1.20/tcp/4555'),
      // a circuit through a relay on this host is loopback too
      own(`/ip4/127.0.0.1/tcp/4001/p2p/${relay.memberId}/p2p-circuit`),
    ]
    expect(decodeInvite(encodeInvite(bob, bobsInvite(addrs))).addrs).toEqual([
      own('/ip4/192.168.1.20/tcp/4555'),
    ])
  })

  it('keeps loopback addresses when they are all there is (peers on one host, as in tests)', () => {
    const addrs = [
      own('/ip4/127.0.0.1/tcp/4555'),
      own(`/ip4/127.0.0.1/tcp/4001/p2p/${relay.memberId}/p2p-circuit`),
    ]
    expect(decodeInvite(encodeInvite(bob, bobsInvite(addrs))).addrs).toEqual(addrs)
  })

  it(`carries at most ${MAX_INVITE_ADDRS} addresses, relayed ones not crowded out by many interfaces`, () => {
    const direct = [1, 2, 3, 4, 5, 6].map((n) => own(`/ip4/192.168.${n}.20/tcp/4555`))
    const circuits = [1, 2].map((n) => own(`/ip4/203.0.113.${n}/tcp/4001/p2p/${relay.memberId}/p2p-circuit`))
    const { addrs } = decodeInvite(encodeInvite(bob, bobsInvite([...direct, ...circuits])))
    expect(addrs).toEqual([direct[0], direct[1], circuits[0], circuits[1]])
  })

  it('leaves out addresses that cannot reach the inviter: another peer, or a circuit through no named relay', () => {
    const addrs = [
      `/ip4/192.168.1.20/tcp/4555/p2p/${relay.memberId}`,
      own('/ip4/203.0.113.5/tcp/4001/p2p-circuit'),
      'not a multiaddr',
      own('/ip4/192.168.1.21/tcp/4555'),
    ]
    expect(decodeInvite(encodeInvite(bob, bobsInvite(addrs))).addrs).toEqual([
      own('/ip4/192.168.1.21/tcp/4555'),
    ])
  })

  it('is signed by its inviter only', () => {
    expect(errorOf(() => encodeInvite(alice, bobsInvite())).name).toBe('InvalidArgumentError')
  })
})

describe('invites: damaged or tampered ones are refused', () => {
  it('refuses every invite with one byte changed, whichever byte', () => {
    const bytes = bytesOf(encodeInvite(bob, bobsInvite(typicalAddrs())))
    for (let i = 0; i < bytes.length; i++) {
      const tampered = bytes.slice()
      tampered[i] = (tampered[i] as number) ^ 0x01
      expectRefused(textOf(tampered))
    }
  })

  it('says a changed invite was changed after it was made, not merely mistyped', () => {
    const text = encodeInvite(bob, bobsInvite())
    const bytes = bytesOf(text)
    // the group name "team" becomes "tean": still a well-formed invite, but not the one bob signed
    const at = Buffer.from(bytes).indexOf('team')
    bytes[at + 3] = 'n'.charCodeAt(0)
    expectRefused(textOf(bytes), /changed after it was made.*ask the inviter for a new one/)
  })

  it('refuses an invite whose signature is by someone other than the inviter it names', () => {
    const decoded = dagCbor.decode(bytesOf(encodeInvite(bob, bobsInvite()))) as { p: Uint8Array }
    expectRefused(textOf(dagCbor.encode({ p: decoded.p, s: alice.sign('invite', decoded.p) })), /signature/)
  })

  it('refuses a signature made for another purpose (domain separation)', () => {
    const decoded = dagCbor.decode(bytesOf(encodeInvite(bob, bobsInvite()))) as { p: Uint8Array }
    expectRefused(
      textOf(dagCbor.encode({ p: decoded.p, s: bob.sign('join-request', decoded.p) })),
      /signature/,
    )
  })

  it('refuses trailing junk after the CBOR value', () => {
    const bytes = bytesOf(encodeInvite(bob, bobsInvite()))
    expectRefused(textOf(new Uint8Array([...bytes, 0x00])), /damaged/)
    expectRefused(textOf(new Uint8Array([...bytes, ...dagCbor.encode('more')])), /damaged/)
  })

  it('refuses trailing junk after the base64url text', () => {
    const text = encodeInvite(bob, bobsInvite())
    for (const junk of ['!', ' x', '=', '==', 'A', 'AA', 'AAAA', `\t${text}`, '/invite']) {
      expectRefused(`${text}${junk}`, /damaged/)
    }
  })

  it('refuses base64url that does not round-trip exactly (padding, other alphabet, stray bits)', () => {
    const text = encodeInvite(bob, bobsInvite())
    expectRefused(
      text.replace(/[-_]/, (c) => (c === '-' ? '+' : '/')),
      /damaged/,
    )
    expectRefused(`${text.slice(0, 20)}\n${text.slice(20)}`, /damaged/)
    // the last character carries bits past the end of the bytes unless it is exactly right
    const body = text.slice(INVITE_PREFIX.length)
    if (body.length % 4 !== 0) {
      const last = body.at(-1) as string
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const next = alphabet[(alphabet.indexOf(last) + 1) % 64] as string
      expectRefused(`${text.slice(0, -1)}${next}`, /damaged/)
    }
  })

  it('refuses a cut-off invite', () => {
    const text = encodeInvite(bob, bobsInvite(typicalAddrs()))
    for (const keep of [INVITE_PREFIX.length, 20, Math.floor(text.length / 2), text.length - 1]) {
      expectRefused(text.slice(0, keep), /damaged/)
    }
  })

  it('refuses a non-canonical encoding of the same content', () => {
    const bytes = bytesOf(encodeInvite(bob, bobsInvite()))
    // the signature's length (64) as a two-byte integer: the same value, other bytes
    const sigHeader = Buffer.from(bytes).indexOf(Buffer.from([0x61, 0x73, 0x58, 0x40]))
    expect(sigHeader).toBeGreaterThan(0)
    const longForm = new Uint8Array([
      ...bytes.slice(0, sigHeader + 2),
      0x59,
      0x00,
      0x40,
      ...bytes.slice(sigHeader + 4),
    ])
    expectRefused(textOf(longForm), /damaged/)
  })

  it('refuses a signed invite with a field too many or too few', () => {
    expectRefused(signedRaw(bob, rawPayload({ x: 1 })), /other fields/)
    const { fn: _fn, ...withoutFounderName } = rawPayload()
    expectRefused(signedRaw(bob, withoutFounderName), /other fields/)
  })

  it(`refuses a signed invite with more than ${MAX_INVITE_ADDRS} addresses, or one still ending in /p2p/`, () => {
    const one = multiaddr('/ip4/192.168.1.20/tcp/4555').bytes
    expectRefused(
      signedRaw(bob, rawPayload({ a: Array(MAX_INVITE_ADDRS + 1).fill(one) })),
      /too many addresses/,
    )
    const withSuffix = multiaddr(own('/ip4/192.168.1.20/tcp/4555')).bytes
    expectRefused(signedRaw(bob, rawPayload({ a: [withSuffix] })), /address/)
    expectRefused(signedRaw(bob, rawPayload({ a: ['/ip4/192.168.1.20/tcp/4555'] })), /address/)
  })

  it('says an old p2pchat1: invite is out of date, in one line', () => {
    expectRefused(
      'p2pchat1:pGFhgXhRL2lwNC8xMjcuMC4wLjEvdGNwLzQ1NTUvcDJwLzEyRDNLb29XSlBzUnV4cX',
      /older p2pchat.*new one/,
    )
  })

  it('says what an invite looks like when given something else', () => {
    expectRefused('hello', /not an invite: an invite starts with p2pchat2:/)
    expectRefused(`${INVITE_PREFIX}${'A'.repeat(5000)}`, /longer than any invite/)
  })
})

describe('invites: a lie about the founder', () => {
  it('holds when the genesis agrees with the invite', () => {
    expect(
      forgedClaim(bobsInvite(), { groupName: 'team', founder: { peerId: alice.memberId, name: 'alice' } }),
    ).toBeUndefined()
  })

  it('is caught when the genesis names another founder, or the same founder by another name', () => {
    const impostor = { groupName: 'team', founder: { peerId: relay.memberId, name: 'alice' } }
    expect(forgedClaim(bobsInvite(), impostor)).toEqual({
      groupName: 'team',
      founder: { peerId: alice.memberId, name: 'alice' },
    })
    expect(
      forgedClaim(bobsInvite(), { groupName: 'team', founder: { peerId: alice.memberId, name: 'al' } }),
    ).toBeDefined()
    expect(
      forgedClaim(bobsInvite(), { groupName: 'teams', founder: { peerId: alice.memberId, name: 'alice' } }),
    ).toBeDefined()
  })
})

describe('invites that admit on their own', () => {
  /** A token by `signer` for `group`, and the seed of its one-time key. */
  function admits(signer: Identity, group = GROUP_ID, seed = new Uint8Array(32).fill(7)) {
    const bytes = signInviteToken(signer, {
      group,
      key: Identity.fromSeed(seed).memberIdBytes,
      expiresAt: 1_800_000_000_000,
      nonce: new Uint8Array(16).fill(1),
    })
    return { token: decodeInviteToken(bytes), seed }
  }
  /** bob's invite with `parts` as its token and seed, his signature over the rest intact. */
  function withParts(t: Uint8Array, k: Uint8Array): string {
    const { p, s } = dagCbor.decode(bytesOf(encodeInvite(bob, bobsInvite()))) as {
      p: Uint8Array
      s: Uint8Array
    }
    return textOf(dagCbor.encode({ p, s, t, k }))
  }

  it('carries the token and the seed, and decodes them', () => {
    const invite = decodeInvite(encodeInvite(bob, { ...bobsInvite(), admits: admits(bob) }))
    expect(invite.admits?.token.inviter).toBe(bob.memberId)
    expect(invite.admits?.token.group).toBe(GROUP_ID)
    expect(invite.admits?.seed).toEqual(new Uint8Array(32).fill(7))
  })

  it("refuses a token for another group, another inviter's token, a seed not the token's, and a half", () => {
    const otherGroup = cidOf(new TextEncoder().encode('another genesis')).toString()
    const altered = /does not match its signature/
    const mine = admits(bob)
    expect(() => decodeInvite(withParts(admits(bob, otherGroup).token.bytes, mine.seed))).toThrow(altered)
    expect(() => decodeInvite(withParts(admits(alice).token.bytes, mine.seed))).toThrow(altered)
    expect(() => decodeInvite(withParts(mine.token.bytes, new Uint8Array(32).fill(8)))).toThrow(altered)
    const { p, s } = dagCbor.decode(bytesOf(encodeInvite(bob, bobsInvite()))) as {
      p: Uint8Array
      s: Uint8Array
    }
    expect(() => decodeInvite(textOf(dagCbor.encode({ p, s, t: mine.token.bytes })))).toThrow(/damaged/)
    expect(() =>
      encodeInvite(alice, { ...bobsInvite(), inviter: { peerId: alice.memberId, name: 'a' }, admits: mine }),
    ).toThrow(/own inviter/)
  })
})
