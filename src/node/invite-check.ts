import { randomBytes } from 'node:crypto'
import type { Logger } from '@libp2p/interface'
import type { TypedEventEmitter } from 'main-event'
import { Identity } from '../crypto/index.js'
import {
  DEFAULT_INVITE_TTL_MS,
  decodeInviteToken,
  type Group,
  InvalidArgumentError,
  signInviteToken,
} from '../membership/index.js'
import type { ChatNodeEvents, GroupStatus, PeerRef } from './chat-events.js'
import type { Clock } from './components.js'
import { GroupNotReadyError } from './errors.js'
import { encodeInvite, forgedClaim, type GroupOrigin, type Invite, type InviteAdmits } from './invite.js'

/** Options of an invite ({@link InviteCheck.inviteText}). */
export interface InviteOptions {
  /** A member approves the joiner by hand (`/add`), as before: the invite carries no token. */
  ask?: boolean
  /** How long the invite admits, in ms. Default {@link DEFAULT_INVITE_TTL_MS} (7 days). */
  validForMs?: number
}

/** What an {@link InviteCheck} works with: its chat group's parts. */
export interface InviteCheckComponents {
  self: PeerRef
  identity: Group['identity']
  group: Group
  events: Pick<TypedEventEmitter<ChatNodeEvents>, 'safeDispatchEvent'>
  clock: Clock
  /** The chat group's logger. */
  log: Logger
}

/**
 * A group's origin (its name and founder, as its genesis fixes them) against the invite this peer joined
 * with: the group id is the genesis CID, so an invite the genesis contradicts was forged by its inviter.
 * Also signs this peer's own invites to the group.
 */
export class InviteCheck {
  readonly #c: InviteCheckComponents
  #origin: GroupOrigin | undefined
  /** The forged invite last reported (as JSON), so that one is reported once, not at start and join. */
  #forgedReported: string | undefined

  constructor(components: InviteCheckComponents) {
    this.#c = components
  }

  /** The group's name and founder as its genesis fixes them; `undefined` until the genesis is here. */
  origin(): GroupOrigin | undefined {
    if (this.#origin !== undefined) return this.#origin
    const genesis = this.#c.group.events().find((e) => e.payload.type === 'genesis')
    const { groupName, subjectName } = genesis?.payload ?? {}
    if (genesis === undefined || groupName === undefined || subjectName === undefined) return undefined
    this.#origin = { groupName, founder: { peerId: genesis.author, name: subjectName } }
    return this.#origin
  }

  /**
   * An invite to the group, signed by this member. Unless `options.ask`, it admits on its own: it carries
   * a single-use token for the group, valid for `options.validForMs`, and its one-time key.
   *
   * @throws {GroupNotReadyError} the genesis has not arrived yet, so the founder is not known
   * @throws {InvalidArgumentError} `validForMs` is not a positive number of ms
   */
  inviteText(addrs: string[], options: InviteOptions = {}): string {
    const origin = this.origin()
    if (origin === undefined) throw new GroupNotReadyError()
    const { identity, group, self } = this.#c
    const invite = { groupId: group.id, ...origin, inviter: self, addrs }
    return encodeInvite(identity, options.ask === true ? invite : { ...invite, admits: this.#token(options) })
  }

  #token(options: InviteOptions): InviteAdmits {
    const validFor = options.validForMs ?? DEFAULT_INVITE_TTL_MS
    if (!Number.isSafeInteger(validFor) || validFor <= 0)
      throw new InvalidArgumentError('an invite is valid for a positive whole number of ms')
    const seed = new Uint8Array(randomBytes(32))
    const bytes = signInviteToken(this.#c.identity, {
      group: this.#c.group.id,
      key: Identity.fromSeed(seed).memberIdBytes,
      expiresAt: this.#c.clock.now() + validFor,
      nonce: new Uint8Array(randomBytes(16)),
    })
    return { token: decodeInviteToken(bytes), seed }
  }

  /** The founder, inviter and verdict on `invite` as `status` shows them. */
  status(invite: Invite | undefined): Pick<GroupStatus, 'founder' | 'inviter' | 'inviteForged'> {
    const origin = this.origin()
    return {
      founder: origin?.founder ?? invite?.founder ?? null,
      inviter: invite?.inviter ?? null,
      inviteForged: invite !== undefined && origin !== undefined && forgedClaim(invite, origin) !== undefined,
    }
  }

  /** Warns when the genesis is here and contradicts `invite`, the one this peer joined with. */
  check(invite: Invite | undefined): void {
    const actual = this.origin()
    if (invite === undefined || actual === undefined) return
    const claimed = forgedClaim(invite, actual)
    if (claimed === undefined || this.#forgedReported === JSON.stringify(invite)) return
    this.#forgedReported = JSON.stringify(invite)
    const { group } = this.#c
    this.#c.log.error(
      'forged invite for %s: %s said the founder is %s, the genesis says %s',
      group.id,
      invite.inviter.peerId,
      claimed.founder.peerId,
      actual.founder.peerId,
    )
    this.#c.events.safeDispatchEvent('invite:forged', {
      detail: { group: group.id, inviter: invite.inviter, claimed, actual },
    })
  }
}
