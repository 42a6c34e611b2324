/**
 * The terminal's lines for what the node reports: messages (here or, as a one-line notice, in another
 * group), ciphertext, membership changes, a bad epoch key, a forged invite, join requests (and invites
 * that admitted nobody), this peer's own join request nobody answered, and when no peer is reachable or
 * one is again.
 *
 * @packageDocumentation
 */

import type { InviteRefusedNotice, MembershipNotice, PeerRef } from '../node/index.js'
import { formatEncryptedLine, sanitizeName } from './format.js'
import {
  formatBadEpochKey,
  formatForgedInvite,
  formatJoinUnanswered,
  formatMembershipChange,
  formatReachability,
  formatUnreadNotice,
  nameWithId,
} from './format-notices.js'
import type { ChatSession } from './session.js'
import type { TerminalView } from './terminal-view.js'

/** Why an invite presented in a join request admitted nobody, as the terminal says it. */
const INVITE_REFUSALS: Record<InviteRefusedNotice['reason'], string> = {
  forged: 'presented an invite that does not check out (forged, or taken from someone else)',
  expired: 'presented an expired invite: /add them by hand, or send a new invite',
  used: 'presented an invite that already admitted someone: /add them by hand, or send a new invite',
  void: 'presented an invite from someone no longer a member: /add them by hand, or send a new invite',
}

/** A line of output raised while the node starts: shown after the greeting, if still relevant. */
export interface EarlyLine {
  /** The message it shows, so it is not shown twice when the greeting's history has it. */
  messageId?: string
  /** The text to print, worked out when printed; `undefined` to drop it. */
  render: () => string | undefined
  /** A notice of a message in another group: the greeting's unread counts stand for it at start-up. */
  unreadNotice?: boolean
}

/**
 * Listens to the session's node and shows a line for each notice through `show` (which holds it while
 * the node starts); a membership change in the group on screen redraws the prompt (`setGroupPrompt`).
 */
export function attachNotices(
  session: ChatSession,
  view: TerminalView,
  show: (line: EarlyLine) => void,
  setGroupPrompt: (text: string) => void,
): void {
  const { node } = session
  const ref = (p: PeerRef): { peerId: string; name: string } => ({ peerId: p.peerId, name: p.name })

  /** `[club] ` before a line about a group not on screen; '' for the group on screen. */
  const where = (group: string): string =>
    view.inActiveGroup(group) ? '' : `[${sanitizeName(view.groupNameOf(group))}] `

  node.addEventListener('message:receive', ({ detail }) => {
    if (detail.from === node.peerId) return
    show({
      messageId: detail.id,
      unreadNotice: !view.inActiveGroup(detail.group),
      render: () => {
        if (view.inActiveGroup(detail.group)) return view.showMessage(detail)
        // read meanwhile: the user switched there and saw it
        const unread = session.unread(detail.group)
        if (unread === 0) return undefined
        return formatUnreadNotice(
          {
            groupName: view.groupNameOf(detail.group),
            from: { peerId: detail.from, name: detail.name || undefined },
            unread,
          },
          view.options(),
        )
      },
    })
  })
  node.addEventListener('message:encrypted', ({ detail }) => {
    show({
      render: () =>
        view.inActiveGroup(detail.group)
          ? formatEncryptedLine(
              {
                bytes: detail.bytes,
                // a peer that holds no log yet knows no sender's name
                ...(detail.name === '' ? {} : { name: detail.name }),
                peerId: detail.from,
                preview: detail.preview,
              },
              view.options(),
            )
          : undefined,
    })
  })
  node.addEventListener('membership:change', ({ detail }) => {
    show({
      render: () => {
        const active = view.inActiveGroup(detail.group)
        if (active) setGroupPrompt(view.prompt())
        const { change } = detail
        if (change?.action === 'remove' && change.member.peerId === node.peerId) {
          // in any group: where this peer stands is news wherever the user is looking
          const at = view.standing(detail.group)?.removed?.at ?? Date.now()
          return `* ${view.removal(detail.group, { by: ref(change.by), at })}`
        }
        // this peer's own changes in another group (a /create, say) were said where it made them
        if (!active && (change === null || change.by.peerId === node.peerId)) return undefined
        const line = membershipLine(detail.members, change)
        return active ? line : `* ${where(detail.group)}${line.slice(2)}`
      },
    })
  })
  const membershipLine = (members: PeerRef[], change: MembershipNotice['change']): string => {
    if (change === null) {
      return `* members are now: ${members.map((m) => sanitizeName(m.name)).join(', ')}`
    }
    if (change.action === 'create') {
      return formatMembershipChange(
        { type: 'create', by: ref(change.by), groupName: view.groupName() },
        view.options(),
      )
    }
    if (change.action === 'rename') {
      return formatMembershipChange(
        { type: 'rename', member: change.member, from: change.from },
        view.options(),
      )
    }
    return formatMembershipChange(
      { type: change.action, by: ref(change.by), member: ref(change.member) },
      view.options(),
    )
  }
  node.addEventListener('epoch:bad-key', ({ detail }) => {
    show({ render: () => `${where(detail.group)}${formatBadEpochKey(detail)}` })
  })
  node.addEventListener('invite:forged', ({ detail }) => {
    show({ render: () => `${where(detail.group)}${formatForgedInvite(detail)}` })
  })
  node.addEventListener('reachability:change', ({ detail }) => {
    show({ render: () => formatReachability(detail, view.options()) })
  })
  node.addEventListener('invite:refused', ({ detail }) => {
    const why = INVITE_REFUSALS[detail.reason]
    show({
      render: () => `${where(detail.group)}* ${nameWithId(detail)} ${why}`,
    })
  })
  node.addEventListener('join:unanswered', ({ detail }) => {
    show({ render: () => `${where(detail.group)}${formatJoinUnanswered(detail, node.peerId)}` })
  })
  node.addEventListener('join:request', ({ detail }) => {
    show({
      render: () => {
        const asks = `${nameWithId(detail)} asks to join`
        if (view.inActiveGroup(detail.group)) return `* ${asks}: /add ${detail.peerId}`
        const group = sanitizeName(view.groupNameOf(detail.group))
        return `* [${group}] ${asks}: /switch ${group}, then /add ${detail.peerId}`
      },
    })
  })
}
