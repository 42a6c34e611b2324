import type { Logger } from '@libp2p/interface'
import { type Group, InvalidArgumentError } from '../membership/index.js'
import type { GroupStanding, PeerRef, Removal } from './chat-events.js'
import type { Clock } from './components.js'
import type { PeerDirectory } from './peer-directory.js'
import { type ChatStore, persist } from './store.js'

/** Meta key: when this peer learned it was no member of a group any more (ms, local clock). */
const removedAtKey = (groupId: string): string => `removedAt:${groupId}`
/** Meta key: this former member asked to be added again (`/rejoin`), so it announces a join request. */
const rejoinKey = (groupId: string): string => `rejoin:${groupId}`

/** What a {@link SelfStanding} reads and records: its chat group's parts. */
export interface SelfStandingComponents {
  self: PeerRef
  group: Group
  store: ChatStore
  clock: Clock
  directory: PeerDirectory
  /** The chat group's logger. */
  log: Logger
}

/**
 * Where this peer stands in one group: a member, a joiner never added, or a former member (an add or
 * the genesis of it is in the log, and it is no member), with who removed it, from the log, and when
 * this peer learned it, recorded in the meta table when the change applied. A former member asks to be
 * added again only after {@link SelfStanding.rejoin}, a meta flag cleared when it is added.
 */
export class SelfStanding {
  readonly #c: SelfStandingComponents
  /** Whether this peer was a member when last looked at, to notice the change that removes it. */
  #wasMember: boolean

  constructor(components: SelfStandingComponents) {
    this.#c = components
    this.#wasMember = components.group.isMember()
  }

  /**
   * Where this peer stands: a member; a joiner not added yet; or a former member, with who removed it
   * (itself, when it left) and when this peer learned it.
   */
  current(): GroupStanding {
    const { group } = this.#c
    if (group.isMember()) return { member: true, removed: null }
    return { member: false, removed: this.formerMember() ? this.#removal() : null }
  }

  /** Whether the log shows this peer was added once (or founded the group): it was removed since. */
  formerMember(): boolean {
    const self = this.#c.self.peerId
    return this.#c.group
      .events()
      .some((e) => e.subject === self && (e.payload.type === 'add' || e.payload.type === 'genesis'))
  }

  /** Whether this former member asked to be added again. */
  rejoining(): boolean {
    return this.#c.store.getMeta(rejoinKey(this.#c.group.id)) !== undefined
  }

  /** The last removal of this peer in the log, and when this peer learned of it. */
  #removal(): Removal {
    const { self, group, store, directory } = this.#c
    const removal = group.events().findLast((e) => e.payload.type === 'remove' && e.subject === self.peerId)
    const by = removal === undefined ? self : directory.ref(removal.author, group)
    const at = store.getMeta(removedAtKey(group.id))
    return { by, at: at === undefined ? null : Number(at), rejoining: this.rejoining() }
  }

  /**
   * Notes a change of this peer's own standing, before listeners hear of it: when it was removed (so
   * "removed by alice at 14:02" survives a restart), and, once added again, that it no longer asks.
   */
  note(): void {
    const { group, store, clock } = this.#c
    const member = group.isMember()
    if (member === this.#wasMember) return
    this.#wasMember = member
    persist(this.#c.log, 'a change of standing', () => {
      if (member) {
        store.deleteMeta(removedAtKey(group.id))
        store.deleteMeta(rejoinKey(group.id))
      } else {
        store.setMeta(removedAtKey(group.id), String(clock.now()))
      }
    })
  }

  /**
   * Records that this former member asks to be added again, across restarts, until a member adds it.
   *
   * @throws {InvalidArgumentError} this peer is a member, or was never one (it is asking already)
   */
  rejoin(): void {
    const { group, store } = this.#c
    if (group.isMember()) throw new InvalidArgumentError('you are a member of this group already')
    if (!this.formerMember()) {
      throw new InvalidArgumentError('you are asking to join this group already: a member must add you')
    }
    store.setMeta(rejoinKey(group.id), '1')
  }

  /** Deletes what it recorded, as the node forgets the group. */
  forget(): void {
    const { group, store } = this.#c
    store.deleteMeta(removedAtKey(group.id))
    store.deleteMeta(rejoinKey(group.id))
  }
}
