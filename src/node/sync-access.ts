/**
 * Who may be sent what over sync. A replica serves a group's log and envelopes only to peers entitled to
 * them, judged against its own copy of the signed log:
 *
 * - a **member** gets the membership events, the envelopes of the epochs whose sealed keys name it, and
 *   peer hints naming other members;
 * - a **relay** this node was configured with (a `--bootstrap` peer that identify shows runs a circuit
 *   relay server) gets the events and every envelope: ciphertext, which it needs the log to check;
 * - a **former member** (the subject of an add in the log, no longer a member) gets the events only, so
 *   its replica learns it was removed and resolves the same members as everyone else;
 * - **anyone else** gets nothing: no heads, events, envelopes or hints. A joiner is "anyone else" until
 *   the add naming it is in the replica's log; from then on it is a member and gets everything.
 *
 * @packageDocumentation
 */

import type { PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Group } from '../membership/index.js'
import type { PeerHint } from './sync.js'
import type { TransportNode } from './transport.js'

const log = logger('p2pchat:sync')

/** What a sync partner may be sent of one group; see the module documentation. */
export type SyncAccess = 'member' | 'relay' | 'former' | 'none'

/** The protocol a circuit relay v2 server announces through identify (`RELAY_V2_HOP_CODEC`). */
const RELAY_HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

/** Peer store metadata that identify writes for every peer it ran with (`@libp2p/identify`). */
const IDENTIFIED_KEY = 'AgentVersion'

/** Longest wait for identify to tell whether a configured peer is a relay, in ms. */
const IDENTIFY_WAIT_MS = 5000

/** Where a replica finds out which of its peers are relays it was configured with. */
export interface ConfiguredRelays {
  /** Its libp2p node; `undefined` before it started (then nobody is a relay). */
  libp2p: IdentifyingNode | undefined
  /** Peer ids of its bootstrap list (see {@link bootstrapPeerIds}). */
  configured: ReadonlySet<string>
  /** Aborts a wait for identify (the replica's shutdown). */
  signal: AbortSignal
}

/** The access of `remote` to `group` as this replica's log has it. */
export async function accessOf(group: Group, remote: string, relays: ConfiguredRelays): Promise<SyncAccess> {
  if (group.isMember(remote)) return 'member'
  const { libp2p, configured, signal } = relays
  if (libp2p !== undefined && (await isConfiguredRelay(libp2p, configured, remote, signal))) return 'relay'
  const added = group
    .events()
    .some((e) => e.subject === remote && (e.payload.type === 'add' || e.payload.type === 'genesis'))
  return added ? 'former' : 'none'
}

/**
 * Whether `remote` is a member of one of `groups` or one of the `configured` bootstrap peers: its sync
 * streams do not count against the pool of strangers' streams.
 */
export function isKnownPeer(
  groups: Iterable<Group>,
  configured: ReadonlySet<string>,
  remote: string,
): boolean {
  if (configured.has(remote)) return true
  for (const group of groups) if (group.isMember(remote)) return true
  return false
}

/** Whether a partner with `access` is sent the group's membership events (and its real heads). */
export function getsLog(access: SyncAccess): boolean {
  return access !== 'none'
}

/** Whether a partner with `access` is asked for envelopes, and has its peer hints taken. */
export function isTrusted(access: SyncAccess): boolean {
  return access === 'member' || access === 'relay'
}

/** Ids of the events of `group` whose sealed keys name `peerId`: the epochs it can read. */
export function epochsSealedTo(group: Group, peerId: string): Set<string> {
  return group.epochsSealedTo(peerId)
}

/**
 * The epochs whose envelopes a partner with `access` is sent when it asks for `asked` (`null`: all):
 * `null` for all of them (a relay that asked for all), otherwise a set, empty when it gets none.
 */
export function servedEpochs(
  group: Group,
  remote: string,
  access: SyncAccess,
  asked: readonly string[] | null,
): ReadonlySet<string> | null {
  if (access === 'relay') return asked === null ? null : new Set(asked)
  if (access !== 'member') return new Set()
  const sealed = epochsSealedTo(group, remote)
  return asked === null ? sealed : new Set(asked.filter((epoch) => sealed.has(epoch)))
}

