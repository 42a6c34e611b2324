/**
 * What a line typed at the interactive prompt means: a message, or a `/command` and its argument;
 * and the help that lists the commands. Pure, so it is tested without a terminal.
 *
 * @packageDocumentation
 */

import { displayPos, displayWidth } from './display-width.js'
import { sanitizeName } from './format.js'

/** Help shown by `/help`. */
export const INTERACTIVE_HELP = `Commands:
  /help              this help
  /members           who is in the group
  /peers             peers connected now
  /invite            a one-time invite: it admits one person within 7 days, even while you are offline
  /invite --ask      an invite a member approves by hand, with /add
  /add <id|name>     add a member by peer id; a name only claimed in a join request asks you first
  /remove <name|id>  remove a member
  /history [n]       the last n messages (default 20)
  /quit              leave (Ctrl-D, or Ctrl-C on an empty line; Ctrl-C clears a typed line)
  /connect <addr>    dial a peer or relay by multiaddr; remembered for later starts
  /relays            the relays remembered from --bootstrap, dialled at every start
  /forget-relay <addr|id>  stop dialling a remembered relay, now and at later starts
Groups:
  /groups            your groups, with unread messages
  /switch <name|id>  show another group, and what you missed there
  /create <name>     found a new group and show it
  /join <invite>     ask to join a group by invite, and show it
  /leave             leave the group on screen (asks first)
  /rejoin            ask to be added again to a group you were removed from
  /forget <name|id>  delete a group you are no longer in, with its history, from this device
Anything else is sent to the group on screen; end a line with \\ to continue the message on the next.`

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
 * terminal `columns` wide: the rows the wrapped line took, by display width (a CJK character or an emoji
 * takes two columns), plus the one readline moved down to.
 */
export function typedRows(prompt: string, line: string, columns: number): number {
  // readline moves the cursor to a row of its own when the line fills the last one exactly
  return displayPos(prompt + line, columns).rows + 1
}

/** What {@link continueMessage} makes of a typed line. */
export type Continuation = { complete: false; lines: string[] } | { complete: true; line: string }

/**
 * Joins a message typed over several lines: a message line ending in `\` continues on the next one,
 * and the message is complete at the first line that does not. A command never continues. The lines
 * are joined with line breaks; since the first line is a message, so is the whole (`//` included).
 *
 * @param pending - the lines continued so far, without their `\`
 * @param line - the line just typed
 */
export function continueMessage(pending: readonly string[], line: string): Continuation {
  if (pending.length === 0 && parseInput(line).kind !== 'text') return { complete: true, line }
  if (line.endsWith('\\')) return { complete: false, lines: [...pending, line.slice(0, -1)] }
  return { complete: true, line: [...pending, line].join('\n') }
}

/** The prompt of a continued message's next line, as wide as `prompt`: `team> ` gives `....> `. */
export function continuationPrompt(prompt: string): string {
  return `${'.'.repeat(Math.max(0, displayWidth(prompt) - 2))}> `
}

/**
 * A pasted block of several lines as the prompt handles it: a message, always, so a block whose first
 * line starts with `/` is sent rather than run as a command.
 */
export function pastedMessage(text: string): string {
  return parseInput(text).kind === 'command' ? text.replace(/^(\s*)\//, '$1//') : text
}
