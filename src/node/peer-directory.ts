import { peerIdFromString } from '@libp2p/peer-id'
import type { Group, MemberInfo } from '../membership/index.js'
import type { ClaimedPeerRef, PeerRef } from './chat-events.js'
import { AmbiguousMemberError, UnknownMemberError, UnverifiedNameError } from './errors.js'
import type { InvitePeer } from './invite.js'
import type { ChatStore } from './store.js'

/** What a {@link PeerDirectory} reads from. */
export interface PeerDirectoryComponents {
  /** This peer. */
  self: PeerRef
  /** The peers table: names stored from join requests. */
  store: Pick<ChatStore, 'isOpen' | 'peers' | 'peerName'>
  /** Every group this node takes part in, with the claims made in it about who is who. */
  chatGroups: () => Iterable<DirectoryGroup>
}

/** What a {@link PeerDirectory} reads of one chat group. */
export interface DirectoryGroup {
  group: Group
  /** The join requesters remembered, with the name each asked under. */
  joins: { requesters(): Iterable<[string, { name: string }]> }
  /** The invite this peer joined the group with, if any: the inviter and founder as it names them. */
  invite?: { inviter: InvitePeer; founder: InvitePeer } | undefined
}

/**
 * Who is who: the names of peers, and which peer a user means by a name or an id. Names from the groups'
 * signed events are facts; names from join requests and the peers table are claims anyone can make.
 */
export class PeerDirectory {
  readonly #c: PeerDirectoryComponents

  constructor(components: PeerDirectoryComponents) {
    this.#c = components
  }

  /** The name of a peer: from `group`'s events, any group's, then (unless `stored` is false) the peers table. */
  nameOf(peerId: string, group?: Group, stored = true): string | undefined {
    const { self, store } = this.#c
    if (peerId === self.peerId) return self.name
    const fromGroup = group?.nameOf(peerId)
    if (fromGroup !== undefined) return fromGroup
    for (const { group: other } of this.#c.chatGroups()) {
      const name = other.nameOf(peerId)
      if (name !== undefined) return name
    }
    return stored && store.isOpen ? store.peerName(peerId) : undefined
  }

  /** `peerId` with its name ('' if none is known), as the chat shows a peer. */
  ref(peerId: string, group?: Group): PeerRef {
    return { peerId, name: this.nameOf(peerId, group) ?? '' }
  }

  /**
   * `peerId` with the best name known, for a line about a peer that need not be a member of any group (one
   * back after no peer was reachable): the name a group's signed events give it, else a name only claimed
   * (by a join request, by the invite this peer joined with, or in the peers table), marked `unverified`;
   * '' if none is known.
   */
  claimedRef(peerId: string): ClaimedPeerRef {
    const verified = this.nameOf(peerId, undefined, false)
    if (verified !== undefined) return { peerId, name: verified }
    const claimed = this.#claimedName(peerId)
    return claimed === undefined ? { peerId, name: '' } : { peerId, name: claimed, unverified: true }
  }

  #claimedName(peerId: string): string | undefined {
    for (const [id, request] of this.#requesters()) if (id === peerId) return request.name
    for (const { invite } of this.#c.chatGroups()) {
      for (const peer of [invite?.inviter, invite?.founder]) if (peer?.peerId === peerId) return peer.name
    }
    const { store } = this.#c
    return store.isOpen ? store.peerName(peerId) : undefined
  }

  *#requesters(): Iterable<[string, { name: string }]> {
    for (const { joins } of this.#c.chatGroups()) yield* joins.requesters()
  }

  /**
   * The member of `group` a user means by `ref`, a peer id or a display name.
   *
   * @throws {AmbiguousMemberError | UnknownMemberError}
   */
  resolveMember(ref: string, group: Group): MemberInfo {
    const members = group.members()
    const byId = members.find((m) => m.id === ref)
    if (byId !== undefined) return byId
    const byName = members.filter((m) => m.name === ref)
    if (byName.length === 1) return byName[0] as MemberInfo
    if (byName.length > 1) {
      throw new AmbiguousMemberError(
        `several members are called ${ref}; use a peer id: ${byName.map((m) => m.id).join(', ')}`,
        byName.map((m) => ({ peerId: m.id, name: m.name })),
      )
    }
    throw new UnknownMemberError(`${ref} is not a member of ${group.name}`)
  }

  /**
   * The peer a user means by `ref`: a peer id, or a name. A name resolves on its own only when `group`'s
   * signed membership events give it to exactly one peer (a former member re-added by name). Names from
   * join requests and the peers table are claims anyone can make, so they only produce candidates for
   * the user to confirm by peer id.
   *
   * @throws {AmbiguousMemberError} the events give the name to several peers, or to one while other
   * peers claim it too
   * @throws {UnverifiedNameError} only join requesters (or stored peers) claim the name
   * @throws {UnknownMemberError} no peer is known by the name
   */
  resolvePeer(ref: string, group: Group): PeerRef {
    if (isPeerId(ref)) return { peerId: ref, name: this.nameOf(ref, group) ?? `peer-${ref.slice(-6)}` }
    const verified = new Set<string>()
    for (const event of group.events()) {
      // the last name the events give a peer is the one it goes by
      if (
        event.subject !== undefined &&
        event.payload.subjectName === ref &&
        group.nameOf(event.subject) === ref
      )
        verified.add(event.subject)
    }
    const claimed = new Set<string>()
    // the peers table is read once; requesters carry the name they asked with
    for (const peer of this.#c.store.peers()) if (peer.name === ref) claimed.add(peer.peerId)
    for (const [peerId, request] of this.#requesters()) {
      if (request.name === ref && (this.nameOf(peerId, group, false) ?? ref) === ref) claimed.add(peerId)
    }
    for (const peerId of verified) claimed.delete(peerId)
    const candidates = [...verified, ...claimed].map((peerId) => ({ peerId, name: ref }))
    const [only] = candidates
    if (only !== undefined && candidates.length === 1 && verified.size === 1) return only
    if (verified.size > 0) {
      throw new AmbiguousMemberError(
        `several peers are called ${ref}; use a peer id: ${candidates.map((c) => c.peerId).join(', ')}`,
        candidates,
      )
    }
    if (candidates.length > 0) throw new UnverifiedNameError(ref, candidates)
    throw new UnknownMemberError(
      `no peer called ${ref} is known; ask them for their peer id (shown at start)`,
    )
  }
}

function isPeerId(ref: string): boolean {
  try {
    peerIdFromString(ref)
    return true
  } catch {
    return false
  }
}
