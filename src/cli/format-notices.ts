/**
 * Pure formatting of the terminal's notices: membership changes, who invited this peer, a bad epoch key,
 * a forged invite, a removal, the `/groups` list and the unread notice. Everything from the network is
 * sanitised through `format.ts` first.
 *
 * @packageDocumentation
 */

import {
  type FormatOptions,
  formatWhen,
  type PeerRef,
  peerLabel,
  sanitizeName,
  sanitizeText,
  shortId,
} from './format.js'

/** A membership event, as {@link formatMembershipChange} shows it. */
export type MembershipChange =
  | { type: 'create'; by: PeerRef; groupName: string }
  | { type: 'add'; by: PeerRef; member: PeerRef }
  | { type: 'remove'; by: PeerRef; member: PeerRef }
  | { type: 'rename'; member: { peerId: string; name: string }; from: string }

/**
 * A one-line notice for a membership event: `* alice created team`, `* alice added bob`,
 * `* alice removed bob`, `* bob left` when a member removed themselves, or `* eve is now evelyn` when
 * a member renamed itself.
 */
export function formatMembershipChange(change: MembershipChange, options: FormatOptions = {}): string {
  if (change.type === 'rename') {
    return `* ${peerLabel({ ...change.member, name: change.from }, options)} is now ${sanitizeName(change.member.name)}`
  }
  const by = peerLabel(change.by, options)
  switch (change.type) {
    case 'create':
      return `* ${by} created ${sanitizeName(change.groupName)}`
    case 'add':
      return `* ${by} added ${peerLabel(change.member, options)}`
    case 'remove':
      return change.member.peerId === change.by.peerId
        ? `* ${by} left`
        : `* ${by} removed ${peerLabel(change.member, options)}`
  }
}

/** A peer as a name and a fingerprint: `alice (…VHng)`, so a look-alike name shows as someone else. */
export function nameWithId(peer: { peerId: string; name: string }): string {
  return `${sanitizeName(peer.name)} (${shortId(peer.peerId)})`
}

/**
 * Who founded the group and who invited this peer, for the greeting of a peer that joined by invite:
 * `Founded by alice (…VHng); invited by bob (…CfXZ)`.
 */
export function formatInvitedBy(
  founder: { peerId: string; name: string } | null,
  inviter: { peerId: string; name: string },
): string {
  return founder === null
    ? `Invited by ${nameWithId(inviter)}`
    : `Founded by ${nameWithId(founder)}; invited by ${nameWithId(inviter)}`
}

/**
 * The warning for an epoch whose key, sealed to this member, is unusable: its author split or withheld
 * the group key. This member has already started a rekey.
 *
 * @example
 * ```ts
 * formatBadEpochKey({ author: { peerId, name: 'mallory' } })
 * // → '!! the group key mallory (…Q7mR) chose does not work for you (…); a new one is on its way'
 * ```
 */
export function formatBadEpochKey(notice: {
  author: { peerId: string; name: string }
  reason: string
}): string {
  return `!! the group key ${nameWithId(notice.author)} chose does not work for you (${sanitizeName(notice.reason)}); you sent a new one to everyone`
}

/** What a forged invite claimed and what the group really is, as {@link formatForgedInvite} shows it. */
export interface ForgedInviteLine {
  inviter: { peerId: string; name: string }
  claimed: { groupName: string; founder: { peerId: string; name: string } }
  actual: { groupName: string; founder: { peerId: string; name: string } }
}

/**
 * The warning for an invite the group's genesis contradicts. The group id is the hash of the genesis,
 * so the genesis is right and the inviter lied: the user must not take the group for the one it claimed
 * to be.
 *
 * @example
 * ```ts
 * formatForgedInvite({ inviter, claimed, actual })
 * // → '!! FORGED INVITE: bob (…CfXZ) said this group is team, founded by alice (…VHng), but it is team,
 * //    founded by alice (…Q7mR). It is not the group the invite claimed: do not trust it; /quit to leave.'
 * ```
 */
export function formatForgedInvite(line: ForgedInviteLine): string {
  const { inviter, claimed, actual } = line
  return (
    `!! FORGED INVITE: ${nameWithId(inviter)} said this group is ${sanitizeName(claimed.groupName)}, ` +
    `founded by ${nameWithId(claimed.founder)}, but it is ${sanitizeName(actual.groupName)}, ` +
    `founded by ${nameWithId(actual.founder)}. It is not the group the invite claimed: do not trust it; /quit to leave.`
  )
}

/** How this peer stopped being a member, as {@link formatRemoval} shows it. */
export interface RemovalLine {
  groupName: string
  /** Who removed it; itself when it left. */
  by: { peerId: string; name: string }
  /** When this peer learned of it, or null when unknown. */
  at: number | null
  /** This peer's id. */
  self: string
}

/**
 * What a removed member sees instead of "not a member yet": `you were removed from team by alice at
 * 14:02`, or `you left team at 14:02`.
 */
export function formatRemoval(line: RemovalLine, options: FormatOptions = {}): string {
  const at = line.at === null ? '' : ` at ${formatWhen(line.at, options.now)}`
  const group = sanitizeName(line.groupName)
  return line.by.peerId === line.self
    ? `you left ${group}${at}`
    : `you were removed from ${group} by ${peerLabel(line.by, options)}${at}`
}