/**
 * The hints of a sync partner that may be dialled: none unless the partner is a member or a configured
 * relay, and only those naming members of the group. Each hint dropped is logged with the reason.
 */
export function hintsToDial(
  group: Group,
  hints: readonly PeerHint[],
  access: SyncAccess,
  remote: string,
): PeerHint[] {
  if (!isTrusted(access)) {
    log(
      'dropping %d peer hints for %s from %s: it is neither a member nor a configured relay',
      hints.length,
      group.id,
      remote,
    )
    return []
  }
  return hints.filter((hint) => {
    if (group.isMember(hint.id)) return true
    log('dropping a peer hint for %s from %s: %s is not a member', group.id, remote, hint.id.slice(0, 80))
    return false
  })
}

/** The peer ids of the `/p2p/<id>` parts of `bootstrap` multiaddrs (the last one of each); bad ones are skipped. */
export function bootstrapPeerIds(bootstrap: readonly string[]): Set<string> {
  const ids = new Set<string>()
  for (const addr of bootstrap) {
    try {
      const id = multiaddr(addr)
        .getComponents()
        .findLast((c) => c.name === 'p2p')?.value
      if (id !== undefined) ids.add(id)
    } catch {
      // not a multiaddr: createTransport refuses it anyway
    }
  }
  return ids
}

type IdentifyingNode = Pick<TransportNode, 'peerStore' | 'addEventListener' | 'removeEventListener'>

/**
 * Whether `remote` is one of the `configured` bootstrap peers and runs a circuit relay server, as its
 * identify shows. A sync right after connecting may come before identify has run: then this waits for
 * it, at most a few seconds.
 */
export async function isConfiguredRelay(
  libp2p: IdentifyingNode,
  configured: ReadonlySet<string>,
  remote: string,
  signal: AbortSignal,
): Promise<boolean> {
  if (!configured.has(remote)) return false
  let peer: PeerId
  try {
    peer = peerIdFromString(remote)
  } catch {
    return false
  }
  // Protocols are in the peer store before identify too (each stream we open records its protocol), so
  // only a full list tells that the hop protocol is absent: identify's, which also stores AgentVersion.
  const known = async (): Promise<{ relay: boolean; identified: boolean }> => {
    try {
      const { protocols, metadata } = await libp2p.peerStore.get(peer)
      return { relay: protocols.includes(RELAY_HOP_PROTOCOL), identified: metadata.has(IDENTIFIED_KEY) }
    } catch {
      return { relay: false, identified: false }
    }
  }
  const decided = async (): Promise<boolean> => {
    const { relay, identified } = await known()
    return relay || identified
  }
  await waitForIdentify(
    libp2p,
    peer,
    AbortSignal.any([signal, AbortSignal.timeout(IDENTIFY_WAIT_MS)]),
    decided,
  )
  return (await known()).relay
}

/**
 * Resolves when identify ran with `peer`, when `ran` says it already has, or when `signal` aborts. `ran`
 * is asked once the listener is in place, so an identify that ends in between is not missed.
 */
async function waitForIdentify(
  libp2p: IdentifyingNode,
  peer: PeerId,
  signal: AbortSignal,
  ran: () => Promise<boolean>,
): Promise<void> {
  if (signal.aborted) return
  let onIdentify: ((evt: CustomEvent<{ peerId: PeerId }>) => void) | undefined
  let onAbort: (() => void) | undefined
  try {
    await new Promise<void>((resolve) => {
      onIdentify = (evt) => {
        if (evt.detail.peerId.equals(peer)) resolve()
      }
      onAbort = resolve
      libp2p.addEventListener('peer:identify', onIdentify)
      signal.addEventListener('abort', onAbort, { once: true })
      void ran().then((done) => {
        if (done) resolve()
      })
    })
  } finally {
    if (onIdentify !== undefined) libp2p.removeEventListener('peer:identify', onIdentify)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
