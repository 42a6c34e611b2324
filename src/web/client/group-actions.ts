/** The panel to create, join and leave groups (shown when the API has the multi-group methods). */
import { append, h, on } from './dom.js'
import type { Rpc } from './rpc.js'

/** What the panel needs of the page. */
export interface GroupActionsInit {
  rpc: Rpc
  /** Runs an action, showing its error; true when it succeeded. */
  act(action: () => Promise<unknown>): Promise<boolean>
  /** Reloads the group list. */
  loadGroups(): Promise<void>
  /** Shows a group. */
  select(groupId: string): Promise<void>
  /** The group on screen, if any. */
  selected(): string | undefined
  /** Forgets the group on screen and reloads everything (after leaving it). */
  leftSelected(): Promise<void>
}

/** Fills `container` with the create, join and leave controls, and returns it. */
export function groupActions(container: HTMLElement, init: GroupActionsInit): HTMLElement {
  const { rpc, act } = init
  const name = h('input', { id: 'new-group', placeholder: 'new group name', autocomplete: 'off' })
  const invite = h('input', { id: 'join-invite', placeholder: 'invite', autocomplete: 'off' })
  // create and join answer {group: {id, name}}: show the new group
  const adopt = async (result: unknown): Promise<void> => {
    const id = (result as { group?: { id?: string } }).group?.id
    await init.loadGroups()
    if (typeof id === 'string') await init.select(id)
  }
  const button = (id: string, label: string, onClick: () => void): HTMLElement =>
    on(h('button', { type: 'button', id }, label), 'click', onClick)
  append(
    container,
    h(
      'div',
      {},
      name,
      button('create', 'Create', () => {
        void act(async () => adopt(await rpc.call('create', { name: name.value.trim() })))
      }),
    ),
    h(
      'div',
      {},
      invite,
      button('join', 'Join', () => {
        void act(async () => adopt(await rpc.call('join', { invite: invite.value.trim() })))
      }),
    ),
    button('leave', 'Leave this group', () => {
      const group = init.selected()
      if (group === undefined || !confirm('Leave this group?')) return
      void act(async () => {
        await rpc.call('leave', { group })
        await init.leftSelected()
      })
    }),
  )
  return container
}
