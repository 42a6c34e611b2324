import type { GroupOrigin } from './invite.js'
import type { SyncLimits } from './sync-limits.js'

/** Options for `createChatNode`. */
export interface ChatNodeInit {
  /** Directory for the identity key and the database; one per display name. */
  dataDir: string
  /** Display name announced to others. A label: the identity is the key in `dataDir`. */
  name: string
  /** Multiaddrs to listen on. Default `/ip4/0.0.0.0/tcp/0`. */
  listen?: string[]
  /** Peers (multiaddrs with `/p2p/<id>`) to dial at start and keep connected to: other peers or relays. */
  bootstrap?: string[]
  /** Remembered relays (multiaddrs or peer ids) to forget before this start; see `ChatNode.connections`. */
  forgetRelays?: string[]
  /** Discover peers on the LAN with mDNS. Default true. */
  mdns?: boolean
  /** Reserve a slot on relays we connect to so peers behind NAT can reach us. Default: with a bootstrap list. */
  listenViaRelay?: boolean
  /** Grace window for superseded epochs, in ms. */
  graceMs?: number
  /** Delay per rank before a member that is not first in line issues a due rekey, in ms. Default 3000. */
  rekeyDelayMs?: number
  /** How long a joiner's request is out, unanswered, before `join:unanswered` says so, in ms. Default 60000. */
  joinUnansweredMs?: number
  /** Period of anti-entropy sync with a random connected peer, in ms. Default 30000. */
  syncIntervalMs?: number
  /** How long no peer at all must be connected before `reachability:change` says so, in ms. Default 10000. */
  reachabilityGraceMs?: number
  /** Limits on the sync streams this node serves and the time a sync may take (see `SyncLimits`). */
  syncLimits?: SyncLimits
}

/** A peer as the chat shows it. */
export interface PeerRef {
  peerId: string
  name: string
}

/** A peer with the best name known: `unverified` when no group's signed events give it that name. */
export interface ClaimedPeerRef extends PeerRef {
  /** The name is only claimed: in a join request, an invite, or the peers table (a request of earlier). */
  unverified?: true
}

/** A decrypted message, own ones included. */
export interface ChatMessage {
  group: string
  id: string
  from: string
  name: string
  text: string
  ts: number
}

/** A message this peer cannot decrypt. */
export interface EncryptedNotice {
  group: string
  id: string
  from: string
  name: string
  bytes: number
  preview: string
}

/** The resolved member list changed: who is in, or what a member is called. */
export interface MembershipNotice {
  group: string
  members: PeerRef[]
  /**
   * The event that explains it, when one does. For `rename`, `by` and `member` are the member (under its
   * new name) and `from` is the name it had.
   */
  change:
    | { action: 'create' | 'add' | 'remove'; by: PeerRef; member: PeerRef }
    | { action: 'rename'; by: PeerRef; member: PeerRef; from: string }
    | null
}

/**
 * The key this member was sealed in the group's current epoch does not open, or is not the key the
 * epoch's author committed to: the author split or withheld the key. This member cannot read or send
 * under it, so it rekeys at once.
 */
export interface BadEpochKeyNotice {
  group: string
  epoch: string
  /** Who chose the bad key. */
  author: PeerRef
  reason: string
}

/** A non-member asked to be added. */
export interface JoinRequestNotice {
  group: string
  peerId: string
  name: string
}

/**
 * The genesis of a group this peer joined by invite contradicts the invite: its inviter lied about who
 * founded the group (or what it is called), so the group is not the one the invite made it look like.
 */
export interface InviteForgedNotice {
  group: string
  /** Who signed the invite. */
  inviter: PeerRef
  /** What the invite said. */
  claimed: GroupOrigin
  /** What the genesis, which the group id is the hash of, says. */
  actual: GroupOrigin
}

/**
 * No peer at all is reachable any more (after a grace period, and not while starting), or one is again.
 * Said once per change.
 */
export interface ReachabilityChange {
  reachable: boolean
  /** The peer that came back, with the best name known (see `ClaimedPeerRef`); null when none is reachable. */
  peer: ClaimedPeerRef | null
  /** How many known peers and relays are dialled again while unreachable (0: none is known). */
  retrying: number
}

/** A join request presented an invite this member did not admit with (the joiner waits for `/add`). */
export interface InviteRefusedNotice {
  group: string
  peerId: string
  name: string
  /** forged (or proved for another identity), expired, used (admitted someone already), void (inviter removed) */
  reason: 'forged' | 'expired' | 'used' | 'void'
}

/**
 * This peer's join request has reached the group for a while (`JOIN_UNANSWERED_MS`, 60 s) and nobody
 * added it. Said once per group and run. Members do not answer a refused invite, so this is all a joiner
 * hears: its invite may have expired or been used, or nobody who may admit it is online.
 */
export interface JoinUnansweredNotice {
  group: string
  /** How long the request has been out, in ms. */
  waitedMs: number
  /** Whether the invite joined with admits on its own (carries a token); false for `--ask` or a rejoin. */
  admits: boolean
  /** Who made that invite, if this peer joined by one. */
  inviter: PeerRef | null
}

/** Events of a {@link ChatNode}. */
export interface ChatNodeEvents {
  'message:receive': CustomEvent<ChatMessage>
  'message:encrypted': CustomEvent<EncryptedNotice>
  'membership:change': CustomEvent<MembershipNotice>
  'join:request': CustomEvent<JoinRequestNotice>
  'invite:forged': CustomEvent<InviteForgedNotice>
  'invite:refused': CustomEvent<InviteRefusedNotice>
  'join:unanswered': CustomEvent<JoinUnansweredNotice>
  'epoch:bad-key': CustomEvent<BadEpochKeyNotice>
  'peer:connect': CustomEvent<string>
  'peer:disconnect': CustomEvent<string>
  'reachability:change': CustomEvent<ReachabilityChange>
  /** A message was rejected or could not be handled; for logs. */
  'message:reject': CustomEvent<{ group: string; reason: string; from: string }>
}

/** What `send` reports. */
export interface SendResult {
  id: string
  ts: number
  /** Peers the message was handed to now; 0 means it waits for sync when someone connects. */
  recipients: number
}

/** A group summary. */
export interface GroupSummary {
  id: string
  name: string
}

/** The selected group, as {@link ChatStatus} shows it. */
export interface GroupStatus extends GroupSummary {
  /** The founder: from the genesis once it is here, until then as the invite claims; null if neither. */
  founder: PeerRef | null
  /** Who signed the invite this peer joined with; null for a group it founded. */
  inviter: PeerRef | null
  /** The genesis contradicts that invite: the inviter lied (see {@link InviteForgedNotice}). */
  inviteForged: boolean
}

/** How this peer stopped being a member of a group. */
export interface Removal {
  /** Who removed it: itself when it left. */
  by: PeerRef
  /** When this peer learned of it (ms since the epoch, local clock); null when not recorded. */
  at: number | null
  /** It asked to be added again (`rejoin`), so it announces a join request. */
  rejoining: boolean
}

/** Where this peer stands in a group. */
export interface GroupStanding {
  member: boolean
  /** How it stopped being a member; null for a member, and for a joiner never added. */
  removed: Removal | null
}

/** Node status, as `status` in the JSON interface. */
export interface ChatStatus {
  peerId: string
  name: string
  group: GroupStatus | null
  member: boolean
  /** How this peer stopped being a member of the group, if it was one (see {@link Removal}). */
  removed: Removal | null
  addrs: string[]
  peers: number
}
