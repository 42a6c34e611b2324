import {
  type ChatNode,
  type ChatStatus,
  createChatNode,
  type GroupSummary,
  NotInGroupError,
} from '../node/index.js'
import type { StartCommand } from './args.js'

/** Where the session keeps the group it showed last, in the node's database. */
const ACTIVE_GROUP_KEY = 'activeGroup'

/**
 * What one user interface shows of a node: the group on screen. The node takes every group as an
 * argument; which one the user is looking at is this session's state, kept across restarts.
 */
export class ChatSession {
  readonly node: ChatNode
  #group: string | undefined

  constructor(node: ChatNode) {
    this.node = node
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

  /**
   * Shows the group whose id or name is `ref`, and remembers it for the next session.
   *
   * @throws {NotInGroupError} no group matches, or the name matches several
   */
  select(ref: string): GroupSummary {
    const match = this.node.findGroup(ref)
    this.#group = match.id
    this.node.store.setMeta(ACTIVE_GROUP_KEY, match.id)
    return match
  }

  /** Shows the group of the last session, else the newest one, if there is any. */
  restore(): void {
    const groups = this.node.groups()
    const last = this.node.store.getMeta(ACTIVE_GROUP_KEY)
    this.#group = groups.some((g) => g.id === last) ? last : groups.at(-1)?.id
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
    listen: command.listen,
    bootstrap: command.bootstrap,
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
