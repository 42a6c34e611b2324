import type { Logger } from '@libp2p/interface'
import type { Identity } from '../crypto/index.js'
import {
  Group,
  type GroupOptions,
  InvalidArgumentError,
  type PendingBudget,
  type SignedEvent,
} from '../membership/index.js'
import type { GroupSummary } from './chat-events.js'
import { ChatGroup, type ChatGroupComponents } from './chat-group.js'
import type { Clock } from './components.js'
import { NotInGroupError } from './errors.js'
import { decodeInvite, type Invite } from './invite.js'
import { dropStatusSnapshots } from './status-snapshot.js'
import type { ChatStore, StoredGroup } from './store.js'

/** What a {@link GroupRegistry} is built from: its node's parts. */
export interface GroupRegistryComponents {
  identity: Identity
  store: ChatStore
  clock: Clock
  /** The node's logger. */
  log: Logger
  /** What waits for parents or epochs, over all the node's groups. */
  pendingBudget: PendingBudget
  /** The parts each {@link ChatGroup} is built from. */
  chatGroup: ChatGroupComponents
}

/** Options of a {@link GroupRegistry}: the node's options for its groups. */
export interface GroupRegistryInit {
  graceMs?: number | undefined
  rekeyDelayMs?: number | undefined
  joinUnansweredMs?: number | undefined
}

/**
 * The groups a chat node takes part in, by id, oldest first: opened with the node's options, restored
 * from its store at start, found by id or name.
 */
export class GroupRegistry {
  readonly #c: GroupRegistryComponents
  readonly #init: GroupRegistryInit
  readonly #groups = new Map<string, ChatGroup>()
  /** The stored groups whose logs are not replayed yet (see {@link GroupRegistry.restore}). */
  #unrestored: StoredGroup[] = []

  constructor(components: GroupRegistryComponents, init: GroupRegistryInit = {}) {
    this.#c = components
    this.#init = init
  }

  /** The groups by id, their stored logs replayed first if they were not yet. */
  get byId(): ReadonlyMap<string, ChatGroup> {
    this.restore()
    return this.#groups
  }

  /** The groups opened so far, without replaying stored logs (a stop has no use for them). */
  opened(): IterableIterator<ChatGroup> {
    return this.#groups.values()
  }

  /** Whether every stored log has been replayed. */
  get restored(): boolean {
    return this.#unrestored.length === 0
  }

