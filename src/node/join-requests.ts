import type { ComponentLogger, Logger } from '@libp2p/interface'
import { RateLimiter } from '@libp2p/utils'
import type { Identity } from '../crypto/index.js'
import type { Clock } from './components.js'
import type { GroupTopic } from './group-topic.js'
import { encodeJoinRequest, type JoinRequest } from './wire.js'

/** Repeats of one requester's join request closer than this are not forwarded (they announce every 10 s). */
export const JOIN_REPEAT_MIN_MS = 2000
/** New join requesters accepted per group per minute; more are ignored. */
export const JOIN_REQUESTERS_PER_MINUTE = 30
/** Requesters remembered per group; the least recent are forgotten first. */
export const MAX_JOIN_REQUESTERS = 256

/** What {@link JoinInbox.receive} made of a request. */
export type JoinVerdict =
  /** A requester not heard from (under this name, lately): show it, forward it. */
  | 'new'
  /** A requester repeating itself: forward it, do not show it again. */
  | 'repeat'
  /** A repeat sooner than {@link JOIN_REPEAT_MIN_MS}: neither. */
  | 'too-soon'
  /** A new requester over {@link JOIN_REQUESTERS_PER_MINUTE}: neither. */
  | 'rate-limited'

/** Options of a {@link JoinInbox}. */
export interface JoinInboxInit {
  /**
   * A known requester asking again after this long counts as new (shown again). Default `Infinity`:
   * never (a relay only forwards).
   */
  renewAfterMs?: number
  /** Whether a known requester asking under another name counts as new. Default false. */
  nameChangeIsNew?: boolean
}

/** A requester as the inbox remembers it. */
export interface JoinRequester {
  /** When its request was last accepted. */
  at: number
  name: string
}

/**
 * The join requests of one group, as a chat node and a relay take them in: requesters repeat theirs every
 * few seconds until added, so a repeat is forwarded but not shown again, repeats closer than 2 s not even
 * forwarded; new requesters are rate limited (30 a minute, a fixed window, `RateLimiter` from
 * `@libp2p/utils`), and only the 256 most recent are remembered, so a flood of fresh identities fills
 * neither memory nor, on a node that stores requesters, the disk.
 */
export class JoinInbox {
  readonly #clock: Clock
  readonly #renewAfterMs: number
  readonly #nameChangeIsNew: boolean
  /** Least recent first. */
  readonly #seen = new Map<string, JoinRequester>()
  readonly #rate = new RateLimiter({ points: JOIN_REQUESTERS_PER_MINUTE, duration: 60 })

  constructor(components: { clock: Clock }, init: JoinInboxInit = {}) {
    this.#clock = components.clock
    this.#renewAfterMs = init.renewAfterMs ?? Number.POSITIVE_INFINITY
    this.#nameChangeIsNew = init.nameChangeIsNew ?? false
  }

