/**
 * How the terminal shows a node's state: names and colours, the group on screen, the greeting and a
 * group's header.
 *
 * @packageDocumentation
 */

import type { ChatMessage, GroupStanding, Removal } from '../node/index.js'
import { type FormatOptions, formatDelivery, formatMessageLine, sanitizeName } from './format.js'
import { formatInvitedBy, formatRemoval } from './format-notices.js'
import type { CliIO } from './io.js'
import type { ChatSession } from './session.js'

/** How the terminal shows a node's state: names, colours, which group is on screen. */
export interface TerminalView {
  groupName: () => string
  /** The name of any of the node's groups (the end of its id once forgotten). */
  groupNameOf: (group: string) => string
  /** The prompt: the name of the group on screen. */
  prompt: () => string
  options: () => FormatOptions
  showMessage: (m: ChatMessage) => string
  /** The echo of a line this peer sent: the message, then to how many peers it went (`✓3`). */
  showSent: (sent: { ts: number; text: string; recipients: number }) => string
  inActiveGroup: (group: string) => boolean
  /** Where this peer stands in a group; undefined once the group is forgotten. */
  standing: (group: string) => GroupStanding | undefined
  /** "you were removed from team by alice at 14:02", "you left team at 14:02". */
  removal: (group: string, removal: Pick<Removal, 'by' | 'at'>) => string
}

/** The view of `session` for a terminal, with colours unless `noColour`. */
export function terminalView(session: ChatSession, noColour: boolean): TerminalView {
  const { node } = session
  const names = (): Map<string, string> => {
    const map = new Map<string, string>()
    const group = session.groupId
    if (group !== undefined) for (const m of node.members(group)) map.set(m.peerId, m.name)
    for (const p of node.peers()) if (p.name !== '') map.set(p.peerId, p.name)
    return map
  }
  const options = (): FormatOptions => ({ noColour, namesInUse: names(), now: Date.now() })
  const groupNameOf = (group: string): string =>
    node.groups().find((g) => g.id === group)?.name ?? group.slice(-8)
  const groupName = (): string => session.status().group?.name ?? 'p2pchat'
  return {
    groupName,
    groupNameOf,
    prompt: () => `${sanitizeName(groupName())}> `,
    options,
    showMessage: (m) =>
      formatMessageLine(
        { ts: m.ts, name: m.name, peerId: m.from, text: m.text, self: m.from === node.peerId },
        options(),
      ),
    showSent: ({ ts, text, recipients }) => {
      const line = formatMessageLine(
        { ts, name: node.name, peerId: node.peerId, text, self: true },
        options(),
      )
      return `${line} ${formatDelivery(recipients, options())}`
    },
    inActiveGroup: (group) => group === session.groupId,
    standing: (group) => {
      try {
        return node.standing(group)
      } catch {
        return undefined
      }
    },
    removal: (group, removal) =>
      formatRemoval({ groupName: groupNameOf(group), ...removal, self: node.peerId }, options()),
  }
}

/**
 * Prints who this peer is, its addresses, its group, and the last messages.
 *
 * @returns the ids of the messages printed
 */
export function greet(session: ChatSession, view: TerminalView, io: CliIO): Set<string> {
  const { node } = session
  const status = session.status()
  io.stdout(`p2pchat: you are ${sanitizeName(node.name)} (${node.peerId})\n`)
  for (const addr of status.addrs) io.stdout(`  listening on ${addr}\n`)
  if (status.group === null) {
    io.stdout('You are in no group yet: /create <name> or /join <invite>.\n')
    return new Set()
  }
  const shown = showGroup(session, view, (text) => io.stdout(`${text}\n`), 10)
  const others = session.groups().filter((g) => !g.active)
  if (others.length > 0) {
    const list = others.map((g) => `${sanitizeName(g.name)}${g.unread > 0 ? ` (${g.unread} unread)` : ''}`)
    io.stdout(`Your other groups: ${list.join(', ')}. /switch <name> shows one.\n`)
  }
  return shown
}

/**
 * Prints the group on screen: its name and id, who invited this peer, where it stands, and its last
 * `messages` messages.
 *
 * @returns the ids of the messages printed
 */
export function showGroup(
  session: ChatSession,
  view: TerminalView,
  out: (text: string) => void,
  messages: number,
): Set<string> {
  const { node } = session
  const shown = new Set<string>()
  const status = session.status()
  if (status.group === null) return shown
  const { group } = status
  const name = sanitizeName(group.name)
  out(`Group ${name} (${group.id})`)
  // names alone can be copied: the fingerprints tell this group's alice from a look-alike's
  if (group.inviter !== null) out(formatInvitedBy(group.founder, group.inviter))
  if (status.member) {
    const members = node.members(group.id)
    out(`Members: ${members.map((m) => sanitizeName(m.name)).join(', ')}`)
    if (members.every((m) => m.peerId === node.peerId)) out(`Invite others with: ${node.invite(group.id)}`)
  } else if (status.removed !== null) {
    const removal = view.removal(group.id, status.removed)
    out(
      status.removed.rejoining
        ? `${capitalise(removal)}; you asked to be added again: a member must /add you.`
        : `${capitalise(removal)}. /rejoin asks to be added again; /forget ${name} deletes it from this device.`,
    )
  } else {
    out(
      `You are not a member of ${name} yet: a member online admits you if your invite allows it, else must /add you. Until then you cannot read its messages.`,
    )
  }
  for (const m of messages > 0 ? node.history(group.id, messages) : []) {
    shown.add(m.id)
    out(view.showMessage(m))
  }
  return shown
}

function capitalise(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}`
}
