/**
 * System lines for the notifications that need no state of the page but the group on screen and who "you"
 * are: a join request whose invite admitted nobody, a join request of yours nobody answered, and whether
 * any peer is reachable. Pure; worded as the terminal
 * words them (`src/cli/interactive-notices.ts`), with the page's buttons for the terminal's commands.
 */
import type { InviteRefusedNotice, JoinUnansweredNotice, ReachabilityChange } from '../../node/chat-events.js'
import { shortId } from './dom.js'

/** Why an invite presented in a join request admitted nobody, as the page says it. */
const REFUSALS: Record<InviteRefusedNotice['reason'], string> = {
  forged: 'presented an invite that does not check out (forged, or taken from someone else)',
  expired: 'presented an expired invite: admit them by hand, or send a new invite',
  used: 'presented an invite that already admitted someone: admit them by hand, or send a new invite',
  void: 'presented an invite from someone no longer a member: admit them by hand, or send a new invite',
}

/** A line for the conversation of `group`. */
export interface SystemLine {
  group: string
  text: string
}

/**
 * The system line for notification `method`, if it is one of those this module words: `inviteRefused`
 * and `joinUnanswered` in their group's conversation, `reachability` (which concerns no group) in the one
 * on screen.
 *
 * @param page - the group on screen, if any, and this node's peer id
 */
export function systemLine(
  method: string,
  params: Record<string, unknown>,
  page: { selected: string | undefined; me: string | undefined },
): SystemLine | undefined {
  const { selected } = page
  if (method === 'joinUnanswered') {
    const n = params as unknown as JoinUnansweredNotice
    const who = n.inviter === null ? 'a member' : `${n.inviter.name} (${shortId(n.inviter.peerId)})`
    const add = `to add you by your peer id, ${page.me ?? 'shown at the top'}`
    const text = n.admits
      ? `* nobody has admitted you yet: your invite may have expired or been used. Ask ${who} for a new invite, or a member ${add}`
      : `* nobody has added you yet: ask ${n.inviter === null ? who : `${who} or another member`} ${add}`
    return { group: n.group, text }
  }
  if (method === 'inviteRefused') {
    const n = params as unknown as InviteRefusedNotice
    const why = REFUSALS[n.reason] ?? 'presented an invite that admitted nobody'
    return { group: n.group, text: `* ${n.name} (${shortId(n.peerId)}) ${why}` }
  }
  if (method === 'reachability' && selected !== undefined) {
    return { group: selected, text: reachabilityText(params as unknown as ReachabilityChange) }
  }
  return undefined
}

function reachabilityText(n: ReachabilityChange): string {
  if (n.reachable) {
    const p = n.peer
    const peer =
      p === null
        ? 'a peer'
        : p.name === ''
          ? shortId(p.peerId)
          : `${p.name} (${shortId(p.peerId)}${p.unverified === true ? ', name not verified' : ''})`
    return `* connected again: ${peer} is reachable`
  }
  if (n.retrying === 0) {
    return '* no peer is reachable, and none is known to try again: connect to a peer, or give someone an invite. What you send waits here.'
  }
  const known = `${n.retrying} known ${n.retrying === 1 ? 'peer' : 'peers'}`
  return `* no peer is reachable now; trying ${known} again. What you send waits here, and goes when one connects.`
}
