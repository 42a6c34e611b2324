/**
 * The p2pchat page: one WebSocket carrying the `--json` API, and the chat drawn from its methods and
 * notifications. Everything from the network is shown as text (see `dom.ts`).
 */
import type {
  ChatMessage,
  GroupSummary,
  MembershipNotice,
  PeerRef,
  ChatStatus as Status,
} from '../../node/chat-events.js'
import { append, h, on, replace, shortId } from './dom.js'
import { groupActions } from './group-actions.js'
import {
  candidateButtons,
  describeChange,
  type LockedNotice,
  lockedItem,
  memberItems,
  messageItem,
  requestItems,
  who,
} from './items.js'
import { systemLine } from './notices.js'
import { connectRpc, METHOD_NOT_FOUND, type Rpc, RpcError } from './rpc.js'

/** One group's conversation, kept while another is on screen. */
interface Conversation {
  list: HTMLOListElement
  shown: Set<string>
}

/**
 * Draws the page into `root` and connects to the node that served it. Called by `main.ts`; nothing
 * runs on import, so node can import this module (the error-class scan of the tests does).
 */
export function startPage(root: HTMLElement): void {
  const ui = {
    me: h('span', { id: 'me' }),
    connection: h('span', { id: 'connection', class: 'offline' }, 'connecting…'),
    groups: h('ul', { id: 'groups' }),
    groupActions: h('div', { id: 'group-actions', hidden: '' }),
    title: h('h2', { id: 'group-title' }),
    banner: h('p', { id: 'banner', hidden: '' }),
    conversation: h('div', { id: 'conversation' }),
    text: h('textarea', {
      id: 'text',
      rows: '2',
      placeholder: 'Message (Enter sends, Shift+Enter: new line)',
    }),
    send: h('button', { id: 'send', type: 'button' }, 'Send'),
    notice: h('p', { id: 'notice', role: 'alert' }),
    members: h('ul', { id: 'members' }),
    memberRef: h('input', { id: 'member-ref', placeholder: 'name or peer id', autocomplete: 'off' }),
    add: h('button', { id: 'add', type: 'button' }, 'Add'),
    remove: h('button', { id: 'remove', type: 'button' }, 'Remove'),
    requests: h('ul', { id: 'requests' }),
    invite: h('button', { id: 'invite', type: 'button' }, 'Create invite'),
    inviteAsk: h('button', { id: 'invite-ask', type: 'button' }, 'Invite, approved by hand'),
    inviteText: h('textarea', { id: 'invite-text', readonly: '', rows: '3', hidden: '' }),
    copy: h('button', { id: 'copy', type: 'button', hidden: '' }, 'Copy'),
    peers: h('ul', { id: 'peers' }),
  }

  const state = {
    me: undefined as PeerRef | undefined,
    groups: [] as GroupSummary[],
    /** Whether the API has `groups`/`create`/`join`/`leave` (a node serving several groups). */
    multi: false,
    selected: undefined as string | undefined,
    member: false,
    members: [] as PeerRef[],
    unread: new Map<string, number>(),
    requests: new Map<string, Map<string, string>>(),
    conversations: new Map<string, Conversation>(),
  }

  const wsUrl = new URL('rpc', location.href)
  wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'

  const rpc: Rpc = connectRpc(wsUrl.href, {
    open: () => {
      replace(ui.connection, 'connected')
      ui.connection.className = 'online'
      void load()
    },
    closed: () => {
      replace(ui.connection, 'disconnected, retrying…')
      ui.connection.className = 'offline'
    },
    notify: (method, params) => {
      // names and "you" are known once the first load is done
      if (early === undefined) onNotification(method, params)
      else early.push([method, params])
    },
  })
  /** Notifications that arrived before the first load finished; `undefined` after. */
  let early: Array<[string, Record<string, unknown>]> | undefined = []

  /** Params naming the group on screen; a server that serves one group ignores it. */
  function inGroup(params: Record<string, unknown> = {}): Record<string, unknown> {
    return state.selected === undefined ? params : { ...params, group: state.selected }
  }

  function showError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    ui.notice.className = 'error'
    replace(ui.notice, message)
    if (err instanceof RpcError && err.data?.name === 'UnverifiedName') {
      // a name only join requests gave: offer each candidate's peer id to add instead
      const add = (peerId: string): void => void act(() => rpc.call('add', inGroup({ member: peerId })))
      append(ui.notice, ...candidateButtons(err.data.candidates ?? [], add))
    }
  }

  function showInfo(text: string): void {
    ui.notice.className = 'info'
    replace(ui.notice, text)
  }

  /** Runs a user action, showing its error as the terminal would (`Access denied: …`). */
  async function act(action: () => Promise<unknown>): Promise<boolean> {
    try {
      await action()
      replace(ui.notice)
      ui.notice.className = ''
      return true
    } catch (err) {
      showError(err)
      return false
    }
  }

  function nameOf(peerId: string, fallback = ''): string {
    if (peerId === state.me?.peerId) return 'you'
    const known = state.members.find((m) => m.peerId === peerId)?.name ?? fallback
    return known === '' ? shortId(peerId) : known
  }

  function conversationOf(group: string): Conversation {
    let conversation = state.conversations.get(group)
    if (conversation === undefined) {
      conversation = { list: h('ol', { class: 'messages', 'aria-live': 'polite' }), shown: new Set() }
      state.conversations.set(group, conversation)
    }
    return conversation
  }

  /** Adds an item to a group's conversation, once per id; counts it unread if the group is not on screen. */
  function addItem(group: string, id: string | undefined, item: HTMLLIElement, unread: boolean): void {
    const conversation = conversationOf(group)
    if (id !== undefined) {
      if (conversation.shown.has(id)) return
      conversation.shown.add(id)
    }
    const list = conversation.list
    const atBottom =
      ui.conversation.scrollTop + ui.conversation.clientHeight >= ui.conversation.scrollHeight - 40
    list.append(item)
    if (group === state.selected) {
      if (atBottom) ui.conversation.scrollTop = ui.conversation.scrollHeight
    } else if (unread) {
      state.unread.set(group, (state.unread.get(group) ?? 0) + 1)
      renderGroups()
    }
  }

  function addMessage(m: ChatMessage): void {
    const own = m.from === state.me?.peerId
    addItem(m.group, m.id, messageItem(m, own), !own)
  }

  function addLocked(e: LockedNotice): void {
    addItem(e.group, `locked:${e.id}`, lockedItem(e, nameOf(e.from)), true)
  }

  function addSystem(group: string, text: string, kind = 'system'): void {
    addItem(group, undefined, h('li', { class: kind }, text), false)
  }

  function onNotification(method: string, params: Record<string, unknown>): void {
    switch (method) {
      case 'message':
        addMessage(params as unknown as ChatMessage)
        break
      case 'encrypted':
        addLocked(params as unknown as LockedNotice)
        break
      case 'membership': {
        const notice = params as unknown as MembershipNotice
        addSystem(
          notice.group,
          describeChange(notice, state.me?.peerId, state.groups.find((g) => g.id === notice.group)?.name),
        )
        const requests = state.requests.get(notice.group)
        for (const m of notice.members) requests?.delete(m.peerId)
        if (notice.group === state.selected) void refresh()
        else void loadGroups()
        break
      }
      case 'joinRequest': {
        const { group, peerId, name } = params as { group: string; peerId: string; name: string }
        if (state.members.some((m) => m.peerId === peerId) && group === state.selected) break
        const requests = state.requests.get(group) ?? new Map<string, string>()
        state.requests.set(group, requests)
        requests.set(peerId, name)
        renderRequests()
        break
      }
      case 'inviteForged': {
        const { group, inviter } = params as { group: string; inviter: PeerRef }
        addSystem(
          group,
          `!! FORGED INVITE: ${who(inviter, state.me?.peerId)} lied about who founded this group`,
          'warning',
        )
        break
      }
      case 'badEpochKey': {
        const { group, author } = params as { group: string; author: PeerRef }
        addSystem(
          group,
          `!! ${who(author, state.me?.peerId)} sent a group key that does not work; a new one is being made`,
          'warning',
        )
        break
      }
      default: {
        const line = systemLine(method, params, { selected: state.selected, me: state.me?.peerId })
        if (line !== undefined) addSystem(line.group, line.text)
      }
    }
  }

  /** Loads everything after the WebSocket (re)opens. */
  async function load(): Promise<void> {
    try {
      const status = await rpc.call<Status>('status')
      state.me = { peerId: status.peerId, name: status.name }
      replace(ui.me, h('bdi', {}, status.name), ` (${shortId(status.peerId)})`)
      ui.me.title = status.peerId
      await loadGroups(status)
      const groupId = state.selected ?? status.group?.id ?? state.groups.at(-1)?.id
      if (groupId !== undefined) await select(groupId)
      else render()
    } catch (err) {
      showError(err)
    }
    const held = early ?? []
    early = undefined
    for (const [method, params] of held) onNotification(method, params)
    void loadPeers()
  }

  /** The groups: from `groups` where the API has it, else the one group `status` names. */
  async function loadGroups(status?: Status): Promise<void> {
    try {
      const result = await rpc.call<unknown>('groups')
      const list = Array.isArray(result) ? result : (result as { groups?: unknown }).groups
      state.groups = Array.isArray(list) ? (list as GroupSummary[]).map(({ id, name }) => ({ id, name })) : []
      state.multi = true
    } catch (err) {
      if (!(err instanceof RpcError && err.code === METHOD_NOT_FOUND)) throw err
      const group = (status ?? (await rpc.call<Status>('status'))).group
      state.groups = group === null ? [] : [{ id: group.id, name: group.name }]
      state.multi = false
    }
    renderGroups()
  }

  async function select(groupId: string): Promise<void> {
    state.selected = groupId
    state.unread.delete(groupId)
    replace(ui.conversation, conversationOf(groupId).list)
    await refresh()
    const { messages } = await rpc
      .call<{ messages: ChatMessage[] }>('history', inGroup({ limit: 200 }))
      .catch(() => ({ messages: [] as ChatMessage[] }))
    for (const m of messages) addMessage(m)
    ui.conversation.scrollTop = ui.conversation.scrollHeight
  }

  /** The group on screen: whether this peer is a member, and who is. */
  async function refresh(): Promise<void> {
    const status = await rpc.call<Status>('status', inGroup())
    state.member = status.member
    state.members = await rpc
      .call<{ members: PeerRef[] }>('members', inGroup())
      .then((r) => r.members)
      .catch(() => [])
    const group = status.group
    if (group !== null && !state.groups.some((g) => g.id === group.id))
      state.groups.push({ id: group.id, name: group.name })
    replace(ui.title, group === null ? 'No group yet' : h('bdi', {}, group.name))
    if (group !== null && !status.member) {
      replace(
        ui.banner,
        `You are not a member of ${group.name} yet: a member must add you. Until then you cannot read its messages.`,
      )
      ui.banner.hidden = false
    } else {
      ui.banner.hidden = true
    }
    render()
  }

  async function loadPeers(): Promise<void> {
    try {
      const { peers } = await rpc.call<{ peers: PeerRef[] }>('peers')
      replace(
        ui.peers,
        ...(peers.length === 0
          ? [h('li', { class: 'empty' }, 'No peers connected.')]
          : peers.map((p) =>
              h('li', { title: p.peerId }, h('bdi', {}, p.name || '?'), ` (${shortId(p.peerId)})`),
            )),
      )
    } catch {
      // shown as disconnected already
    }
  }

  function render(): void {
    renderGroups()
    renderMembers()
    renderRequests()
  }

  function renderGroups(): void {
    replace(
      ui.groups,
      ...state.groups.map((g) => {
        const unread = state.unread.get(g.id) ?? 0
        const button = on(
          h('button', { type: 'button', class: 'group' }, h('bdi', {}, g.name)),
          'click',
          () => void select(g.id),
        )
        if (g.id === state.selected) button.setAttribute('aria-current', 'true')
        if (unread > 0)
          append(button, ' ', h('span', { class: 'unread', title: `${unread} unread` }, String(unread)))
        return h('li', {}, button)
      }),
    )
    ui.groupActions.hidden = !state.multi
  }

  function renderMembers(): void {
    const remove = (peerId: string): void => void act(() => rpc.call('remove', inGroup({ member: peerId })))
    replace(ui.members, ...memberItems(state.members, state.me?.peerId, remove))
  }

  function renderRequests(): void {
    const requests = state.selected === undefined ? undefined : state.requests.get(state.selected)
    const admit = (peerId: string): void => void act(() => rpc.call('add', inGroup({ member: peerId })))
    replace(ui.requests, ...requestItems(requests ?? new Map<string, string>(), admit))
  }

  async function sendComposed(): Promise<void> {
    const text = ui.text.value
    if (text.trim() === '') return
    if (await act(() => rpc.call('send', inGroup({ text })))) ui.text.value = ''
  }

  function memberAction(method: 'add' | 'remove'): void {
    const member = ui.memberRef.value.trim()
    if (member === '') {
      showError(new Error(`usage: type a name or peer id, then ${method}`))
      return
    }
    void act(() => rpc.call(method, inGroup({ member }))).then((ok) => {
      if (ok) ui.memberRef.value = ''
    })
  }

  on(ui.text, 'keydown', (event) => {
    const key = event as KeyboardEvent
    if (key.key === 'Enter' && !key.shiftKey && !key.isComposing) {
      event.preventDefault()
      void sendComposed()
    }
  })
  on(ui.send, 'click', () => void sendComposed())
  on(ui.add, 'click', () => memberAction('add'))
  on(ui.remove, 'click', () => memberAction('remove'))
  // an invite admits one person on its own, unless `ask`: then a member admits from the join request
  const makeInvite = (ask: boolean) => () =>
    void act(async () => {
      const { invite } = await rpc.call<{ invite: string }>('invite', inGroup({ ask }))
      ui.inviteText.value = invite
      ui.inviteText.hidden = false
      ui.copy.hidden = false
    })
  on(ui.invite, 'click', makeInvite(false))
  on(ui.inviteAsk, 'click', makeInvite(true))
  on(ui.copy, 'click', () => {
    ui.inviteText.select()
    void navigator.clipboard
      .writeText(ui.inviteText.value)
      .then(() => showInfo('Invite copied.'))
      .catch(() => showInfo('Select the invite and copy it.'))
  })

  replace(
    root,
    h('header', {}, h('h1', {}, 'p2pchat'), ' ', ui.me, ' ', ui.connection),
    h(
      'nav',
      {},
      h('h3', {}, 'Groups'),
      ui.groups,
      groupActions(ui.groupActions, {
        rpc,
        act,
        loadGroups: () => loadGroups(),
        select,
        selected: () => state.selected,
        leftSelected: async () => {
          state.selected = undefined
          await load()
        },
      }),
    ),
    h(
      'main',
      {},
      ui.title,
      ui.banner,
      ui.conversation,
      ui.notice,
      h('div', { id: 'composer' }, ui.text, ui.send),
    ),
    h(
      'aside',
      {},
      h(
        'section',
        {},
        h('h3', {}, 'Members'),
        ui.members,
        h('div', { class: 'row' }, ui.memberRef, ui.add, ui.remove),
      ),
      h('section', {}, h('h3', {}, 'Join requests'), ui.requests),
      h('section', {}, h('h3', {}, 'Invite'), ui.invite, ui.inviteAsk, ui.inviteText, ui.copy),
      h('section', {}, h('h3', {}, 'Peers'), ui.peers),
    ),
  )
  render()
  setInterval(() => void loadPeers(), 3000)
}
