/**
 * The relay's admission policy on its own (src/relay/admission.ts): who gets a slot and storage, who is
 * evicted to make room, and who expires. Pure: group ids, founders and members are plain strings.
 */
import { describe, expect, it } from 'vitest'
import {
  type AdmissionLimits,
  admissionLimits,
  GroupAdmission,
  PENDING_BYTES_PER_GROUP,
} from '../../src/relay/admission.js'
import { InvalidRelayInitError, QuotaExceededError } from '../../src/relay/errors.js'

const DAY = 24 * 60 * 60 * 1000
const MiB = 1024 * 1024

/** 8 slots (2 reserved for groups on probation), 16 KiB of storage (1 KiB reserved). */
function small(overrides: Partial<AdmissionLimits> = {}): GroupAdmission {
  return new GroupAdmission({
    ...admissionLimits({ maxGroups: 8, maxStorage: 16 * 1024, maxFounderGroups: 3, maxMemory: 16 * MiB }),
    ...overrides,
  })
}

/** Admits `id`, founded by `founder` at `at`, and carries out the evictions; returns them. */
function admit(admission: GroupAdmission, id: string, founder: string, at: number): string[] {
  const evicted = admission.admit(id, { founder, since: at, active: [founder] })
  for (const other of evicted) admission.remove(other)
  return evicted
}

/** A group with two active members: founder `f-<id>` and `m-<id>`. */
function established(admission: GroupAdmission, id: string, at: number): string[] {
  const evicted = admit(admission, id, `f-${id}`, at)
  for (const other of admission.touch(id, `m-${id}`, at)) {
    admission.remove(other)
    evicted.push(other)
  }
  return evicted
}

describe('admission limits', () => {
  it('has the documented defaults', () => {
    const limits = admissionLimits()
    expect(limits).toMatchObject({
      maxGroups: 1000,
      probationGroups: 250,
      maxStorage: 1024 * MiB,
      probationStorage: 64 * MiB,
      maxGroupStorage: 256 * MiB,
      maxFounderGroups: 8,
      maxFounderStorage: 256 * MiB,
      probationIdleMs: DAY,
      idleMs: 30 * DAY,
      returnAfterMs: DAY,
    })
    // 256 MiB of memory, less the pending buffers of 1000 slots and 64 groups waiting for a genesis
    expect(limits.maxEventMemory).toBe(256 * MiB - 1064 * PENDING_BYTES_PER_GROUP)
    expect(limits.maxEventMemory / MiB).toBeGreaterThan(150)
    expect(limits.probationEventMemory).toBe(Math.floor(limits.maxEventMemory / 4))
  })

  it('refuses a memory budget that does not cover the pending buffers of every slot', () => {
    expect(() => admissionLimits({ maxMemory: 64 * MiB })).toThrow(
      expect.objectContaining({ name: InvalidRelayInitError.name }),
    )
    expect(() => admissionLimits({ maxGroups: 0 })).toThrow(
      expect.objectContaining({ name: InvalidRelayInitError.name }),
    )
  })
})

describe('group slots', () => {
  it('always admits a new group; a flood of new groups only churns the groups on probation', () => {
    const admission = small()
    for (let k = 0; k < 6; k++) established(admission, `legit-${k}`, k)
    // the established ones may not use the 2 slots reserved for new groups
    expect(established(admission, 'legit-6', 6)).toEqual(['legit-0'])
    for (let k = 0; k < 50; k++) admit(admission, `junk-${k}`, `attacker-${k}`, 100 + k)
    expect(admission.size).toBe(8)
    for (let k = 1; k <= 6; k++) expect(admission.standing(`legit-${k}`)).toBe('established')
    expect(['junk-48', 'junk-49'].map((id) => admission.standing(id))).toEqual(['probation', 'probation'])
    // a new group still gets in, at the expense of the idlest new group
    expect(admit(admission, 'new', 'founder', 200)).toEqual(['junk-48'])
  })

  it('makes room among established groups, idlest first, when a group becomes established', () => {
    const admission = small()
    for (let k = 0; k < 6; k++) established(admission, `junk-${k}`, 10 - k)
    admit(admission, 'legit', 'alice', 20)
    // junk-5 was active longest ago
    expect(admission.touch('legit', 'bob', 21)).toEqual(['junk-5'])
  })

  it('evicts groups whose members came back last', () => {
    const admission = small()
    established(admission, 'old-friends', 0)
    admission.touch('old-friends', 'f-old-friends', 2 * DAY)
    expect(admission.standing('old-friends')).toBe('returning')
    for (let k = 0; k < 5; k++) established(admission, `junk-${k}`, 3 * DAY + k)
    // the friends were idle longest, but junk that never came back goes first
    expect(established(admission, 'junk-5', 3 * DAY + 10)).toEqual(['junk-0'])
    expect(admission.has('old-friends')).toBe(true)
  })

  it("holds a founder's groups to a quota, evicting the founder's own idlest", () => {
    const admission = small()
    admit(admission, 'other', 'someone', 0)
    for (let k = 0; k < 3; k++) admit(admission, `mine-${k}`, 'mallory', 1 + k)
    expect(admit(admission, 'mine-3', 'mallory', 10)).toEqual(['mine-0'])
    expect(admission.has('other')).toBe(true)
  })
})

