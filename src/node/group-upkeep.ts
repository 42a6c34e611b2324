import type { Logger } from '@libp2p/interface'
import type { TypedEventEmitter } from 'main-event'
import type { Group, Rename, SignedEvent } from '../membership/index.js'
import type { ChatNodeEvents, PeerRef } from './chat-events.js'
import type { PeerDirectory } from './peer-directory.js'

/** What a {@link GroupUpkeep} works with: its chat group's parts. */
export interface GroupUpkeepComponents {
  self: PeerRef
  group: Group
  directory: PeerDirectory
  events: Pick<TypedEventEmitter<ChatNodeEvents>, 'safeDispatchEvent'>
  /** The chat group's logger. */
  log: Logger
  /** Whether the node is stopping: nothing more is signed then. */
  stopping(): boolean
  /** Stores, notifies and publishes an event this peer signed (`ChatGroup`'s commit). */
  commit(event: SignedEvent, renamed?: Rename): Promise<void>
}

/** Options of a {@link GroupUpkeep}. */
export interface GroupUpkeepInit {
  /** Delay per rank before a member not first in line issues a due rekey, in ms. Default 3000. */
  rekeyDelayMs?: number
}

/**
 * What a member signs of its own accord, for a group to stay usable: a rekey when one is due, a rekey
 * away from an epoch whose key does not work here, and a rename to the display name this node was
 * given.
 */
export class GroupUpkeep {
  readonly #c: GroupUpkeepComponents
  readonly #rekeyDelayMs: number
  /** The bad epoch last reported and rekeyed away from, so one bad epoch causes one rekey. */
  #badEpochHandled: string | undefined
  #rekeyTimer: ReturnType<typeof setTimeout> | undefined

  constructor(components: GroupUpkeepComponents, init: GroupUpkeepInit = {}) {
    this.#c = components
    this.#rekeyDelayMs = init.rekeyDelayMs ?? 3000
  }

  /** Drops a rekey waiting for its turn. */
  stop(): void {
    clearTimeout(this.#rekeyTimer)
  }

  /**
   * Checks the key this member holds in the current epoch. One that does not open, or is not the key its
   * author committed to, makes the epoch unusable here: the user is told who chose it, and this member
   * rekeys at once rather than waiting for its turn, since nobody else can tell.
   */
  checkEpochKey(): void {
    const { group, log } = this.#c
    if (!group.isMember() || this.#c.stopping()) return
    group
      .currentKeyProblem()
      .then(async (problem) => {
        if (problem === undefined || this.#badEpochHandled === problem.epoch || this.#c.stopping()) return
        this.#badEpochHandled = problem.epoch
        const { epoch, author, reason } = problem
        log.error('group %s: epoch %s by %s is unusable: %s', group.id, epoch, author, reason)
        this.#c.events.safeDispatchEvent('epoch:bad-key', {
          detail: { group: group.id, epoch, author: this.#c.directory.ref(author, group), reason },
        })
        if (!group.isMember()) return
        await this.#c.commit(await group.rekey())
      })
      .catch((err: unknown) =>
        log.error('checking the epoch key of %s failed: %s', group.id, (err as Error).message),
      )
  }

  /**
   * Takes up this node's display name where it is known by another one: `--name` given with an existing
   * data directory is a rename, signed and shown to everyone.
   */
  async claimName(): Promise<void> {
    const { self, group } = this.#c
    const current = group.memberMap().get(self.peerId)?.name
    if (current === undefined || current === self.name || this.#c.stopping()) return
    const event = await group.rename(self.name)
    await this.#c.commit(event, { member: self.peerId, from: current, to: self.name })
  }

  /**
   * When concurrent changes left the epoch key with a non-member or without a member, one member rekeys:
   * the first in the deterministic order at once, the k-th only after k delays if still needed.
   */
  scheduleRekey(): void {
    const { group, log } = this.#c
    if (this.#rekeyTimer !== undefined || this.#c.stopping() || !group.needsRekey()) return
    const rank = group.rekeyRank()
    if (rank < 0) return
    this.#rekeyTimer = setTimeout(
      () => {
        this.#rekeyTimer = undefined
        if (this.#c.stopping() || !group.needsRekey() || !group.isMember()) return
        group
          .rekey()
          .then((event) => this.#c.commit(event))
          .catch((err: unknown) => log.error('rekey of %s failed: %s', group.id, (err as Error).message))
      },
      rank * this.#rekeyDelayMs + 50,
    )
    this.#rekeyTimer.unref?.()
  }
}
