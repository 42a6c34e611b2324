import type { Logger } from '@libp2p/interface'
import type { TypedEventEmitter } from 'main-event'
import type { Group, OpenedMessage } from '../membership/index.js'
import type { ChatNodeEvents } from './chat-events.js'
import type { Clock } from './components.js'
import type { PeerDirectory } from './peer-directory.js'
import { shownTime } from './sender-time.js'
import type { ChatStore, StoredMessage } from './store.js'

/** What a {@link MessageInbox} is built from: its group's node's parts. */
export interface MessageInboxComponents {
  group: Group
  store: ChatStore
  clock: Clock
  directory: PeerDirectory
  events: Pick<TypedEventEmitter<ChatNodeEvents>, 'safeDispatchEvent'>
  log: Logger
}

/** A message the core opened, with the envelope it came in. */
export interface OpenedEnvelope {
  opened: OpenedMessage
  bytes: Uint8Array
}

/**
 * Where a group's opened messages go: into the store (their times clamped, see `sender-time.ts`), and
 * only once committed, to the node's listeners, so nothing is shown that a crash could lose. Sync hands
 * in a frame's worth at once, committed together; gossip one at a time.
 */
export class MessageInbox {
  readonly #c: MessageInboxComponents

  constructor(components: MessageInboxComponents) {
    this.#c = components
  }

  /**
   * Stores `messages` with one commit, then shows those that were new. One that cannot be stored is
   * logged and not shown (it counts as seen until a restart, when sync brings it again); the others are
   * kept. Returns per message whether it was stored and shown.
   */
  keep(messages: readonly OpenedEnvelope[]): boolean[] {
    const { group, store, log } = this.#c
    const receivedAt = this.#c.clock.now()
    const rows = messages.map(({ opened, bytes }) => this.#row(opened, bytes, receivedAt))
    const added = store.addMessages(rows, (row, err) =>
      log.error('could not store message %s of %s: %s', row.id, group.id, err.message),
    )
    messages.forEach(({ opened }, i) => {
      if (added[i] === true) this.#show(opened, rows[i]?.ts ?? receivedAt)
    })
    return added
  }

  #row(opened: OpenedMessage, bytes: Uint8Array, receivedAt: number): StoredMessage {
    const { id, sender, seq, epoch } = opened
    let ts: number | null = null
    let text: string | null = null
    if (opened.kind === 'message') {
      text = opened.text
      // stored as shown, so history later shows the time this notification does
      ts = shownTime(opened.ts, receivedAt)
      if (ts !== opened.ts) {
        this.#c.log(
          'clamped the time of message %s of %s from %s: %d ms ahead of ours, shown at its arrival instead',
          id,
          this.#c.group.id,
          sender,
          opened.ts - receivedAt,
        )
      }
    }
    return { groupId: this.#c.group.id, id, sender, seq, epoch, receivedAt, bytes, text, ts }
  }

  #show(opened: OpenedMessage, ts: number): void {
    const { group, events } = this.#c
    const name = this.#c.directory.nameOf(opened.sender, group) ?? ''
    const base = { group: group.id, id: opened.id, from: opened.sender, name }
    if (opened.kind === 'message') {
      events.safeDispatchEvent('message:receive', { detail: { ...base, text: opened.text, ts } })
    } else {
      events.safeDispatchEvent('message:encrypted', {
        detail: { ...base, bytes: opened.bytes, preview: opened.preview },
      })
    }
  }
}
