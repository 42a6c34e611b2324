import {
  type ChatNode,
  type ChatStatus,
  createChatNode,
  type GroupStanding,
  type GroupSummary,
  NotInGroupError,
} from '../node/index.js'
import type { StartCommand } from './args.js'
import { GroupChoiceError } from './errors.js'

/** Where the session keeps the group it showed last, in the node's database. */
const ACTIVE_GROUP_KEY = 'activeGroup'

/** A group as the session lists it: where this peer stands, and what arrived while it was not on screen. */
export interface SessionGroup extends GroupSummary, GroupStanding {
  /** Messages from others that arrived in this session while another group was on screen. */
  unread: number
  /** Whether it is the group on screen. */
  active: boolean
}

/**
 * What one user interface shows of a node: the group on screen, and what arrived in the others. The node
 * takes every group as an argument; which one the user is looking at is this session's state, kept across
 * restarts.
 */
export class ChatSession {
  readonly node: ChatNode
  #group: string | undefined
  /** Per group not on screen, messages from others that arrived since it last was. */
  readonly #unread = new Map<string, number>()

  constructor(node: ChatNode) {
    this.node = node
    // registered before any mode's listeners, so a mode's notice already sees the new count
    node.addEventListener('message:receive', ({ detail }) => {
      if (detail.group === this.#group || detail.from === node.peerId) return
      this.#unread.set(detail.group, this.unread(detail.group) + 1)
    })
  }

  /** The group on screen, if any. */
  get groupId(): string | undefined {
    return this.#group
  }

  /**
   * The group on screen.
   *
   * @throws {NotInGroupError} none is
   */
  group(): string {
    if (this.#group === undefined) throw new NotInGroupError()
    return this.#group
  }

  /** Messages from others that arrived in `groupId` while another group was on screen. */
  unread(groupId: string): number {
    return this.#unread.get(groupId) ?? 0
  }

  /**
   * Shows the group whose id or name is `ref`, and remembers it for the next session.
   *
   * @returns the group, and how many messages arrived in it while it was not on screen (now read)
   * @throws {NotInGroupError} no group matches, or the name matches several
   */
  select(ref: string): GroupSummary & { missed: number } {
    const match = this.node.findGroup(ref)
    const missed = this.unread(match.id)
    this.#unread.delete(match.id)
    this.#group = match.id
    this.node.store.setMeta(ACTIVE_GROUP_KEY, match.id)
    return { ...match, missed }
  }

  /** Shows the group of the last session, else the newest one, if there is any. */
  restore(): void {
    const groups = this.node.groups()
    const last = this.node.store.getMeta(ACTIVE_GROUP_KEY)
    this.#group = groups.some((g) => g.id === last) ? last : groups.at(-1)?.id
  }

  /** Every group of the node, oldest first, with its standing and unread count. */
  groups(): SessionGroup[] {
    return this.node.groups().map((g) => ({
      ...g,
      ...this.node.standing(g.id),
      unread: this.unread(g.id),
      active: g.id === this.#group,
    }))
  }

  /**
   * The group a request names, for an interface with no group on screen (JSON-RPC): the group whose id
   * or name is `ref`, or without one the only group.
   *
   * @throws {NotInGroupError} the node is in no group at all
   * @throws {GroupChoiceError} `ref` matches no group or several, or it is omitted and there are several;
   * the message names the groups
   */
  pick(ref?: string): GroupSummary {
    const groups = this.node.groups()
    if (groups.length === 0) throw new NotInGroupError()
    const known = groups.map((g) => `${g.name} (${g.id})`).join(', ')
    if (ref === undefined) {
      const [only] = groups
      if (only !== undefined && groups.length === 1) return only
      throw new GroupChoiceError(`you are in ${groups.length} groups: say which with "group": ${known}`)
    }
    const matches = groups.filter((g) => g.id === ref || g.name === ref)
    const [match] = matches
    if (match !== undefined && matches.length === 1) return match
    throw new GroupChoiceError(
      matches.length === 0
        ? `no group "${ref}" here; your groups: ${known}`
        : `several groups are called "${ref}"; use the id: ${known}`,
    )
  }

  /**
   * Deletes a group this peer is no member of, with its history, from this device (see
   * {@link ChatNode.forget}). When it was on screen, the newest remaining group is shown instead.
   *
   * @returns the group forgotten
   * @throws {NotInGroupError} no group matches `ref`
   * @throws {InvalidArgumentError} this peer is a member of it
   */
  forget(ref: string): GroupSummary {
    const match = this.node.findGroup(ref)
    this.node.forget(match.id)
    this.#unread.delete(match.id)
    if (this.#group === match.id) {
      const next = this.node.groups().at(-1)
      this.#group = next?.id
      if (next !== undefined) this.node.store.setMeta(ACTIVE_GROUP_KEY, next.id)
    }
    return match
  }

  /** The node's status with the group on screen. */
  status(): ChatStatus {
    return this.node.status(this.#group)
  }
}

/**
 * How `p2pchat start` presents a session: the terminal UI or JSON-RPC. Split in two so that the
 * listeners exist before the node does anything (see {@link openSession}).
 */
export interface StartMode {
  /** Subscribes to the node's events; called before the node starts. Output may be held until `run`. */
  attach(session: ChatSession): void
  /** Presents the opened session until it ends; resolves to the exit status. */
  run(session: ChatSession): Promise<number>
}

/**
 * Opens the node for `p2pchat start`: identity and database from the data directory, networking, and
 * the group chosen by `--create`, `--join` or `--group` (or the one used last).
 *
 * @param attach - called with the session right after the node is created, before it starts networking
 * or selects, creates or joins a group, so the caller's listeners see every event: the `membership`
 * change of `--create`, and whatever sync delivers while the node starts
 */
export async function openSession(
  command: StartCommand & { dataDir: string },
  attach: (session: ChatSession) => void = () => {},
): Promise<ChatSession> {
  const node = await createChatNode({
    dataDir: command.dataDir,
    name: command.name,
    ...(command.listen === undefined ? {} : { listen: command.listen }),
    bootstrap: command.bootstrap,
    forgetRelays: command.forgetRelays,
    mdns: command.mdns,
  })
  const session = new ChatSession(node)
  try {
    session.restore()
    attach(session)
    await node.start()
    const selection = command.group
    if (selection.kind === 'create') {
      // a restart with the same --create reopens the group this peer founded, rather than a second one
      const existing = node.groups().find((g) => g.name === selection.groupName && node.isFounder(g.id))
      session.select(existing?.id ?? (await node.createGroup(selection.groupName)).id)
    } else if (selection.kind === 'join') {
      session.select((await node.joinGroup(selection.invite)).id)
    } else if (selection.group !== undefined) {
      session.select(selection.group)
    }
    return session
  } catch (err) {
    await node.stop()
    throw err
  }
}
