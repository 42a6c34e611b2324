/**
 * Which groups a relay keeps, and which it evicts to make room: the admission policy, pure (no I/O), so
 * the relay feeds it what happened and carries out what it decides.
 *
 * A stranger's identities cost nothing, so nothing a group shows about itself proves it is wanted: a
 * genesis, adds and messages can all come from one attacker's throwaway keys. What the policy can do is
 * make junk lose every comparison with a group in use, and cap what any one founder or group holds:
 *
 * - **Standing.** A group on *probation* has had member activity (stored events, stored envelopes, syncs
 *   by a member) from fewer than 2 distinct members. It is *established* from 2, and *returning* once that
 *   activity also spans {@link AdmissionLimits.returnAfterMs} (members came back).
 * - **Reserve.** A quarter of the group slots, a sixteenth of the storage and a quarter of the event
 *   memory are reserved for groups on probation: established groups never use them, so a new group always
 *   finds room, however many established groups an attacker keeps alive.
 * - **Eviction.** When something must go, it is the group of lowest standing, and among equals the one
 *   whose last member activity is oldest (LRU). A group on probation makes room only among groups on
 *   probation, so a flood of new groups only churns the reserve; an established group may evict any group
 *   but itself. A group is never evicted to make room for itself.
 * - **Quotas.** Per group (storage), per founder (groups and storage: the founder's own groups are
 *   evicted first), and the totals (slots, storage, event memory).
 * - **Expiry.** A group on probation idle for {@link AdmissionLimits.probationIdleMs}, any group idle for
 *   {@link AdmissionLimits.idleMs}, is dropped with everything stored for it.
 *
 * @packageDocumentation
 */

import { MAX_ENVELOPE_BYTES } from '../membership/index.js'
import { DEFAULT_MAX_GROUPS, DEFAULT_MAX_MEMORY, DEFAULT_MAX_STORAGE } from './defaults.js'
import { InvalidRelayInitError, QuotaExceededError } from './errors.js'

export { DEFAULT_MAX_GROUPS, DEFAULT_MAX_MEMORY, DEFAULT_MAX_STORAGE }

const DAY_MS = 24 * 60 * 60 * 1000

/** Default groups held, in memory only, while their genesis has not arrived. */
export const DEFAULT_MAX_PENDING_GROUPS = 64
/** Default groups one founder may have held. */
export const DEFAULT_MAX_FOUNDER_GROUPS = 8
/** Default idle time after which a group is dropped: the default retention of envelopes, 30 days. */
export const DEFAULT_IDLE_MS = 30 * DAY_MS

/** Events with unknown parents a relay buffers per group. */
export const PENDING_EVENTS_PER_GROUP = 32
/** Bytes of events with unknown parents a relay buffers per group. */
export const PENDING_EVENT_BYTES_PER_GROUP = 32 * 1024
/** Envelopes under an unknown epoch a relay buffers per group. */
export const PENDING_MESSAGES_PER_GROUP = 1
/** Memory set aside per group (held or waiting for its genesis) for its pending buffers, at most. */
export const PENDING_BYTES_PER_GROUP =
  PENDING_EVENT_BYTES_PER_GROUP + PENDING_MESSAGES_PER_GROUP * MAX_ENVELOPE_BYTES

/** Options of {@link admissionLimits}; everything left out takes its default. */
export interface AdmissionInit {
  /** Total bytes of stored envelopes and events. Default {@link DEFAULT_MAX_STORAGE}. */
  maxStorage?: number
  /** Stored bytes per group. Default a quarter of `maxStorage`. */
  maxGroupStorage?: number
  /** Memory for group data: events held in memory plus every pending buffer. Default {@link DEFAULT_MAX_MEMORY}. */
  maxMemory?: number
  /** Groups held. Default {@link DEFAULT_MAX_GROUPS}. */
  maxGroups?: number
  /** Groups waiting for their genesis. Default {@link DEFAULT_MAX_PENDING_GROUPS}. */
  maxPendingGroups?: number
  /** Groups per founder. Default {@link DEFAULT_MAX_FOUNDER_GROUPS}. */
  maxFounderGroups?: number
  /** Stored bytes over one founder's groups. Default `maxGroupStorage`. */
  maxFounderStorage?: number
  /** Idle time after which any group is dropped, in ms. Default {@link DEFAULT_IDLE_MS}. */
  idleMs?: number
}

