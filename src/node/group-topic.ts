import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import {
  decodeEnvelope,
  type Envelope,
  type Group,
  type OpenedMessage,
  PendingLimitError,
  type ReceiveEventResult,
  ReplayError,
  StaleEpochError,
  UnknownAuthorError,
  UnknownEpochError,
  WrongGroupError,
} from '../membership/index.js'
import { setTopicValidator, type TopicValidationResult, type TransportNode } from './transport.js'
import {
  decodeGossip,
  decodeJoinRequest,
  encodeGossip,
  type GossipFrame,
  type JoinRequest,
  topicOf,
} from './wire.js'

/** The gossipsub service a group topic runs on. */
export type Pubsub = TransportNode['services']['pubsub']

/** An event or envelope as it arrived, before anything of it is verified. */
export interface TopicInput {
  kind: 'event' | 'message'
  bytes: Uint8Array
}

/**
 * What a chat node and a relay each do with what the core accepted on a group's topic. The topic decodes
 * and judges; the hooks keep and show.
 */
export interface GroupTopicHooks {
  /**
   * Called before anything is verified (the relay's rate limits and storage caps); false makes the input
   * `ignore`d, and the hook has logged why. Default: everything is admitted.
   */
  admit?(input: TopicInput, from: string): boolean
  /** The core applied events (the one received and any it unblocked): store and notify them. */
  eventsApplied(result: ReceiveEventResult, from: string): void
  /** The core opened (verified, and decrypted if it could) a message: store and notify it. */
  messageOpened(
    opened: OpenedMessage,
    bytes: Uint8Array,
    from: string,
  ): TopicValidationResult | Promise<TopicValidationResult>
  /** A verified join request, for this group, from a peer that is no member of it. */
  joinRequested(request: JoinRequest, from: string): TopicValidationResult
  /**
   * This replica lacks what it needs to judge input `from` sent (parents, an epoch, the sender's add):
   * a chat node syncs with it. Default: nothing.
   */
  lagging?(from: string): void
  /**
   * A signed envelope of this group arrived while this replica holds no log of it, so it can neither
   * judge nor read it. Default: nothing.
   */
  unreadable?(envelope: Envelope, from: string): void
  /** Input from `from` was refused or could not be handled; `error` says why. */
  rejected(from: string, error: Error): void
}

/** What a {@link GroupTopic} is built from. */
export interface GroupTopicComponents {
  logger: ComponentLogger
}

/** Options of a {@link GroupTopic}. */
export interface GroupTopicInit {
  group: Group
  hooks: GroupTopicHooks
}

/**
 * One group's gossipsub topic, `/p2pchat/1/group/<group id>`, for a chat node and a relay alike:
 * decode → the core's verdict → typed rejection, logged, and publishing. Gossip and sync both hand their
 * input to {@link receiveEvent} and {@link receiveMessage}, so both are judged by the same rules.
 *
 * The verdicts: _reject_ what is provably bad (gossipsub then counts it against the sender), _ignore_
 * what cannot be judged yet (unknown parents or epoch, no room to wait) and duplicates.
 */
export class GroupTopic {
  readonly group: Group
  readonly topic: string
  readonly #hooks: GroupTopicHooks
  readonly #log: Logger
  #pubsub: Pubsub | undefined
  #removeValidator: (() => void) | undefined

  constructor(components: GroupTopicComponents, init: GroupTopicInit) {
    this.group = init.group
    this.topic = topicOf(init.group.id)
    this.#hooks = init.hooks
    this.#log = components.logger.forComponent('p2pchat:group-topic')
  }

  /** Whether the topic's validator is installed and it is subscribed. */
  get subscribed(): boolean {
    return this.#pubsub !== undefined
  }

  /**
   * Installs the topic's validator and subscribes. Idempotent. A failure is logged and leaves the topic
   * unsubscribed; returns whether it is subscribed.
   */
  subscribe(pubsub: Pubsub): boolean {
    if (this.#pubsub !== undefined) return true
    try {
      this.#removeValidator = setTopicValidator(pubsub, this.topic, ({ data, propagationSource }) =>
        this.validate(data, propagationSource),
      )
      pubsub.subscribe(this.topic)
      this.#pubsub = pubsub
      return true
    } catch (err) {
      this.#removeValidator?.()
      this.#removeValidator = undefined
      this.#log.error('could not subscribe to group %s: %s', this.group.id, (err as Error).message)
      return false
    }
  }

  /**
   * Removes the validator; nothing more is published. With `unsubscribe`, also leaves the topic (a relay
   * dropping a group); a node that stops leaves that to libp2p's stop.
   */
  stop(options: { unsubscribe?: boolean } = {}): void {
    const pubsub = this.#pubsub
    this.#pubsub = undefined
    this.#removeValidator?.()
    this.#removeValidator = undefined
    if (pubsub === undefined || options.unsubscribe !== true) return
    try {
      pubsub.unsubscribe(this.topic)
    } catch (err) {
      this.#log('unsubscribing from %s failed: %s', this.group.id, (err as Error).message)
    }
  }

