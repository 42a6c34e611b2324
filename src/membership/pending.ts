import { logger } from '@libp2p/logger'
import { PendingLimitError } from './errors.js'

const log = logger('p2pchat:pending')

/** Bookkeeping of one waiting item (maps, sets, descriptor), counted on top of its bytes. */
export const PENDING_ITEM_OVERHEAD = 512
/** Bookkeeping per parent an event waits for (an id string and its entries in two maps). */
export const PENDING_PARENT_OVERHEAD = 160

/** What a pending buffer asks room for. */
export interface PendingClaim {
  /** Group id. */
  group: string
  /** An event waiting for its parents, or a message waiting for its epoch. */
  kind: 'event' | 'message'
  /** The libp2p peer that delivered it; `''` for local input (storage, this identity's own). */
  from: string
  /** Its author (events) or sender (messages), as its checked signature proves. */
  author: string
  /**
   * True when the author was added at some point in the group's known log: a member's item. Strangers'
   * items never displace members' items.
   */
  member: boolean
  /** Memory it holds: its bytes plus bookkeeping. */
  bytes: number
  /** The group's own caps on items of this kind (its options), for members' and strangers' apart. */
  groupLimit: { items: number; bytes: number }
}

/** Room granted by {@link PendingBudget.admit}; give it back with {@link PendingBudget.release}. */
export interface PendingTicket {
  readonly claim: PendingClaim
  /** When it was granted. */
  readonly at: number
}

/** Options for {@link PendingBudget}. */
export interface PendingBudgetInit {
  /** Bytes members' items may take, over all groups. Default 64 MiB. */
  memberBytes?: number
  /** Bytes strangers' items may take, over all groups. Default 8 MiB. */
  strangerBytes?: number
  /** Bytes of strangers' items one sending peer may have waiting, and one claimed author. Default 1 MiB. */
  peerBytes?: number
  /** How long an item may wait before it is dropped, in ms. Default 10 minutes. */
  maxAgeMs?: number
  /** Clock, in ms. Default `Date.now`. */
  now?: () => number
}

/** What waits now, over all groups of a budget. */
export interface PendingUsage {
  items: number
  /** Members' and strangers' bytes together. */
  bytes: number
  memberBytes: number
  strangerBytes: number
}

interface Item extends PendingTicket {
  live: boolean
  /** Tells the buffer that holds the item that the budget dropped it. */
  readonly onDrop: () => void
}

/** Items grouped by who holds them (a peer, a group, an author), each group oldest first. */
class Holders {
  readonly #byKey = new Map<string, { bytes: number; items: Set<Item> }>()
  items = 0
  bytes = 0

  add(key: string, item: Item): void {
    let holder = this.#byKey.get(key)
    if (holder === undefined) {
      holder = { bytes: 0, items: new Set() }
      this.#byKey.set(key, holder)
    }
    holder.items.add(item)
    holder.bytes += item.claim.bytes
    this.items++
    this.bytes += item.claim.bytes
  }

  remove(key: string, item: Item): void {
    const holder = this.#byKey.get(key)
    if (holder === undefined || !holder.items.delete(item)) return
    holder.bytes -= item.claim.bytes
    this.items--
    this.bytes -= item.claim.bytes
    if (holder.items.size === 0) this.#byKey.delete(key)
  }

  /** What `key` holds, in the measure `by`. */
  share(key: string, by: 'bytes' | 'items'): number {
    const holder = this.#byKey.get(key)
    if (holder === undefined) return 0
    return by === 'bytes' ? holder.bytes : holder.items.size
  }

  /** The oldest item of the holder with the largest share, if that holder is not `except`. */
  oldestOfLargest(by: 'bytes' | 'items', except: string): { item: Item; share: number } | undefined {
    let best: { key: string; share: number; items: Set<Item> } | undefined
    for (const [key, holder] of this.#byKey) {
      const share = by === 'bytes' ? holder.bytes : holder.items.size
      if (best === undefined || share > best.share) best = { key, share, items: holder.items }
    }
    if (best === undefined || best.key === except) return undefined
    const item = best.items.values().next().value
    return item === undefined ? undefined : { item, share: best.share }
  }
}