/** The limits {@link GroupAdmission} enforces, all resolved. */
export interface AdmissionLimits {
  /** Group slots, over both standings. */
  maxGroups: number
  /** Slots only groups on probation may use. */
  probationGroups: number
  maxStorage: number
  /** Storage only groups on probation may use. */
  probationStorage: number
  maxGroupStorage: number
  maxFounderGroups: number
  maxFounderStorage: number
  /** Event bytes held in memory, over all groups: the memory budget less every pending buffer. */
  maxEventMemory: number
  /** Event memory only groups on probation may use. */
  probationEventMemory: number
  /** Idle time after which a group on probation is dropped. */
  probationIdleMs: number
  /** Idle time after which any group is dropped. */
  idleMs: number
  /** Member activity spanning this long makes an established group a returning one. */
  returnAfterMs: number
}

/**
 * Resolves the limits of a relay from its options.
 *
 * @throws {InvalidRelayInitError} a limit is not a positive integer, or the memory budget does not cover
 *   the pending buffers of every group slot
 */
export function admissionLimits(init: AdmissionInit = {}): AdmissionLimits {
  for (const [key, value] of Object.entries(init)) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      throw new InvalidRelayInitError(`${key} must be a positive integer, got ${String(value)}`)
    }
  }
  const maxStorage = init.maxStorage ?? DEFAULT_MAX_STORAGE
  const maxGroups = init.maxGroups ?? DEFAULT_MAX_GROUPS
  const maxMemory = init.maxMemory ?? DEFAULT_MAX_MEMORY
  const pendingBuffers =
    (maxGroups + (init.maxPendingGroups ?? DEFAULT_MAX_PENDING_GROUPS)) * PENDING_BYTES_PER_GROUP
  const maxEventMemory = maxMemory - pendingBuffers
  if (maxEventMemory < PENDING_BYTES_PER_GROUP) {
    throw new InvalidRelayInitError(
      `a memory budget of ${maxMemory} bytes does not cover the pending buffers of ${maxGroups} groups (${pendingBuffers} bytes): raise it, or lower the number of groups`,
    )
  }
  const maxGroupStorage = init.maxGroupStorage ?? Math.floor(maxStorage / 4)
  const idleMs = init.idleMs ?? DEFAULT_IDLE_MS
  return {
    maxGroups,
    probationGroups: Math.max(1, Math.floor(maxGroups / 4)),
    maxStorage,
    probationStorage: Math.floor(maxStorage / 16),
    maxGroupStorage,
    maxFounderGroups: init.maxFounderGroups ?? DEFAULT_MAX_FOUNDER_GROUPS,
    maxFounderStorage: init.maxFounderStorage ?? maxGroupStorage,
    maxEventMemory,
    probationEventMemory: Math.floor(maxEventMemory / 4),
    probationIdleMs: Math.min(idleMs, DAY_MS),
    idleMs,
    returnAfterMs: DAY_MS,
  }
}

/** Where a group stands; a lower standing is evicted first. */
export type Standing = 'probation' | 'established' | 'returning'
const RANK: Record<Standing, number> = { probation: 0, established: 1, returning: 2 }

/** What the relay knows of a group when it admits it (a new genesis, or a group restored after a restart). */
export interface AdmittedGroup {
  founder: string
  /** When the relay first stored its genesis. */
  since: number
  /** Last member activity. Default `since`. */
  lastActive?: number
  /** Members seen active (only the first 2 distinct ones matter). */
  active?: Iterable<string>
  storedBytes?: number
  eventBytes?: number
}

interface Entry {
  id: string
  founder: string
  since: number
  lastActive: number
  /** Distinct active members, at most 2 kept. */
  active: Set<string>
  storedBytes: number
  eventBytes: number
}

/** What one more write, admission or promotion needs, per resource. */
interface Need {
  slots: number
  bytes: number
  events: number
}

const RESOURCES = ['slots', 'bytes', 'events'] as const

/** Usage of each resource, over all groups and over the established (and returning) ones. */
interface Usage {
  total: Need
  established: Need
}

/**
 * The admission state of the groups a relay holds (those whose genesis it stored). Methods that may need
 * room return the ids of the groups to evict first, in order; the caller evicts each (calling
 * {@link GroupAdmission.remove}) and then goes ahead. Nothing is changed when a method throws.
 */
export class GroupAdmission {
  readonly limits: AdmissionLimits
  readonly #entries = new Map<string, Entry>()

  constructor(limits: AdmissionLimits) {
    this.limits = limits
  }

  /** Groups held. */
  get size(): number {
    return this.#entries.size
  }

  has(id: string): boolean {
    return this.#entries.has(id)
  }

  /** Where the group stands now; undefined when it is not held. */
  standing(id: string): Standing | undefined {
    const entry = this.#entries.get(id)
    return entry === undefined ? undefined : this.#standing(entry)
  }

