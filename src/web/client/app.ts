/**
 * The p2pchat page: one WebSocket carrying the `--json` API, and the chat drawn from its methods and
 * notifications. Everything from the network is shown as text (see `dom.ts`).
 */
import type {
  ChatMessage,
  EncryptedNotice,
  GroupSummary,
  MembershipNotice,
  PeerRef,
  ChatStatus as Status,
} from '../../node/chat-events.js'
import { append, h, on, replace, shortId, timeOf } from './dom.js'
import { connectRpc, METHOD_NOT_FOUND, type Rpc, RpcError } from './rpc.js'

/** The `encrypted` notification: `EncryptedNotice` as JSON-RPC sends it, without the name. */
type LockedNotice = Omit<EncryptedNotice, 'name'>

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
      for (const candidate of err.data.candidates ?? []) {
        append(
          ui.notice,
          ' ',
          on(
            h(
              'button',
              { type: 'button', class: 'candidate' },
              `Add ${candidate.name} (${shortId(candidate.peerId)})`,
            ),
            'click',
            () => void act(() => rpc.call('add', inGroup({ member: candidate.peerId }))),
          ),
        )
      }
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
    const item = h(
      'li',
      { class: own ? 'msg own' : 'msg', 'data-id': m.id, 'data-from': m.from },
      h('div', { class: 'meta' }, h('bdi', { class: 'name' }, own ? 'you' : m.name), ' ', timeOf(m.ts)),
      h('div', { class: 'text', dir: 'auto' }, m.text),
    )
    addItem(m.group, m.id, item, !own)
  }

  function addLocked(e: LockedNotice): void {
    const item = h(
      'li',
      { class: 'msg locked', 'data-id': e.id, 'data-from': e.from },
      h(
        'div',
        { class: 'meta' },
        h('bdi', { class: 'name' }, nameOf(e.from)),
        ' ',
        h('span', { class: 'lock' }, `locked: ${e.bytes} encrypted bytes you cannot read`),
      ),
      h('code', { class: 'preview' }, e.preview),
    )
    addItem(e.group, `locked:${e.id}`, item, true)
  }

  function addSystem(group: string, text: string, kind = 'system'): void {
    addItem(group, undefined, h('li', { class: kind }, text), false)
  }

  function who(peer: PeerRef): string {
    return peer.peerId === state.me?.peerId ? 'you' : `${peer.name} (${shortId(peer.peerId)})`
  }

  function describeChange(n: MembershipNotice): string {
    const { change } = n
    if (change === null) return `* members are now: ${n.members.map((m) => m.name).join(', ')}`
    switch (change.action) {
      case 'create':
        return `* ${who(change.by)} created ${state.groups.find((g) => g.id === n.group)?.name ?? 'the group'}`
      case 'add':
        return `* ${who(change.by)} added ${who(change.member)}`
      case 'remove':
        return change.by.peerId === change.member.peerId
          ? `* ${who(change.by)} left`
          : `* ${who(change.by)} removed ${who(change.member)}`
      case 'rename':
        return `* ${change.action === 'rename' ? change.from : '?'} (${shortId(change.member.peerId)}) is now ${change.member.name}`
    }
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
        addSystem(notice.group, describeChange(notice))
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
        addSystem(group, `!! FORGED INVITE: ${who(inviter)} lied about who founded this group`, 'warning')
        break
      }
      case 'badEpochKey': {
        const { group, author } = params as { group: string; author: PeerRef }
        addSystem(
          group,
          `!! ${who(author)} sent a group key that does not work; a new one is being made`,
          'warning',
        )
        break
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
    replace(
      ui.members,
      ...state.members.map((m) =>
        h(
          'li',
          { title: m.peerId },
          h('bdi', {}, m.name),
          ` (${shortId(m.peerId)})`,
          m.peerId === state.me?.peerId
            ? ' (you)'
            : on(
                h('button', { type: 'button', class: 'remove-member', title: `Remove ${m.name}` }, '×'),
                'click',
                () => void act(() => rpc.call('remove', inGroup({ member: m.peerId }))),
              ),
        ),
      ),
    )
  }

  function renderRequests(): void {
    const requests = state.selected === undefined ? undefined : state.requests.get(state.selected)
    const items = [...(requests ?? new Map<string, string>())].map(([peerId, name]) =>
      h(
        'li',
        { title: peerId },
        h('bdi', {}, name),
        ` (${shortId(peerId)}) asks to join `,
        on(
          h('button', { type: 'button', class: 'admit' }, 'Admit'),
          'click',
          () => void act(() => rpc.call('add', inGroup({ member: peerId }))),
        ),
      ),
    )
    replace(ui.requests, ...(items.length === 0 ? [h('li', { class: 'empty' }, 'None.')] : items))
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

  function groupActions(): HTMLElement {
    const name = h('input', { id: 'new-group', placeholder: 'new group name', autocomplete: 'off' })
    const invite = h('input', { id: 'join-invite', placeholder: 'invite', autocomplete: 'off' })
    const adopt = async (result: unknown): Promise<void> => {
      const id =
        (result as { id?: string; group?: { id?: string } }).id ??
        (result as { group?: { id?: string } }).group?.id
      await loadGroups()
      if (typeof id === 'string') await select(id)
    }
    append(
      ui.groupActions,
      h(
        'div',
        {},
        name,
        on(
          h('button', { type: 'button', id: 'create' }, 'Create'),
          'click',
          () => void act(async () => adopt(await rpc.call('create', { name: name.value.trim() }))),
        ),
      ),
      h(
        'div',
        {},
        invite,
        on(
          h('button', { type: 'button', id: 'join' }, 'Join'),
          'click',
          () => void act(async () => adopt(await rpc.call('join', { invite: invite.value.trim() }))),
        ),
      ),
      on(h('button', { type: 'button', id: 'leave' }, 'Leave this group'), 'click', () => {
        if (state.selected === undefined || !confirm('Leave this group?')) return
        void act(async () => {
          await rpc.call('leave', { group: state.selected })
          state.selected = undefined
          await load()
        })
      }),
    )
    return ui.groupActions
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
  on(
    ui.invite,
    'click',
    () =>
      void act(async () => {
        const { invite } = await rpc.call<{ invite: string }>('invite', inGroup())
        ui.inviteText.value = invite
        ui.inviteText.hidden = false
        ui.copy.hidden = false
      }),
  )
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
    h('nav', {}, h('h3', {}, 'Groups'), ui.groups, groupActions()),
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
      h('section', {}, h('h3', {}, 'Invite'), ui.invite, ui.inviteText, ui.copy),
      h('section', {}, h('h3', {}, 'Peers'), ui.peers),
    ),
  )
  render()
  setInterval(() => void loadPeers(), 3000)
}