/**
 * The memory that items waiting for their dependencies (events for unknown parents, messages for an
 * unknown epoch) may take in one process, over all its groups; a relay runs many. Every item is counted
 * against the peer that delivered it and its claimed author, and dropped after `maxAgeMs`.
 *
 * The policy, which is what keeps an outsider from taking a member's place:
 * - Items are a **member's** when their author was added at some point in the group's known log (their
 *   signature is checked before they get here, so the author is real), or they are local input; else a
 *   **stranger's**. The two have separate room: `memberBytes` and `strangerBytes`. A stranger's item
 *   never displaces a member's.
 * - Before a group's genesis is known, nothing but the signature can be checked (no add is known, and
 *   the group id, a hash, does not tell who founded it), so every item from the network waits as a
 *   stranger's. That costs members little: sync sends parents first, so an honest event waits before the
 *   genesis only when gossip outruns sync, and if it is refused or dropped the next sync brings it again.
 * - Strangers: each sending peer and each claimed author may hold at most `peerBytes`. When their room
 *   is full, a new item displaces the oldest item of the peer holding the most, if that peer holds more
 *   than the newcomer's peer would with it; otherwise it is refused. Many throwaway peers therefore
 *   share the room fairly and cannot crowd anyone out for good.
 * - Members: `memberBytes` is shared the same way among groups: the oldest item of the largest group
 *   goes, if it holds more than the newcomer's would. A group made by an attacker (on a relay) thus holds
 *   at most its fair share of the room.
 * - Each group's own caps (items and bytes per kind, its options) hold for members' and strangers' items
 *   apart: members' are shared the same way among authors (a removed member, still someone once added,
 *   holds at most a fair share of its group), strangers' among sending peers.
 * - Anything older than `maxAgeMs` is dropped. Nothing is lost for good by a drop: sync fetches what is
 *   missing again.
 */
export class PendingBudget {
  readonly #memberBytes: number
  readonly #strangerBytes: number
  readonly #peerBytes: number
  readonly #maxAgeMs: number
  readonly #now: () => number
  /** Every live item, oldest first. */
  readonly #items = new Set<Item>()
  readonly #members = new Holders()
  readonly #strangers = new Holders()
  readonly #strangerAuthors = new Holders()
  /** Per group, kind and class: members' items by author, strangers' by sending peer. */
  readonly #groupKinds = new Map<string, Holders>()

  constructor(init: PendingBudgetInit = {}) {
    this.#memberBytes = init.memberBytes ?? 64 * 1024 * 1024
    this.#strangerBytes = init.strangerBytes ?? 8 * 1024 * 1024
    this.#peerBytes = init.peerBytes ?? 1024 * 1024
    this.#maxAgeMs = init.maxAgeMs ?? 10 * 60_000
    this.#now = init.now ?? Date.now
  }

  /** What waits now. */
  usage(): PendingUsage {
    return {
      items: this.#items.size,
      bytes: this.#members.bytes + this.#strangers.bytes,
      memberBytes: this.#members.bytes,
      strangerBytes: this.#strangers.bytes,
    }
  }

  /**
   * Makes room for `claim`, dropping expired items and, by the policy above, others; `onDrop` is called
   * if the budget later drops this one.
   *
   * @throws {PendingLimitError} with the reason, when there is no room it may take
   */
  admit(claim: PendingClaim, onDrop: () => void): PendingTicket {
    this.expire()
    // refusals that need no displacement first, so nothing is dropped for a newcomer that is refused
    if (!claim.member) this.#checkStrangerShare(claim)
    this.#makeGroupRoom(claim)
    if (claim.member) this.#makeMemberRoom(claim)
    else this.#makeStrangerRoom(claim)
    const item: Item = { claim, at: this.#now(), live: true, onDrop }
    this.#items.add(item)
    let inGroup = this.#groupKinds.get(groupKindKey(claim))
    if (inGroup === undefined) {
      inGroup = new Holders()
      this.#groupKinds.set(groupKindKey(claim), inGroup)
    }
    inGroup.add(groupHolder(claim), item)
    if (claim.member) {
      this.#members.add(claim.group, item)
    } else {
      this.#strangers.add(claim.from, item)
      this.#strangerAuthors.add(claim.author, item)
    }
    return item
  }

  /** Gives back the room of an item that left its buffer (applied, rejected, dropped). Idempotent. */
  release(ticket: PendingTicket): void {
    const item = ticket as Item
    if (!item.live) return
    item.live = false
    this.#items.delete(item)
    const { claim } = item
    const inGroup = this.#groupKinds.get(groupKindKey(claim))
    inGroup?.remove(groupHolder(claim), item)
    if (inGroup !== undefined && inGroup.items === 0) this.#groupKinds.delete(groupKindKey(claim))
    if (claim.member) {
      this.#members.remove(claim.group, item)
    } else {
      this.#strangers.remove(claim.from, item)
      this.#strangerAuthors.remove(claim.author, item)
    }
  }

  /** Drops every item older than `maxAgeMs`. {@link admit} does this too; call it from a timer to free idle memory. */
  expire(): void {
    const oldest = this.#now() - this.#maxAgeMs
    for (const item of this.#items) {
      if (item.at >= oldest) break
      this.#drop(item, 'it waited too long')
    }
  }

  #drop(item: Item, why: string): void {
    const { claim } = item
    log(
      'dropping a waiting %s of %s by %s from %s: %s',
      claim.kind,
      claim.group,
      claim.author,
      claim.from,
      why,
    )
    this.release(item)
    item.onDrop()
  }

