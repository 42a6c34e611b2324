/**
 * What a line typed at the interactive prompt means: a message, or a `/command` and its argument;
 * and the help that lists the commands. Pure, so it is tested without a terminal.
 *
 * @packageDocumentation
 */

/** Help shown by `/help` and for unknown commands. */
export const INTERACTIVE_HELP = `Commands:
  /help              this help
  /members           who is in the group
  /peers             peers connected now
  /invite            an invite to give to someone (they run: p2pchat start --name <them> --join <invite>)
  /add <id|name>     add a member by peer id; a name only claimed in a join request asks you first
  /remove <name|id>  remove a member
  /history [n]       the last n messages (default 20)
  /quit              leave (Ctrl-D and Ctrl-C work too)
  /connect <addr>    dial a peer or relay by multiaddr; remembered for later starts
Groups:
  /groups            your groups, with unread messages
  /switch <name|id>  show another group, and what you missed there
  /create <name>     found a new group and show it
  /join <invite>     ask to join a group by invite, and show it
  /leave             leave the group on screen (asks first)
  /rejoin            ask to be added again to a group you were removed from
  /forget <name|id>  delete a group you are no longer in, with its history, from this device
Anything else is sent to the group on screen.`

/** One parsed line of interactive input. */
export type InteractiveInput =
  | { kind: 'empty' }
  | { kind: 'text'; text: string }
  | { kind: 'command'; name: string; arg: string }

/** Splits a line typed at the prompt into a message or a command. `//x` sends `/x`. */
export function parseInput(line: string): InteractiveInput {
  const trimmed = line.trim()
  if (trimmed.length === 0) return { kind: 'empty' }
  if (trimmed.startsWith('//')) return { kind: 'text', text: line.trimEnd().replace(/^\s*\//, '') }
  if (!trimmed.startsWith('/')) return { kind: 'text', text: line.trimEnd() }
  const space = trimmed.indexOf(' ')
  const name = (space < 0 ? trimmed.slice(1) : trimmed.slice(1, space)).toLowerCase()
  return { kind: 'command', name, arg: space < 0 ? '' : trimmed.slice(space + 1).trim() }
}
