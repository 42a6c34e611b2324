/**
 * Issue 8, attack 8: decoding cost before checking. A maximum-size junk event (1000 sealed keys) cost
 * ~22 ms of CPU to reject for its bad signature, because every member id in it was parsed as a peer id
 * first. Cheap checks now come first: size, then the signature over the raw bytes (the author's key read
 * straight from its bytes), then structure and the member ids. These tests count the member-id parses
 * (`isEd25519MemberId`, which every per-key check goes through) rather than time anything; `npm run
 * bench` shows the time against a bare signature check.
 */
import { CID } from 'multiformats/cid'
import { describe, expect, it, vi } from 'vitest'
import * as crypto from '../../src/crypto/index.js'
import { decodeEnvelope } from '../../src/membership/envelope.js'
import { decodeEvent } from '../../src/membership/event.js'
import { Group, PendingBudget } from '../../src/membership/index.js'
import { junkEnvelope, junkEvent, junkKeys, randomCid } from '../fixtures/junk.js'
import { createScenario, thrown } from '../fixtures/membership.js'

vi.mock('../../src/crypto/index.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/crypto/index.js')>()
  return { ...actual, isEd25519MemberId: vi.fn(actual.isEd25519MemberId) }
})

const memberIdParses = vi.mocked(crypto.isEd25519MemberId)

/** How many member ids `fn` parsed, and what it threw. */
async function parsesOf(fn: () => unknown): Promise<{ parses: number; error: string | undefined }> {
  memberIdParses.mockClear()
  let error: string | undefined
  try {
    await fn()
  } catch (err) {
    error = (err as Error).name
  }
  return { parses: memberIdParses.mock.calls.length, error }
}

describe('attack 8: cheap checks come first', () => {
  it('a maximum-size junk event with a bad signature is rejected without parsing its keys', async () => {
    const [author, forger] = [await crypto.Identity.generate(), await crypto.Identity.generate()]
    const group = randomCid().toString()
    const keys = junkKeys(1000)
    const forged = junkEvent({ group, author, keys, signer: forger })
    expect(await parsesOf(() => decodeEvent(forged))).toEqual({ parses: 0, error: 'InvalidSignatureError' })
    // the same event, signed by its author, does get its member ids parsed: the spy sees them
    const signed = junkEvent({ group, author, keys })
    const { parses } = await parsesOf(() => decodeEvent(signed))
    expect(parses).toBeGreaterThanOrEqual(1000)
  })

  it('a junk event with a good signature whose body cannot apply is not parsed either', async () => {
    const s = await createScenario({ names: ['F', 'A'] })
    const group = new Group({ identity: s.ids.A, groupId: s.groupId, pendingBudget: new PendingBudget() })
    for (const e of s.replicas.F.events()) group.receiveEvent(e.bytes)
    const outsider = await crypto.Identity.generate()
    const keys = junkKeys(1000)
    // on known parents, by an author no event ever added: refused before its keys are parsed
    const onHeads = junkEvent({
      group: s.groupId,
      author: outsider,
      keys,
      // the genesis: its id is the group id
      parents: [CID.parse(s.groupId)],
    })
    expect(await parsesOf(() => group.receiveEvent(onHeads, { from: 'attacker' }))).toEqual({
      parses: 0,
      error: 'NotAMemberError',
    })
    // on unknown parents: it waits (or is refused for room) as a stranger's, unparsed
    const unknownParents = junkEvent({ group: s.groupId, author: outsider, keys })
    expect((await parsesOf(() => group.receiveEvent(unknownParents, { from: 'attacker' }))).parses).toBe(0)
  })

  it('an envelope with a bad signature is rejected without parsing its sender', async () => {
    const [sender, forger] = [await crypto.Identity.generate(), await crypto.Identity.generate()]
    const good = junkEnvelope({ group: randomCid().toString(), sender, size: 60 * 1024 })
    const bad = junkEnvelope({ group: randomCid().toString(), sender: forger, size: 60 * 1024 })
    // forger's envelope, claiming to be sender's: swap the sender field's bytes
    const forged = new Uint8Array(bad)
    forged.set(sender.memberIdBytes, Buffer.from(bad).indexOf(Buffer.from(forger.memberIdBytes)))
    expect(await parsesOf(() => decodeEnvelope(forged))).toEqual({
      parses: 0,
      error: 'InvalidSignatureError',
    })
    expect(await parsesOf(() => decodeEnvelope(good))).toEqual({ parses: 1, error: undefined })
  })

  it('the cheap reading of the author agrees with the full decode', async () => {
    const s = await createScenario({ names: ['F', 'A'] })
    for (const event of s.replicas.F.events()) {
      const decoded = decodeEvent(event.bytes)
      expect(decoded.author).toBe(event.author)
      expect(decoded.author).toBe(s.ids.F.memberId)
      expect(decoded.id).toBe(event.id)
    }
    const bad = await thrown(() => decodeEvent(new Uint8Array([0xa2, 0x63, 0x73, 0x69, 0x67])))
    expect(bad.name).toBe('MalformedError')
  })
})