  /**
   * Drops the oldest item of the largest holder in `holders`, if that holder is not `mine` and holds more
   * than `mine` would with `size` more; false when there is none such, so the newcomer is refused.
   */
  #displace(holders: Holders, by: 'bytes' | 'items', mine: string, size: number, why: string): boolean {
    const victim = holders.oldestOfLargest(by, mine)
    if (victim === undefined || victim.share <= holders.share(mine, by) + size) return false
    this.#drop(victim.item, why)
    return true
  }

  /** A sending peer and a claimed author each hold at most `peerBytes` of strangers' items. */
  #checkStrangerShare(claim: PendingClaim): void {
    const { bytes, from, author } = claim
    const who = from === '' ? 'local input' : `peer ${from}`
    if (this.#strangers.share(from, 'bytes') + bytes > this.#peerBytes) {
      throw new PendingLimitError(
        `${who} already has ${this.#strangers.share(from, 'bytes')} bytes of non-members' items waiting (at most ${this.#peerBytes})`,
      )
    }
    if (this.#strangerAuthors.share(author, 'bytes') + bytes > this.#peerBytes) {
      throw new PendingLimitError(
        `${author}, who is not known as a member, already has ${this.#strangerAuthors.share(author, 'bytes')} bytes waiting (at most ${this.#peerBytes})`,
      )
    }
  }

  #makeStrangerRoom(claim: PendingClaim): void {
    const { bytes, from } = claim
    const who = from === '' ? 'local input' : `peer ${from}`
    while (this.#strangers.bytes + bytes > this.#strangerBytes) {
      if (!this.#displace(this.#strangers, 'bytes', from, bytes, `room for ${who}, which holds less`)) {
        throw new PendingLimitError(
          `the room for non-members' waiting items (${this.#strangerBytes} bytes) is full, and ${who} holds a fair share of it`,
        )
      }
    }
  }

  /**
   * The group's own caps, for members' and strangers' items apart: members' shared among their authors,
   * strangers' among the peers that sent them.
   */
  #makeGroupRoom(claim: PendingClaim): void {
    const { bytes, group, groupLimit } = claim
    const holders = this.#groupKinds.get(groupKindKey(claim)) ?? new Holders()
    const mine = groupHolder(claim)
    const whose = claim.member ? "members'" : "non-members'"
    if (bytes > groupLimit.bytes) {
      throw new PendingLimitError(
        `a ${claim.kind} of ${bytes} bytes is over the ${groupLimit.bytes} bytes of ${whose} ${claim.kind}s that may wait in ${group}`,
      )
    }
    for (;;) {
      const by =
        holders.items + 1 > groupLimit.items
          ? 'items'
          : holders.bytes + bytes > groupLimit.bytes
            ? 'bytes'
            : undefined
      if (by === undefined) return
      if (
        !this.#displace(
          holders,
          by,
          mine,
          by === 'items' ? 1 : bytes,
          `room for ${mine}, which has less waiting`,
        )
      ) {
        throw new PendingLimitError(
          `too many ${whose} ${claim.kind}s wait in ${group} (at most ${groupLimit.items}, ${groupLimit.bytes} bytes), and ${mine} holds a fair share of them`,
        )
      }
    }
  }

  #makeMemberRoom(claim: PendingClaim): void {
    const { bytes, group } = claim
    while (this.#members.bytes + bytes > this.#memberBytes) {
      if (
        !this.#displace(this.#members, 'bytes', group, bytes, `room for group ${group}, which holds less`)
      ) {
        throw new PendingLimitError(
          `the room for members' waiting items (${this.#memberBytes} bytes) is full, and ${group} holds a fair share of it`,
        )
      }
    }
  }
}

function groupKindKey(claim: PendingClaim): string {
  return `${claim.member ? 'member' : 'stranger'} ${claim.kind} ${claim.group}`
}

/** Who holds an item within its group: a member's author, or the peer that sent a stranger's. */
function groupHolder(claim: PendingClaim): string {
  return claim.member ? claim.author : claim.from
}

let shared: PendingBudget | undefined

/** The budget of every {@link Group} given none: one per process, with the default limits. */
export function sharedPendingBudget(): PendingBudget {
  shared ??= new PendingBudget()
  return shared
}