  /** Takes `group` in, as a {@link ChatGroup}, joined by `invite` if by one. */
  add(group: Group, invite?: Invite): ChatGroup {
    const chatGroup = new ChatGroup(this.#c.chatGroup, {
      group,
      ...(invite === undefined ? {} : { invite }),
      rekeyDelayMs: this.#init.rekeyDelayMs,
      joinUnansweredMs: this.#init.joinUnansweredMs,
    })
    this.#groups.set(group.id, chatGroup)
    return chatGroup
  }

  /**
   * Deletes a group this peer is no member of from the node: its chat group stops, and its rows go.
   *
   * @throws {NotInGroupError}
   * @throws {InvalidArgumentError} this peer is a member: leave first
   */
  forget(groupId: string): void {
    const chatGroup = this.require(groupId)
    const { group } = chatGroup
    if (group.isMember()) {
      throw new InvalidArgumentError(
        `you are a member of ${this.nameOf(group)}: leave it first, then forget it`,
      )
    }
    chatGroup.forget()
    this.#groups.delete(group.id)
    this.#c.store.purgeGroup(group.id)
  }

  /** A group of this node, opened with the node's options, from the genesis on or waiting for it. */
  open(groupId: string): Group {
    const options: GroupOptions = {
      pendingBudget: this.#c.pendingBudget,
      now: () => this.#c.clock.now(),
    }
    if (this.#init.graceMs !== undefined) options.graceMs = this.#init.graceMs
    return new Group({ identity: this.#c.identity, groupId, ...options })
  }

  /** Founds a group with this peer as its only member, named `memberName` in it, and stores it. */
  async create(name: string, memberName: string): Promise<{ created: ChatGroup; event: SignedEvent }> {
    this.restore()
    const { group, event } = await Group.create({
      identity: this.#c.identity,
      name,
      memberName,
      pendingBudget: this.#c.pendingBudget,
      ...(this.#init.graceMs === undefined ? {} : { graceMs: this.#init.graceMs }),
    })
    const { store } = this.#c
    store.saveGroup({ id: group.id, name })
    store.addEvent(group.id, event.id, event.bytes)
    return { created: this.add(group), event }
  }

  /**
   * The group of `invite` (`inviteText` decoded), taken in if new, with the invite stored and checked
   * against the genesis if that is here already.
   */
  join(invite: Invite, inviteText: string): ChatGroup {
    const joined = this.byId.get(invite.groupId) ?? this.add(this.open(invite.groupId))
    joined.invite = invite
    this.#c.store.saveGroup({ id: invite.groupId, name: invite.groupName, invite: inviteText.trim() })
    // joining again a group whose genesis is here already: the new invite is checked now
    joined.checkInvite()
    return joined
  }

  /**
   * Takes in the groups of the store, to be opened by {@link GroupRegistry.restore}: the first use of
   * them (or the node, once it started) replays their logs, so a start need not wait for that.
   */
  load(): void {
    this.#unrestored = this.#c.store.groups()
  }

  /**
   * Opens every group {@link GroupRegistry.load} took in, replaying its events, at once (a synchronous
   * run, so nothing sees a log half replayed); one that cannot open is skipped, and logged. Idempotent.
   */
  restore(): void {
    const { store, log } = this.#c
    const stored = this.#unrestored
    if (stored.length === 0) return
    this.#unrestored = []
    // from now on the live state answers, and it may change before the next clean stop
    dropStatusSnapshots(
      store,
      stored.map((row) => row.id),
    )
    for (const row of stored) {
      // one unusable stored group must not keep the node from opening
      try {
        const group = this.open(row.id)
        if (this.#groups.has(group.id)) continue
        store.restoreGroup(group, (err) =>
          log.error('stored event of %s does not apply: %s', row.id, err.message),
        )
        let invite: ReturnType<typeof decodeInvite> | undefined
        try {
          if (row.invite !== null) invite = decodeInvite(row.invite)
        } catch {
          // an invite of an older format: the group still opens, only its inviter is not shown
        }
        this.add(group, invite)
      } catch (err) {
        log.error('skipping stored group %s: %s', row.id.slice(0, 80), (err as Error).message)
      }
    }
  }

  /** Groups this node takes part in, oldest first. */
  summaries(): GroupSummary[] {
    // before the replay, the names stored: a genesis, once applied, stored its name there
    if (!this.restored) return this.#unrestored.map((g) => ({ id: g.id, name: g.name ?? g.id.slice(-8) }))
    return [...this.#groups.values()].map(({ group }) => ({ id: group.id, name: this.nameOf(group) }))
  }

  /** The group's name: from its genesis, else as stored from the invite, else the end of its id. */
  nameOf(group: Group): string {
    return group.name ?? this.#c.store.groups().find((g) => g.id === group.id)?.name ?? group.id.slice(-8)
  }

  /**
   * The group whose id or name is `ref`.
   *
   * @throws {NotInGroupError} no group matches, or the name matches several
   */
  find(ref: string): GroupSummary {
    const matches = this.summaries().filter((g) => g.id === ref || g.name === ref)
    if (matches.length === 1) return matches[0] as GroupSummary
    const known = this.summaries()
      .map((g) => `${g.name} (${g.id})`)
      .join(', ')
    throw new NotInGroupError(
      matches.length === 0
        ? `no group "${ref}" here; known groups: ${known || 'none'}`
        : `several groups are called "${ref}"; use the id: ${known}`,
    )
  }

  /** @throws {NotInGroupError} */
  require(groupId: string): ChatGroup {
    const group = this.byId.get(groupId)
    if (group === undefined) throw new NotInGroupError(`no group "${groupId}" here`)
    return group
  }
}
