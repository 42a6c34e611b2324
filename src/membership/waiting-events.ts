/**
 * The events of one group's log that wait for their parents: each kept with the parents it lacks,
 * indexed by those parents, and accounted in the pending budget, which may drop one to make room.
 *
 * @packageDocumentation
 */

import type { EventHead } from './event.js'
import {
  PENDING_ITEM_OVERHEAD,
  PENDING_PARENT_OVERHEAD,
  type PendingBudget,
  type PendingTicket,
} from './pending.js'

/** An event waiting for parents: only its checked head, whose bytes are parsed in full once it can apply. */
export interface WaitingEvent {
  head: EventHead
  /** Parents it still lacks. */
  missing: Set<string>
  ticket: PendingTicket
}

/** The waiting events of one group. */
export class WaitingEvents {
  readonly #groupId: string
  readonly #budget: PendingBudget
  readonly #limit: { items: number; bytes: number }
  readonly #pending = new Map<string, WaitingEvent>()
  /** missing parent id → ids of pending events waiting for it */
  readonly #waiting = new Map<string, Set<string>>()

  constructor(groupId: string, budget: PendingBudget, limit: { items: number; bytes: number }) {
    this.#groupId = groupId
    this.#budget = budget
    this.#limit = limit
  }

  /** Number of waiting events. */
  get size(): number {
    return this.#pending.size
  }

  has(id: string): boolean {
    return this.#pending.has(id)
  }

  get(id: string): WaitingEvent | undefined {
    return this.#pending.get(id)
  }

  /** Ids of the parents waiting events lack (some may have arrived meanwhile: the caller checks). */
  parents(): string[] {
    return [...this.#waiting.keys()]
  }

  /**
   * Keeps `head` until the parents in `missing` arrive, accounted as a member's or a stranger's (see
   * {@link PendingBudget}).
   *
   * @throws {PendingLimitError} the budget has no room it may take
   */
  add(head: EventHead, missing: string[], from: string, member: boolean): void {
    // own bytes, so a view into a larger frame does not keep the whole frame alive
    const { bytes } = head
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    const kept: EventHead = own ? head : { ...head, bytes: bytes.slice() }
    const ticket = this.#budget.admit(
      {
        group: this.#groupId,
        kind: 'event',
        from,
        author: head.author,
        member,
        bytes: bytes.length + PENDING_ITEM_OVERHEAD + PENDING_PARENT_OVERHEAD * head.parents.length,
        groupLimit: this.#limit,
      },
      () => this.remove(head.id),
    )
    this.#pending.set(head.id, { head: kept, missing: new Set(missing), ticket })
    for (const id of missing) {
      let waiters = this.#waiting.get(id)
      if (waiters === undefined) {
        waiters = new Set()
        this.#waiting.set(id, waiters)
      }
      waiters.add(head.id)
    }
  }

  /** The ids of the events that waited for `parentId`, which no longer wait for it under that index. */
  takeWaiters(parentId: string): Set<string> | undefined {
    const waiters = this.#waiting.get(parentId)
    if (waiters !== undefined) this.#waiting.delete(parentId)
    return waiters
  }

  /** Forgets a waiting event: applied, rejected, or dropped by the budget. */
  remove(id: string): void {
    const waiting = this.#pending.get(id)
    if (waiting === undefined) return
    this.#pending.delete(id)
    this.#budget.release(waiting.ticket)
    for (const parent of waiting.missing) {
      const waiters = this.#waiting.get(parent)
      waiters?.delete(id)
      if (waiters?.size === 0) this.#waiting.delete(parent)
    }
  }

  /** Drops every waiting event and gives its room back to the budget. */
  clear(): void {
    for (const id of [...this.#pending.keys()]) this.remove(id)
  }
}
