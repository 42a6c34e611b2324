import { type ChatNode, createChatNode } from '../node/index.js'
import type { StartCommand } from './args.js'

/**
 * Opens the node for `p2pchat start`: identity and database from the data directory, networking, and
 * the group chosen by `--create`, `--join` or `--group` (or the one used last).
 */
export async function openSession(command: StartCommand & { dataDir: string }): Promise<ChatNode> {
  const node = await createChatNode({
    dataDir: command.dataDir,
    name: command.name,
    listen: command.listen,
    bootstrap: command.bootstrap,
    mdns: command.mdns,
  })
  try {
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
