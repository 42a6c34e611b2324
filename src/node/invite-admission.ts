/**
 * Invites that admit on their own: a joiner presents its invite's token in its join request, and an
 * online member checks it and adds the joiner, so the inviter need not be online.
 *
 * @packageDocumentation
 */
import type { Logger } from '@libp2p/interface'
import { LRUCache } from 'lru-cache'
import type { TypedEventEmitter } from 'main-event'
import { Identity } from '../crypto/index.js'
import {
  decodeInviteUse,
  dutyRank,
  type Group,
  type InviteToken,
  memberIdFromString,
  type SignedEvent,
  useInviteToken,
} from '../membership/index.js'
import type { ChatNodeEvents } from './chat-events.js'
import type { Clock } from './components.js'
import type { GroupTopic } from './group-topic.js'
import type { Invite } from './invite.js'
import type { JoinRequest } from './wire.js'

/** Default delay per rank before a member not first in line admits by invite, in ms. */
export const DEFAULT_ADMIT_DELAY_MS = 2000

/** What an {@link InviteAdmission} works with: its chat group's parts. */
export interface InviteAdmissionComponents {
  group: Group
  clock: Clock
  topic: Pick<GroupTopic, 'subscribers'>
  events: Pick<TypedEventEmitter<ChatNodeEvents>, 'safeDispatchEvent'>
  /** The chat group's logger. */
  log: Logger
  /** Whether the node is stopping: nothing more is signed then. */
  stopping(): boolean
  /** Stores, notifies and publishes an event this peer signed (`ChatGroup`'s commit). */
  commit(event: SignedEvent): Promise<void>
}

/** Options of an {@link InviteAdmission}. */
export interface InviteAdmissionInit {
  /** Delay per rank before a member not first in line admits, in ms. Default {@link DEFAULT_ADMIT_DELAY_MS}. */
  admitDelayMs?: number
}

/**
 * Admits joiners whose join request presents a valid invite token. Every online member that hears the
 * request checks it; who admits is decided as for rekeys: the online members (this one and the members
 * subscribed to the topic) are ranked by `sha256(token id | member id)`, the first admits at once and the
 * k-th only after k delays if the joiner is still no member, so the group does not add twice. If two
 * members do admit (they saw different members online), replicas count one of the adds (invite-token.ts).
 */
export class InviteAdmission {
  readonly #c: InviteAdmissionComponents
  readonly #admitDelayMs: number
  /** Admissions waiting for their turn, by token id. */
  readonly #waiting = new Map<string, ReturnType<typeof setTimeout>>()
  /** Refusals told already (token id and joiner), so a joiner's repeats are told once. */
  readonly #told = new LRUCache<string, true>({ max: 1024 })

  constructor(components: InviteAdmissionComponents, init: InviteAdmissionInit = {}) {
    this.#c = components
    this.#admitDelayMs = init.admitDelayMs ?? DEFAULT_ADMIT_DELAY_MS
  }

  /** Drops admissions waiting for their turn. */
  stop(): void {
    for (const timer of this.#waiting.values()) clearTimeout(timer)
    this.#waiting.clear()
  }

  /**
   * Takes a verified join request by a non-member: if it presents an invite this member can check and
   * accept, schedules the joiner's admission and returns true; a refused one is logged and told
   * (`invite:refused`) once.
   */
  offer(request: JoinRequest): boolean {
    const { group } = this.#c
    if (request.invite === undefined || !group.isMember() || this.#c.stopping()) return false
    let token: InviteToken
    try {
      token = decodeInviteUse(request.invite, { group: group.id, joiner: memberIdFromString(request.peerId) })
    } catch (err) {
      this.#refuse(request, 'forged', (err as Error).message)
      return false
    }
    const reason = this.#refusal(request, token)
    if (reason !== undefined) {
      if (reason !== 'member') this.#refuse(request, reason, `invite token ${token.id}`)
      return false
    }
    if (this.#waiting.has(token.id)) return true
    const timer = setTimeout(() => {
      this.#waiting.delete(token.id)
      void this.#admit(request, token)
    }, this.#rank(token) * this.#admitDelayMs)
    timer.unref?.()
    this.#waiting.set(token.id, timer)
    return true
  }

  /** Why `token` admits nobody now, if it does not. */
  #refusal(request: JoinRequest, token: InviteToken): 'member' | 'expired' | 'used' | 'void' | undefined {
    const { group } = this.#c
    if (group.isMember(request.peerId)) return 'member'
    if (token.expiresAt <= this.#c.clock.now()) return 'expired'
    if (!group.isMember(token.inviter)) return 'void'
    if (group.inviteTokenUsed(token.id)) return 'used'
    return undefined
  }

  /** This member's place among the online members for `token`: 0 admits at once. */
  #rank(token: InviteToken): number {
    const { group } = this.#c
    const self = group.identity.memberId
    const online = [self, ...this.#c.topic.subscribers().filter((p) => group.isMember(p))]
    return dutyRank(online, token.id, self)
  }

  async #admit(request: JoinRequest, token: InviteToken): Promise<void> {
    const { group, log } = this.#c
    // someone ranked before us may have admitted meanwhile, or things changed
    if (this.#c.stopping() || !group.isMember() || this.#refusal(request, token) !== undefined) return
    try {
      const event = await group.add(request.peerId, request.name, { invite: request.invite as Uint8Array })
      log('admitted %s to %s by invite token %s', request.peerId, group.id, token.id)
      await this.#c.commit(event)
    } catch (err) {
      log.error('admitting %s by invite failed: %s', request.peerId, (err as Error).message)
    }
  }

  #refuse(request: JoinRequest, reason: 'forged' | 'expired' | 'used' | 'void', detail: string): void {
    const key = `${request.peerId}|${reason}|${detail}`
    if (this.#told.has(key)) return
    this.#told.set(key, true)
    this.#c.log('refused the invite of %s to %s (%s): %s', request.peerId, this.#c.group.id, reason, detail)
    this.#c.events.safeDispatchEvent('invite:refused', {
      detail: { group: this.#c.group.id, peerId: request.peerId, name: request.name, reason },
    })
  }
}

const uses = new WeakMap<Invite, { joiner: string; use: Uint8Array }>()

/** What a joiner presents in its join request for `invite`: the token and its proof, made once. */
export function inviteUseFor(identity: Identity, invite: Invite | undefined): Uint8Array | undefined {
  const admits = invite?.admits
  if (invite === undefined || admits === undefined) return undefined
  const known = uses.get(invite)
  if (known !== undefined && known.joiner === identity.memberId) return known.use
  const use = useInviteToken(Identity.fromSeed(admits.seed), admits.token, identity.memberIdBytes)
  uses.set(invite, { joiner: identity.memberId, use })
  return use
}