/** A group as `/groups` lists it. */
export interface GroupListEntry {
  id: string
  name: string
  member: boolean
  /** How this peer stopped being a member, if it did. */
  removed: { by: { peerId: string; name: string }; at: number | null; rejoining: boolean } | null
  unread: number
  active: boolean
}

/**
 * `/groups`: one line per group, the one on screen marked `>`, with its unread count or where this peer
 * stands when it is no member.
 *
 * @example
 * ```ts
 * formatGroupList([...], self)
 * // → 'Groups:\n> team (…k5n3m)\n  club (…7ab2q)  2 unread\n  old (…x9e4d)  you left old at 14:02'
 * ```
 */
export function formatGroupList(
  groups: readonly GroupListEntry[],
  self: string,
  options: FormatOptions = {},
): string {
  if (groups.length === 0) return 'You are in no group: /create <name> or /join <invite>.'
  const lines = groups.map((g) => {
    const notes: string[] = []
    if (g.unread > 0) notes.push(`${g.unread} unread`)
    if (g.removed !== null) {
      notes.push(formatRemoval({ groupName: g.name, by: g.removed.by, at: g.removed.at, self }, options))
      if (g.removed.rejoining) notes.push('asking to be added again')
    } else if (!g.member) notes.push('waiting for a member to add you')
    const note = notes.length === 0 ? '' : `  ${notes.join('; ')}`
    return `${g.active ? '>' : ' '} ${sanitizeName(g.name)} (${shortId(g.id)})${note}`
  })
  return `Groups:\n${lines.join('\n')}`
}

/**
 * The one-line notice for a message in a group not on screen: `* [club] new message from bob (2 unread:
 * /switch club)`.
 */
export function formatUnreadNotice(
  notice: { groupName: string; from: PeerRef; unread: number },
  options: FormatOptions = {},
): string {
  const group = sanitizeName(notice.groupName)
  return `* [${group}] new message from ${peerLabel(notice.from, options)} (${notice.unread} unread: /switch ${group})`
}

/** A change of reachability, as {@link formatReachability} shows it. */
export interface ReachabilityLine {
  reachable: boolean
  /** The peer that came back; null when none is reachable. `unverified`: its name is only claimed. */
  peer: { peerId: string; name: string; unverified?: boolean } | null
  /** Known peers and relays being dialled again. */
  retrying: number
}

/**
 * The line when no peer at all is reachable any more, and when one is again: `* no peer is reachable
 * now; ...`, `* connected again: bob is reachable`. A peer without a name (a relay) shows its short id; a
 * name only claimed (a joiner's, an inviter's before the log is here) shows with it and a mark, as a join
 * request does: `* connected again: bob (…CfXZ, name not verified) is reachable`.
 */
export function formatReachability(line: ReachabilityLine, options: FormatOptions = {}): string {
  if (line.reachable) {
    const peer = line.peer
    const who =
      peer === null
        ? 'a peer'
        : peer.unverified === true && peer.name !== ''
          ? `${sanitizeName(peer.name)} (${shortId(peer.peerId)}, name not verified)`
          : peerLabel({ peerId: peer.peerId, name: peer.name || undefined }, options)
    return `* connected again: ${who} is reachable`
  }
  if (line.retrying === 0) {
    return '* no peer is reachable, and none is known to try again: /connect <multiaddr>, or give someone an /invite. What you send waits here.'
  }
  const known = `${line.retrying} known ${line.retrying === 1 ? 'peer' : 'peers'}`
  return `* no peer is reachable now; trying ${known} again. What you send waits here, and goes when one connects.`
}

/**
 * What `--forget-relay` did not forget, as one line at start: `--forget-relay: no remembered relay is
 * nobody; relays remembered: /ip4/…` (as `/forget-relay` says it). `undefined` when every name matched.
 *
 * @param unmatched - the names given that matched no remembered relay
 * @param remembered - the relays remembered now
 */
export function forgetRelayNotice(
  unmatched: readonly string[],
  remembered: readonly string[],
): string | undefined {
  if (unmatched.length === 0) return undefined
  const names = unmatched.map((ref) => sanitizeText(ref)).join(', ')
  const known = remembered.length === 0 ? 'none' : remembered.map((addr) => sanitizeText(addr)).join(', ')
  return `--forget-relay: no remembered relay is ${names}; relays remembered: ${known}`
}

/**
 * The line when this peer's join request has reached the group for a while and nobody added it: `* nobody
 * has admitted you yet (1 min since your request reached the group): your invite may have expired or been
 * used. Ask alice (…VHng) for a new invite, or a member to /add <your peer id>`.
 */
export function formatJoinUnanswered(
  notice: { waitedMs: number; admits: boolean; inviter: { peerId: string; name: string } | null },
  selfId: string,
): string {
  const minutes = Math.max(1, Math.round(notice.waitedMs / 60_000))
  const waited = `${minutes} min since your request reached the group`
  const who = notice.inviter === null ? 'a member' : nameWithId(notice.inviter)
  const add = `/add ${sanitizeText(selfId)}`
  if (!notice.admits) {
    const asked = notice.inviter === null ? who : `${who} or another member`
    return `* nobody has added you yet (${waited}): ask ${asked} to ${add}`
  }
  return `* nobody has admitted you yet (${waited}): your invite may have expired or been used. Ask ${who} for a new invite, or a member to ${add}`
}
