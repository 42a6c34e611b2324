/**
 * What a line typed at the interactive prompt means: a message, or a `/command` and its argument;
 * and the help that lists the commands. Pure, so it is tested without a terminal.
 *
 * @packageDocumentation
 */

import { sanitizeName } from './format.js'

/** Help shown by `/help`. */
export const INTERACTIVE_HELP = `Commands:
  /help              this help
  /members           who is in the group
  /peers             peers connected now
  /invite            an invite to give to someone (they run: p2pchat start --name <them> --join <invite>)
  /add <id|name>     add a member by peer id; a name only claimed in a join request asks you first
  /remove <name|id>  remove a member
  /history [n]       the last n messages (default 20)
  /quit              leave (Ctrl-D, or Ctrl-C on an empty line; Ctrl-C clears a typed line)
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

/**
 * The one line an unknown command gets: the whole help would push the conversation off the screen for
 * a typo. `/x` is a command, so a message that starts with `/` needs `//`, which the line says too.
 */
export function unknownCommand(name: string): string {
  return `Unknown command /${sanitizeName(name)}: /help lists the commands (// sends a line starting with /).`
}

/**
 * How many rows above the cursor a line typed after `prompt` starts, once Enter was pressed, in a
 * terminal `columns` wide: the rows the wrapped line took, plus the one readline moved down to. Counts
 * code points: a line of double-width characters takes more rows than this says, and a row of it stays.
 */
export function typedRows(prompt: string, line: string, columns: number): number {
  const width = [...prompt].length + [...line].length
  // readline moves the cursor to a row of its own when the line fills the last one exactly
  return Math.floor(width / Math.max(1, columns)) + 1
}
