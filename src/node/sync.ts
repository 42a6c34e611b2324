/**
 * Sync over libp2p: the `/p2pchat/sync/1.0.0` handler with its admission limits, a sync with one peer as
 * initiator, and the peer hints (peer exchange) that sync carries. The protocol itself is in
 * sync-exchange.ts, its messages in sync-messages.ts, its framing in sync-protocol.ts.
 *
 * @packageDocumentation
 */

import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Group } from '../membership/index.js'
import { SyncStalledError } from './errors.js'
import { type SyncReplica, type SyncResult, syncAsInitiator, syncAsResponder } from './sync-exchange.js'
import { DEFAULT_SYNC_LIMITS, SyncAdmission, type SyncLimits } from './sync-limits.js'
import { type FrameChannel, MAX_HINT_ADDRS, MAX_PEER_HINTS, type PeerHint } from './sync-messages.js'
import { createFrameStream, type FrameStream, SYNC_PROTOCOL } from './sync-protocol.js'
import type { TransportNode } from './transport.js'

export type { SyncAccess } from './sync-access.js'
export {
  MAX_SYNC_BYTES,
  MAX_SYNC_MESSAGES,
  MAX_SYNC_ROUNDS,
  type MessageSource,
  PendingAsks,
  type SyncReplica,
  type SyncResult,
  syncAsInitiator,
  syncAsResponder,
} from './sync-exchange.js'
export type { SyncLimits } from './sync-limits.js'
export type { FrameChannel, PeerHint } from './sync-messages.js'
export { SYNC_PROTOCOL }

const log = logger('p2pchat:sync')

/**
 * A frame channel over `frames`: each read or write may wait at most `stallMs` (then the stream fails
 * with {@link SyncStalledError}), and all of them together until `signal` aborts.
 */
function channelOf(frames: FrameStream, signal: AbortSignal, stallMs: number, remote: string): FrameChannel {
  const step = async <T>(waitsFor: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const stall = AbortSignal.timeout(stallMs)
    try {
      return await run(AbortSignal.any([signal, stall]))
    } catch (err) {
      if (stall.aborted && !signal.aborted)
        throw new SyncStalledError(`${remote} ${waitsFor} for ${stallMs} ms`)
      throw err
    }
  }
  return {
    write: (frame) => step('read nothing', (s) => frames.writeFrame(frame, { signal: s })),
    read: async () => (await step('sent nothing', (s) => frames.readFrame({ signal: s }))) ?? undefined,
  }
}

/**
 * Serves sync on `libp2p` for `replica` (relayed connections included) until `shutdown` aborts, within
 * `limits`: a stream over a limit is refused with a log line saying which. Each stream is bounded in
 * time, frame size and frame count; a failing peer only loses its own stream.
 */
export async function handleSync(
  libp2p: Pick<Libp2p, 'handle'>,
  replica: SyncReplica,
  shutdown: AbortSignal,
  limits: SyncLimits = {},
): Promise<void> {
  const admission = new SyncAdmission(limits)
  const { syncTimeoutMs, stallTimeoutMs } = admission.limits
  await libp2p.handle(
    SYNC_PROTOCOL,
    (stream: Stream, connection) => {
      const remote = connection.remotePeer.toString()
      let release: () => void
      try {
        release = admission.admit(remote, replica.isKnownPeer?.(remote) ?? false)
      } catch (err) {
        const error = err as Error
        log('refused a sync stream from %s: %s: %s', remote, error.name, error.message)
        stream.abort(error)
        return
      }
      const signal = AbortSignal.any([shutdown, AbortSignal.timeout(syncTimeoutMs)])
      let frames: FrameStream
      try {
        frames = createFrameStream(stream)
      } catch (err) {
        log.error('could not serve sync to %s: %s', remote, (err as Error).message)
        stream.abort(err as Error)
        release()
        return
      }
      syncAsResponder(channelOf(frames, signal, stallTimeoutMs, remote), replica, remote)
        // a peer that never reads what is left must not hold the stream open either
        .then(() => frames.close({ signal: AbortSignal.any([signal, AbortSignal.timeout(stallTimeoutMs)]) }))
        .catch((err: unknown) => {
          const error = err as Error
          log('sync served to %s failed: %s: %s', remote, error.name, error.message)
          try {
            frames.abort(error)
          } catch (abortErr) {
            log('aborting the sync stream failed: %s', (abortErr as Error).message)
          }
        })
        .finally(release)
    },
    { runOnLimitedConnection: true },
  )
}

