import { type ChatNode, createChatNode } from '../node/index.js'
import type { StartCommand } from './args.js'

/**
 * How `p2pchat start` presents a session: the terminal UI or JSON-RPC. Split in two so that the
 * listeners exist before the node does anything (see {@link openSession}).
 */
export interface StartMode {
  /** Subscribes to the node's events; called before the node starts. Output may be held until `run`. */
  attach(node: ChatNode): void
  /** Presents the opened session until it ends; resolves to the exit status. */
  run(node: ChatNode): Promise<number>
}

/**
 * Opens the node for `p2pchat start`: identity and database from the data directory, networking, and
 * the group chosen by `--create`, `--join` or `--group` (or the one used last).
 *
 * @param attach - called with the node right after it is created, before it starts networking or
 * selects, creates or joins a group, so the caller's listeners see every event: the `membership`
 * change of `--create`, and whatever sync delivers while the node starts
 */
export async function openSession(
  command: StartCommand & { dataDir: string },
  attach: (node: ChatNode) => void = () => {},
): Promise<ChatNode> {
  const node = await createChatNode({
    dataDir: command.dataDir,
    name: command.name,
    listen: command.listen,
    bootstrap: command.bootstrap,
    mdns: command.mdns,
  })
  try {
    attach(node)
    await node.start()
    const selection = command.group
    if (selection.kind === 'create') {
      // a restart with the same --create reopens the group this peer founded, rather than a second one
      const existing = node.groups().find((g) => g.name === selection.groupName && node.isFounder(g.id))
      if (existing !== undefined) node.selectGroup(existing.id)
      else await node.createGroup(selection.groupName)
    } else if (selection.kind === 'join') {
      await node.joinGroup(selection.invite)
    } else if (selection.group !== undefined) {
      node.selectGroup(selection.group)
    }
    return node
  } catch (err) {
    await node.stop()
    throw err
  }
}