  /** The peers this node knows to subscribe to the topic. */
  subscribers(): string[] {
    return (this.#pubsub?.getSubscribers(this.topic) ?? []).map(String)
  }

  /** Publishes `frame`; resolves to the peers it was handed to (0 when unsubscribed or it failed, logged). */
  async publish(frame: GossipFrame): Promise<number> {
    const pubsub = this.#pubsub
    if (pubsub === undefined) return 0
    try {
      const result = await pubsub.publish(this.topic, encodeGossip(frame))
      return result.recipients.length
    } catch (err) {
      this.#log('publish to %s failed: %s', this.group.id, (err as Error).message)
      return 0
    }
  }

  /** The topic validator: one gossip frame from `source`. */
  async validate(data: Uint8Array, source: PeerId): Promise<TopicValidationResult> {
    const from = source.toString()
    let frame: GossipFrame
    let request: JoinRequest | undefined
    try {
      frame = decodeGossip(data)
      if (frame.kind === 'join') request = this.#joinRequest(frame.data)
    } catch (err) {
      this.#hooks.rejected(from, err as Error)
      return 'reject'
    }
    if (request !== undefined) {
      return this.group.isMember(request.peerId) ? 'ignore' : this.#hooks.joinRequested(request, from)
    }
    if (frame.kind === 'message') return this.receiveMessage(frame.data, from)
    const verdict = this.receiveEvent(frame.data, from)
    if (verdict !== 'pending') return verdict
    // parents unknown: the peer that sent it has them
    this.#hooks.lagging?.(from)
    return 'ignore'
  }

  /** @throws {MalformedFrameError | InvalidSignatureError | WrongGroupError} */
  #joinRequest(bytes: Uint8Array): JoinRequest {
    const request = decodeJoinRequest(bytes)
    if (request.group !== this.group.id) {
      throw new WrongGroupError(`join request is for group ${request.group}`)
    }
    return request
  }

  /**
   * An event from gossip or sync: the core's verdict, then {@link GroupTopicHooks.eventsApplied}, then
   * the messages it released. `pending` when it waits for parents.
   */
  receiveEvent(bytes: Uint8Array, from: string): TopicValidationResult | 'pending' {
    const hooks = this.#hooks
    if (hooks.admit?.({ kind: 'event', bytes }, from) === false) return 'ignore'
    let result: ReceiveEventResult
    try {
      result = this.group.receiveEvent(bytes, { from })
    } catch (err) {
      const error = err as Error
      if (error.name === ReplayError.name) return 'ignore'
      hooks.rejected(from, error)
      // no room to wait: nothing is wrong with the event, sync brings it again
      return error.name === PendingLimitError.name ? 'ignore' : 'reject'
    }
    hooks.eventsApplied(result, from)
    for (const { error } of result.rejected) hooks.rejected(from, error)
    for (const envelope of result.released) {
      this.receiveMessage(envelope, from).catch((err: unknown) =>
        this.#log.error('released message of %s failed: %s', this.group.id, (err as Error).message),
      )
    }
    return result.pending ? 'pending' : 'accept'
  }

  /** A message from gossip or sync: the core opens it, then {@link GroupTopicHooks.messageOpened}. */
  async receiveMessage(bytes: Uint8Array, from: string): Promise<TopicValidationResult> {
    const opened = await this.openMessage(bytes, from)
    return typeof opened === 'string' ? opened : this.#hooks.messageOpened(opened, bytes, from)
  }

  /**
   * The judging half of {@link receiveMessage}: the core's verdict on a message, with refusals told to
   * the hooks; the opened message is the caller's to keep and show (sync keeps a frame's worth at once).
   */
  async openMessage(bytes: Uint8Array, from: string): Promise<OpenedMessage | TopicValidationResult> {
    const hooks = this.#hooks
    if (hooks.admit?.({ kind: 'message', bytes }, from) === false) return 'ignore'
    try {
      // checks the signature, the sender's membership in the epoch (against the signed log), replays
      return await this.group.open(bytes, { from })
    } catch (err) {
      const error = err as Error
      switch (error.name) {
        case ReplayError.name:
          return 'ignore'
        case UnknownEpochError.name:
          // with no log yet (a joiner not added) the epoch cannot be known: it is shown as ciphertext
          if (!this.group.ready) hooks.unreadable?.(decodeEnvelope(bytes), from)
          hooks.lagging?.(from)
          return 'ignore'
        case UnknownAuthorError.name:
          // this replica may lag behind the sender's add: judged again after a sync, never kept to wait
          hooks.rejected(from, error)
          hooks.lagging?.(from)
          return 'ignore'
        case StaleEpochError.name:
        case PendingLimitError.name:
          hooks.rejected(from, error)
          return 'ignore'
        default:
          hooks.rejected(from, error)
          return 'reject'
      }
    }
  }
}
