/**
 * The items of a conversation, built from the API's notifications. Pure: what they need of the page
 * (who "you" are, a sender's name) is passed in. Everything from the network goes in as text.
 */
import type { ChatMessage, EncryptedNotice, MembershipNotice, PeerRef } from '../../node/chat-events.js'
import { h, on, shortId, timeOf } from './dom.js'

/** The `encrypted` notification: `EncryptedNotice` as JSON-RPC sends it, without the name. */
export type LockedNotice = Omit<EncryptedNotice, 'name'>

/** A message this page can read; `own` when this node sent it. */
export function messageItem(m: ChatMessage, own: boolean): HTMLLIElement {
  return h(
    'li',
    { class: own ? 'msg own' : 'msg', 'data-id': m.id, 'data-from': m.from },
    h('div', { class: 'meta' }, h('bdi', { class: 'name' }, own ? 'you' : m.name), ' ', timeOf(m.ts)),
    h('div', { class: 'text', dir: 'auto' }, m.text),
  )
}

/** A message this node cannot read: a locked bubble with its size and the start of its ciphertext. */
export function lockedItem(e: LockedNotice, senderName: string): HTMLLIElement {
  return h(
    'li',
    { class: 'msg locked', 'data-id': e.id, 'data-from': e.from },
    h(
      'div',
      { class: 'meta' },
      h('bdi', { class: 'name' }, senderName),
      ' ',
      h('span', { class: 'lock' }, `locked: ${e.bytes} encrypted bytes you cannot read`),
    ),
    h('code', { class: 'preview' }, e.preview),
  )
}

/** A peer as the page names it: "you", or its name and short id. */
export function who(peer: PeerRef, me: string | undefined): string {
  return peer.peerId === me ? 'you' : `${peer.name} (${shortId(peer.peerId)})`
}

/** The line for a membership change, as the terminal words it. */
export function describeChange(
  n: MembershipNotice,
  me: string | undefined,
  groupName: string | undefined,
): string {
  const { change } = n
  if (change === null) return `* members are now: ${n.members.map((m) => m.name).join(', ')}`
  switch (change.action) {
    case 'create':
      return `* ${who(change.by, me)} created ${groupName ?? 'the group'}`
    case 'add':
      return `* ${who(change.by, me)} added ${who(change.member, me)}`
    case 'remove':
      return change.by.peerId === change.member.peerId
        ? `* ${who(change.by, me)} left`
        : `* ${who(change.by, me)} removed ${who(change.member, me)}`
    case 'rename':
      return `* ${change.from} (${shortId(change.member.peerId)}) is now ${change.member.name}`
  }
}

/** The member list: each member by name and short id, a remove button on every one but `me`. */
export function memberItems(
  members: readonly PeerRef[],
  me: string | undefined,
  remove: (peerId: string) => void,
): HTMLLIElement[] {
  return members.map((m) =>
    h(
      'li',
      { title: m.peerId },
      h('bdi', {}, m.name),
      ` (${shortId(m.peerId)})`,
      m.peerId === me
        ? ' (you)'
        : on(
            h('button', { type: 'button', class: 'remove-member', title: `Remove ${m.name}` }, '×'),
            'click',
            () => remove(m.peerId),
          ),
    ),
  )
}

/** The join requests of the group on screen (peer id → claimed name), each with an Admit button. */
export function requestItems(
  requests: ReadonlyMap<string, string>,
  admit: (peerId: string) => void,
): HTMLLIElement[] {
  const items = [...requests].map(([peerId, name]) =>
    h(
      'li',
      { title: peerId },
      h('bdi', {}, name),
      ` (${shortId(peerId)}) asks to join `,
      on(h('button', { type: 'button', class: 'admit' }, 'Admit'), 'click', () => admit(peerId)),
    ),
  )
  return items.length === 0 ? [h('li', { class: 'empty' }, 'None.')] : items
}

/** For an `UnverifiedName` error: a button per peer that asked to join under that name. */
export function candidateButtons(
  candidates: readonly PeerRef[],
  add: (peerId: string) => void,
): Array<string | HTMLElement> {
  return candidates.flatMap((c) => [
    ' ',
    on(
      h('button', { type: 'button', class: 'candidate' }, `Add ${c.name} (${shortId(c.peerId)})`),
      'click',
      () => add(c.peerId),
    ),
  ])
}