  /** Stored bytes over all groups. */
  get storedBytes(): number {
    let bytes = 0
    for (const entry of this.#entries.values()) bytes += entry.storedBytes
    return bytes
  }

  /** Event bytes held in memory over all groups. */
  get eventBytes(): number {
    let bytes = 0
    for (const entry of this.#entries.values()) bytes += entry.eventBytes
    return bytes
  }

  /**
   * Admits a group, on probation unless it already had 2 active members (a restored group). It always gets
   * in: the founder's lowest-ranked group goes when the founder is at its quota, and groups of its standing
   * or lower go when the slots or memory are full.
   *
   * @returns the groups to evict first
   * @throws {QuotaExceededError} only when nothing can be evicted and the group alone is over a limit
   */
  admit(id: string, group: AdmittedGroup): string[] {
    const entry: Entry = {
      id,
      founder: group.founder,
      since: group.since,
      lastActive: group.lastActive ?? group.since,
      active: new Set(),
      storedBytes: group.storedBytes ?? 0,
      eventBytes: group.eventBytes ?? 0,
    }
    for (const member of group.active ?? []) addActive(entry, member)
    const evict: string[] = []
    const founded = [...this.#entries.values()].filter((e) => e.founder === entry.founder)
    if (founded.length >= this.limits.maxFounderGroups) {
      const ranked = this.#ranked(founded)
      evict.push(...ranked.slice(0, founded.length + 1 - this.limits.maxFounderGroups).map((e) => e.id))
    }
    // the entry itself is counted as if held already
    evict.push(...this.#makeRoom(entry, none(), evict))
    this.#entries.set(id, entry)
    return evict
  }

  /**
   * Records activity of `member` (an event or envelope of theirs stored, or a sync by them). A second
   * distinct member takes the group off probation; room is made among established groups if needed.
   *
   * @returns the groups to evict first
   */
  touch(id: string, member: string, now: number): string[] {
    const entry = this.#entries.get(id)
    if (entry === undefined) return []
    entry.lastActive = Math.max(entry.lastActive, now)
    if (entry.active.has(member) || entry.active.size >= 2) return []
    const before = this.#standing(entry)
    addActive(entry, member)
    if (before !== 'probation' || this.#standing(entry) === 'probation') return []
    // promoted: it now counts against what established groups may use, and may not take the reserve
    try {
      return this.#makeRoom(entry, none(), [])
    } catch {
      // even alone it is over what established groups may use: it stays, and its next write is refused
      return []
    }
  }

  /**
   * Room for `bytes` more stored bytes of group `id` (`event`: also held in memory). Nothing is counted
   * until {@link GroupAdmission.add}.
   *
   * @returns the groups to evict first
   * @throws {QuotaExceededError} the group, its founder or the relay is at a cap and nothing can be evicted
   */
  makeRoom(id: string, bytes: number, event: boolean): string[] {
    const entry = this.#entries.get(id)
    if (entry === undefined) return []
    this.checkGroupCap(id, bytes)
    const evict: string[] = []
    const founded = [...this.#entries.values()].filter((e) => e.founder === entry.founder)
    let founderBytes = founded.reduce((sum, e) => sum + e.storedBytes, 0) + bytes
    if (founderBytes > this.limits.maxFounderStorage) {
      for (const other of this.#ranked(founded)) {
        if (founderBytes <= this.limits.maxFounderStorage) break
        if (other === entry) continue
        evict.push(other.id)
        founderBytes -= other.storedBytes
      }
    }
    if (founderBytes > this.limits.maxFounderStorage) {
      throw new QuotaExceededError(
        `the groups founded by ${entry.founder} are at their storage cap of ${this.limits.maxFounderStorage} bytes`,
      )
    }
    return [...evict, ...this.#makeRoom(entry, { slots: 0, bytes, events: event ? bytes : 0 }, evict)]
  }

  /**
   * Whether `bytes` more fit group `id`'s own cap (a group not held yet starts from 0): a check that
   * does not depend on the sender, so it can come before anything is verified.
   *
   * @throws {QuotaExceededError} they do not
   */
  checkGroupCap(id: string, bytes: number): void {
    if ((this.#entries.get(id)?.storedBytes ?? 0) + bytes > this.limits.maxGroupStorage) {
      throw new QuotaExceededError(
        `group ${id} is at its storage cap of ${this.limits.maxGroupStorage} bytes`,
      )
    }
  }

  /** Counts bytes stored for group `id` (`event`: also held in memory). */
  add(id: string, bytes: number, event: boolean): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    entry.storedBytes += bytes
    if (event) entry.eventBytes += bytes
  }

  /** Sets what group `id` has stored, after envelopes were pruned. */
  recount(id: string, storedBytes: number): void {
    const entry = this.#entries.get(id)
    if (entry !== undefined) entry.storedBytes = storedBytes
  }

  /** Forgets group `id`. */
  remove(id: string): void {
    this.#entries.delete(id)
  }

  /** Groups idle for longer than their standing allows at `now`. */
  expired(now: number): string[] {
    const out: string[] = []
    for (const entry of this.#entries.values()) {
      const idle = now - entry.lastActive
      const limit = this.#standing(entry) === 'probation' ? this.limits.probationIdleMs : this.limits.idleMs
      if (idle >= limit) out.push(entry.id)
    }
    return out
  }

  #standing(entry: Entry): Standing {
    if (entry.active.size < 2) return 'probation'
    return entry.lastActive - entry.since >= this.limits.returnAfterMs ? 'returning' : 'established'
  }

  /** Lowest standing first, then least recently active, then by id (so the order is total). */
  #ranked(entries: Iterable<Entry>): Entry[] {
    return [...entries]
      .map((entry) => ({ entry, rank: RANK[this.#standing(entry)] }))
      .sort(
        (a, b) =>
          a.rank - b.rank ||
          a.entry.lastActive - b.entry.lastActive ||
          (a.entry.id < b.entry.id ? -1 : a.entry.id > b.entry.id ? 1 : 0),
      )
      .map(({ entry }) => entry)
  }

  /** Held groups other than `entry` and those already chosen for eviction. */
  #others(entry: Entry, chosen: readonly string[]): Entry[] {
    return [...this.#entries.values()].filter((e) => e !== entry && !chosen.includes(e.id))
  }

  #usage(entries: Iterable<Entry>): Usage {
    const usage: Usage = { total: none(), established: none() }
    for (const entry of entries) {
      const counts = [usage.total]
      if (this.#standing(entry) !== 'probation') counts.push(usage.established)
      for (const count of counts) {
        count.slots++
        count.bytes += entry.storedBytes
        count.events += entry.eventBytes
      }
    }
    return usage
  }

  /**
   * The groups to evict, lowest ranked first, so that `entry` (counted already, or about to be) plus `need`
   * fits both the totals and, unless it is on probation, what established groups may use. A group on
   * probation evicts only groups on probation.
   */
  #makeRoom(entry: Entry, need: Need, chosen: readonly string[]): string[] {
    const onProbation = this.#standing(entry) === 'probation'
    const others = this.#others(entry, chosen)
    const usage = this.#usage([...others, entry])
    const limits = this.limits
    const total: Need = { slots: limits.maxGroups, bytes: limits.maxStorage, events: limits.maxEventMemory }
    const established: Need = {
      slots: limits.maxGroups - limits.probationGroups,
      bytes: limits.maxStorage - limits.probationStorage,
      events: limits.maxEventMemory - limits.probationEventMemory,
    }
    const over = (): Array<'total' | 'established'> => {
      const out: Array<'total' | 'established'> = []
      if (RESOURCES.some((r) => usage.total[r] + need[r] > total[r])) out.push('total')
      if (!onProbation && RESOURCES.some((r) => usage.established[r] + need[r] > established[r]))
        out.push('established')
      return out
    }
    if (over().length === 0) return []
    const evict: string[] = []
    for (const candidate of this.#ranked(others)) {
      const problems = over()
      if (problems.length === 0) break
      const candidateOnProbation = this.#standing(candidate) === 'probation'
      if (onProbation && !candidateOnProbation) break
      // evicting a group on probation does nothing for what established groups may use
      if (candidateOnProbation && !problems.includes('total')) continue
      evict.push(candidate.id)
      for (const count of candidateOnProbation ? [usage.total] : [usage.total, usage.established]) {
        count.slots--
        count.bytes -= candidate.storedBytes
        count.events -= candidate.eventBytes
      }
    }
    const problems = over()
    if (problems.length > 0) {
      const which = problems.includes('established') ? 'its cap for established groups' : 'its total caps'
      throw new QuotaExceededError(
        `the relay is at ${which} (${limits.maxGroups} groups, ${limits.maxStorage} bytes stored, ${limits.maxEventMemory} bytes of events in memory)`,
      )
    }
    return evict
  }
}

function none(): Need {
  return { slots: 0, bytes: 0, events: 0 }
}

function addActive(entry: Entry, member: string): void {
  if (entry.active.size < 2) entry.active.add(member)
}