/**
 * Opens a sync stream to `peer` and syncs `group` over it as initiator, within the time limits of
 * `limits` (defaults as {@link handleSync}'s).
 */
export async function syncWithPeer(
  libp2p: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId,
  replica: SyncReplica,
  group: Group,
  shutdown: AbortSignal,
  limits: Pick<SyncLimits, 'stallTimeoutMs' | 'syncTimeoutMs'> = {},
): Promise<SyncResult> {
  const { syncTimeoutMs, stallTimeoutMs } = { ...DEFAULT_SYNC_LIMITS, ...limits }
  const signal = AbortSignal.any([shutdown, AbortSignal.timeout(syncTimeoutMs)])
  const stream = await libp2p.dialProtocol(peer, SYNC_PROTOCOL, { signal, runOnLimitedConnection: true })
  const frames = createFrameStream(stream)
  try {
    const result = await syncAsInitiator(
      channelOf(frames, signal, stallTimeoutMs, peer.toString()),
      replica,
      group,
      peer.toString(),
    )
    await frames.close({ signal })
    return result
  } catch (err) {
    frames.abort(err as Error)
    throw err
  }
}

/**
 * Peers subscribed to `topic` for which `include` holds (the group's members), except `exclude`, with the
 * addresses this node knows for them and, when `relayAddrs` are given (on a relay), a circuit address
 * through each, for peers behind NAT.
 */
export async function subscriberHints(
  libp2p: TransportNode,
  topic: string,
  exclude: string,
  include: (peerId: string) => boolean,
  relayAddrs: readonly string[] = [],
): Promise<PeerHint[]> {
  const hints: PeerHint[] = []
  for (const peer of libp2p.services.pubsub.getSubscribers(topic)) {
    const id = peer.toString()
    if (id === exclude || !include(id)) continue
    const addrs = relayAddrs.map((relay) => `${relay}/p2p-circuit/p2p/${id}`)
    try {
      const record = await libp2p.peerStore.get(peer)
      for (const { multiaddr } of record.addresses) addrs.push(`${multiaddr.toString()}/p2p/${id}`)
    } catch {
      // not in the peer store: the circuit addresses are all we have
    }
    if (addrs.length > 0) hints.push({ id, addrs: addrs.slice(0, MAX_HINT_ADDRS) })
    if (hints.length >= MAX_PEER_HINTS) break
  }
  return hints
}

/** Dials the hinted peers this node is not connected to; failures are only logged. */
export function dialHints(libp2p: TransportNode, hints: readonly PeerHint[], signal: AbortSignal): void {
  const self = libp2p.peerId.toString()
  for (const hint of hints) {
    if (hint.id === self) continue
    let addrs: Multiaddr[]
    try {
      if (libp2p.getConnections(peerIdFromString(hint.id)).length > 0) continue
      addrs = hint.addrs.filter((a) => a.endsWith(`/p2p/${hint.id}`)).map((a) => multiaddr(a))
    } catch {
      // a hint that is not a peer id or multiaddr: skip it, keep the others
      log('ignoring a bad peer hint %s', hint.id.slice(0, 80))
      continue
    }
    if (addrs.length === 0) continue
    libp2p.dial(addrs, { signal }).catch((err: unknown) => {
      log('could not dial hinted peer %s: %s', hint.id, (err as Error).message)
    })
  }
}