  /** Judges a verified request by a non-member, and remembers its requester unless it is refused. */
  receive(request: Pick<JoinRequest, 'peerId' | 'name'>): JoinVerdict {
    const now = this.#clock.now()
    const seen = this.#seen.get(request.peerId)
    const known =
      seen !== undefined &&
      (!this.#nameChangeIsNew || seen.name === request.name) &&
      now - seen.at <= this.#renewAfterMs
    if (known && now - seen.at < JOIN_REPEAT_MIN_MS) return 'too-soon'
    if (!known) {
      try {
        this.#rate.consume('')
      } catch {
        return 'rate-limited'
      }
    }
    this.#seen.delete(request.peerId)
    this.#seen.set(request.peerId, { at: now, name: request.name })
    for (const peerId of this.#seen.keys()) {
      if (this.#seen.size <= MAX_JOIN_REQUESTERS) break
      this.#seen.delete(peerId)
    }
    return known ? 'repeat' : 'new'
  }

  /**
   * Forgets a requester whose request was answered (it was added), so that if it asks again later (a
   * removed member's `rejoin`) that is a new request, shown again.
   */
  answered(peerId: string): void {
    this.#seen.delete(peerId)
  }

  /** The requesters remembered, least recent first. */
  requesters(): IterableIterator<[string, JoinRequester]> {
    return this.#seen.entries()
  }
}

/** Options of a {@link JoinAnnouncer}. */
export interface JoinAnnouncerInit {
  /** The name this peer asks to be added as. */
  name: string
  /** The invite token use to present (see `inviteUseFor`), read at each announcement. */
  invite?: () => Uint8Array | undefined
  /** Least time between announcements while no new subscriber appears. Default 10 s. */
  intervalMs?: number
  /** Retry delay for an announcement that reached nobody. Default 250 ms. */
  retryMs?: number
  /** An announcement to new subscribers is repeated once after this long. Default 2.5 s. */
  followUpMs?: number
  /**
   * How long after the request first reached a subscriber {@link JoinAnnouncerInit.onUnanswered} is called
   * if this peer is still no member. Default {@link JOIN_UNANSWERED_MS}.
   */
  unansweredMs?: number
  /**
   * Called once, when the request has reached the group's topic for `unansweredMs` and nobody added this
   * peer: its invite may have been refused (members tell a joiner nothing, so nothing a stranger sends
   * can make it stop waiting), or nobody who may admit it is online.
   */
  onUnanswered?: (waitedMs: number) => void
}

/** How long a joiner waits, once its request reached the group, before it tells the user nobody admitted it. */
export const JOIN_UNANSWERED_MS = 60_000

/**
 * A non-member's join request, announced on its group's topic so that members can add it by name: at
 * most every {@link JoinAnnouncerInit.intervalMs}, and at once to a subscriber that has not heard it.
 */
export class JoinAnnouncer {
  readonly #topic: Pick<GroupTopic, 'group' | 'subscribers' | 'publish'>
  readonly #identity: Identity
  readonly #clock: Clock
  readonly #log: Logger
  readonly #name: string
  readonly #invite: () => Uint8Array | undefined
  readonly #intervalMs: number
  readonly #retryMs: number
  readonly #followUpMs: number
  #announcedAt = 0
  /** Subscribers of the topic when this peer last announced. */
  #announcedTo = new Set<string>()
  #retry: ReturnType<typeof setTimeout> | undefined
  #stopped = false
  readonly #unansweredMs: number
  readonly #onUnanswered: ((waitedMs: number) => void) | undefined
  /** Armed when the request first reached a subscriber; `null` once it fired or was dropped. */
  #unanswered: ReturnType<typeof setTimeout> | null | undefined

  constructor(
    components: {
      topic: Pick<GroupTopic, 'group' | 'subscribers' | 'publish'>
      identity: Identity
      clock: Clock
      logger: ComponentLogger
    },
    init: JoinAnnouncerInit,
  ) {
    this.#topic = components.topic
    this.#identity = components.identity
    this.#clock = components.clock
    this.#log = components.logger.forComponent('p2pchat:join-requests')
    this.#name = init.name
    this.#invite = init.invite ?? (() => undefined)
    this.#intervalMs = init.intervalMs ?? 10_000
    this.#retryMs = init.retryMs ?? 250
    this.#followUpMs = init.followUpMs ?? 2500
    this.#unansweredMs = init.unansweredMs ?? JOIN_UNANSWERED_MS
    this.#onUnanswered = init.onUnanswered
  }

  /**
   * Announces the join request if this peer is no member, someone listens, and either a subscriber has
   * not heard it or the interval has passed. Never throws; resolves once published (or not).
   */
  async announce(followUp = false): Promise<void> {
    const { group } = this.#topic
    if (this.#stopped || group.isMember()) return
    const now = this.#clock.now()
    const subscribers = this.#topic.subscribers()
    if (subscribers.length === 0) return
    // a subscriber that appeared since the last announcement has not heard it: tell it now
    const fresh = subscribers.some((p) => !this.#announcedTo.has(p))
    if (!followUp && !fresh && now - this.#announcedAt < this.#intervalMs) return
    this.#announcedAt = now
    this.#announcedTo = new Set(subscribers)
    let recipients: number
    try {
      const data = encodeJoinRequest(this.#identity, group.id, this.#name, now, this.#invite())
      recipients = await this.#topic.publish({ kind: 'join', data })
    } catch (err) {
      this.#log.error('join announcement for %s failed: %s', group.id, (err as Error).message)
      return
    }
    if (this.#stopped) return
    if (recipients > 0 && this.#unanswered === undefined) this.#armUnanswered()
    if (recipients === 0) {
      // a subscriber we have just seen may not have its gossipsub stream open yet, so the request went
      // nowhere; nothing else would trigger another announcement, so try again shortly
      this.#announcedAt = 0
      this.#announcedTo = new Set()
      this.#schedule(this.#retryMs, false)
    } else if (fresh && !followUp) {
      // "sent" is not "received": the first frame on a stream that is still opening can be lost, so new
      // subscribers hear it once more, after the members' repeat filter has let the first pass
      this.#schedule(this.#followUpMs, true)
    } else {
      // and again every interval until a member adds us, whether or not anything else calls announce
      this.#schedule(this.#intervalMs, false)
    }
  }

  /** Stops announcing; a retry waiting is dropped. */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#retry)
    this.#retry = undefined
    clearTimeout(this.#unanswered ?? undefined)
    this.#unanswered = null
  }

  /** Calls `onUnanswered` once `unansweredMs` from now, unless this peer is a member by then. */
  #armUnanswered(): void {
    this.#unanswered = setTimeout(() => {
      this.#unanswered = null
      if (!this.#stopped && !this.#topic.group.isMember()) this.#onUnanswered?.(this.#unansweredMs)
    }, this.#unansweredMs)
    this.#unanswered.unref?.()
  }

  /** Announces again after `delay`, instead of any announcement already due. */
  #schedule(delay: number, followUp: boolean): void {
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      void this.announce(followUp)
    }, delay)
    this.#retry.unref?.()
  }
}
