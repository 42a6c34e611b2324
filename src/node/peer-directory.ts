import { peerIdFromString } from '@libp2p/peer-id'
import type { Group, MemberInfo } from '../membership/index.js'
import type { PeerRef } from './chat-events.js'
import { AmbiguousMemberError, UnknownMemberError, UnverifiedNameError } from './errors.js'
import type { ChatStore } from './store.js'

/** What a {@link PeerDirectory} reads from. */
export interface PeerDirectoryComponents {
  /** This peer. */
  self: PeerRef
  /** The peers table: names stored from join requests. */
  store: Pick<ChatStore, 'isOpen' | 'peers' | 'peerName'>
  /** Every group this node takes part in. */
  groups: () => Iterable<Group>
  /** Every join requester remembered, over all groups, with the name it asked under. */
  requesters: () => Iterable<[string, { name: string }]>
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
    for (const other of this.#c.groups()) {
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
    for (const [peerId, request] of this.#c.requesters()) {
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