describe('storage', () => {
  it('evicts junk to store a legitimate group, never the group itself, and refuses past a cap', () => {
    const admission = small()
    // 5 established junk groups of 3 KiB fill what established groups may use (15 of 16 KiB)
    for (let k = 0; k < 5; k++) {
      established(admission, `junk-${k}`, k)
      admission.add(`junk-${k}`, 3 * 1024, false)
    }
    expect(() => admission.makeRoom('junk-4', 1, false)).not.toThrow()
    // a new group finds the reserved KiB
    admit(admission, 'legit', 'alice', 10)
    expect(admission.makeRoom('legit', 1024, true)).toEqual([])
    admission.add('legit', 1024, true)
    // over the reserve, a group on probation can only evict groups on probation: there are none
    expect(() => admission.makeRoom('legit', 1024, false)).toThrow(
      expect.objectContaining({ name: QuotaExceededError.name }),
    )
    // once established, it evicts the idlest junk
    expect(admission.touch('legit', 'bob', 11)).toEqual(['junk-0'])
    admission.remove('junk-0')
    expect(admission.makeRoom('legit', 3 * 1024, false)).toEqual(['junk-1'])
    admission.remove('junk-1')
    admission.add('legit', 3 * 1024, false)
    // but never beyond its own cap of a quarter of the storage
    expect(() => admission.makeRoom('legit', 1, false)).toThrow(
      'group legit is at its storage cap of 4096 bytes',
    )
  })

  it("holds a founder's groups to a storage quota, evicting the founder's own groups first", () => {
    const admission = small({ maxFounderStorage: 3 * 1024 })
    admit(admission, 'other', 'someone', 0)
    admission.add('other', 2048, false)
    admit(admission, 'a', 'mallory', 1)
    admission.add('a', 2048, false)
    admit(admission, 'b', 'mallory', 2)
    expect(admission.makeRoom('b', 2048, false)).toEqual(['a'])
    admission.remove('a')
    admission.add('b', 2048, false)
    expect(() => admission.makeRoom('b', 2048, false)).toThrow(/founded by mallory are at their storage cap/)
  })

  it('counts events against the memory budget', () => {
    const admission = small({ maxEventMemory: 8 * 1024, probationEventMemory: 2 * 1024 })
    for (let k = 0; k < 2; k++) {
      established(admission, `e-${k}`, k)
      admission.add(`e-${k}`, 3 * 1024, true)
    }
    // 6 of the 6 KiB established groups may hold in memory are used: another event evicts the idlest
    expect(admission.makeRoom('e-1', 512, true)).toEqual(['e-0'])
    // envelopes are not held in memory
    expect(admission.makeRoom('e-1', 512, false)).toEqual([])
  })
})

describe('expiry', () => {
  it('drops a group on probation after a day without activity, any group after idleMs', () => {
    const admission = small()
    admit(admission, 'lonely', 'alice', 0)
    established(admission, 'busy', 0)
    expect(admission.expired(DAY - 1)).toEqual([])
    expect(admission.expired(DAY)).toEqual(['lonely'])
    admission.touch('busy', 'm-busy', 20 * DAY)
    expect(admission.expired(49 * DAY)).toEqual(['lonely'])
    expect(admission.expired(50 * DAY)).toEqual(['lonely', 'busy'])
  })
})
