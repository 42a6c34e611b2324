/**
 * Where to find peers again after a restart: the relays given with `--bootstrap`, the addresses peers
 * were reached or announced at (invites, identify, accepted peer exchange hints), and the TCP port this
 * node listened on last. All of it lives in the node's database, so a restart needs no flags.
 *
 * @packageDocumentation
 */

import { createServer } from 'node:net'
import type { Logger } from '@libp2p/interface'
import { CODE_P2P, CODE_P2P_CIRCUIT, CODE_TCP, multiaddr } from '@multiformats/multiaddr'
import type { Group } from '../membership/index.js'
import { DEFAULT_LISTEN } from './defaults.js'
import { DialFailedError } from './errors.js'
import type { Invite } from './invite.js'
import { type ChatStore, persist } from './store.js'
import type { TransportNode } from './transport.js'

/** Addresses remembered per peer, newest first; older ones are forgotten. */
export const MAX_ADDRS_PER_PEER = 8

/** Remembered peers (besides relays) dialled again at start and in every sync round, at most. */
export const MAX_REDIAL_PEERS = 32

/** Meta key of the remembered `--bootstrap` list. */
const RELAYS_KEY = 'relays'

/** Meta key of the TCP port of the last run. */
const LISTEN_PORT_KEY = 'listenPort'

/** Relays remembered from earlier runs' `--bootstrap`, oldest first. */
export function rememberedRelays(store: Pick<ChatStore, 'getMeta'>): string[] {
  const stored = store.getMeta(RELAYS_KEY)
  if (stored === undefined) return []
  try {
    const value: unknown = JSON.parse(stored)
    return Array.isArray(value) ? value.filter((a): a is string => typeof a === 'string') : []
  } catch {
    return []
  }
}

/**
 * The bootstrap list of this run: the relays remembered from earlier runs and `given`, which is
 * remembered from now on.
 */
export function rememberRelays(
  store: Pick<ChatStore, 'getMeta' | 'setMeta'>,
  given: readonly string[],
): string[] {
  const relays = [...new Set([...rememberedRelays(store), ...given])]
  if (given.length > 0) store.setMeta(RELAYS_KEY, JSON.stringify(relays))
  return relays
}

/**
 * `addrs` of `peerId` as dialable text, each ending in `/p2p/<peerId>`: unparseable ones, wildcards and
 * ones naming another peer are dropped.
 */
export function dialableAddrs(peerId: string, addrs: readonly string[]): string[] {
  const out: string[] = []
  for (const text of addrs) {
    try {
      const addr = multiaddr(text)
      const components = addr.getComponents()
      if (components.some((c) => c.value === '0.0.0.0' || c.value === '::')) continue
      const last = components.at(-1)
      const circuit = components.findIndex((c) => c.code === CODE_P2P_CIRCUIT)
      const target = components.findLast((c) => c.code === CODE_P2P)
      if (target !== undefined && components.indexOf(target) > circuit && target.value !== peerId) continue
      out.push(last?.code === CODE_P2P && last.value === peerId ? text : `${text}/p2p/${peerId}`)
    } catch {
      // not a multiaddr: nothing to dial
    }
  }
  return out
}

/** Remembers `addrs` of `peerId` (newest first, at most {@link MAX_ADDRS_PER_PEER}). */
export function rememberAddrs(
  store: Pick<ChatStore, 'peer' | 'upsertPeer'>,
  peerId: string,
  addrs: readonly string[],
): void {
  const fresh = dialableAddrs(peerId, addrs)
  if (fresh.length === 0) return
  const known = store.peer(peerId)?.addrs ?? []
  store.upsertPeer({ peerId, addrs: [...new Set([...fresh, ...known])].slice(0, MAX_ADDRS_PER_PEER) })
}

/**
 * The remembered addresses of the peers `wanted` accepts (group members, inviters), the most recently
 * seen first, at most {@link MAX_REDIAL_PEERS} peers.
 */
export function redialAddrs(store: Pick<ChatStore, 'peers'>, wanted: (peerId: string) => boolean): string[] {
  return store
    .peers()
    .filter((peer) => peer.addrs.length > 0 && wanted(peer.peerId))
    .slice(0, MAX_REDIAL_PEERS)
    .flatMap((peer) => peer.addrs)
}

/**
 * The listen addresses of a run without `--listen`: the TCP port of the last run when it is free, so
 * invites given out before a restart still reach this peer; otherwise {@link DEFAULT_LISTEN}.
 */
export async function stableListen(store: Pick<ChatStore, 'getMeta'>): Promise<string[]> {
  const port = Number(store.getMeta(LISTEN_PORT_KEY))
  if (Number.isSafeInteger(port) && port > 0 && port < 65536 && (await isFree(port))) {
    return [`/ip4/0.0.0.0/tcp/${port}`]
  }
  return [...DEFAULT_LISTEN]
}

/** Remembers the TCP port this node listens on, for {@link stableListen} at the next start. */
export function rememberListenPort(store: Pick<ChatStore, 'setMeta'>, addrs: readonly string[]): void {
  for (const text of addrs) {
    try {
      const components = multiaddr(text).getComponents()
      if (components.some((c) => c.code === CODE_P2P_CIRCUIT)) continue
      const port = components.find((c) => c.code === CODE_TCP)?.value
      if (port !== undefined && port !== '0') {
        store.setMeta(LISTEN_PORT_KEY, port)
        return
      }
    } catch {
      // not ours to judge: skip
    }
  }
}

/** Whether nothing listens on TCP `port` of every IPv4 interface now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

/**
 * Where the peers worth reaching again were last seen: members of `groups` and the peers that invited
 * this node (from the peers table), and the addresses of the invites it joined by.
 */
export function worthRedialling(
  store: Pick<ChatStore, 'peers'>,
  groups: Iterable<{ group: Group; invite?: Invite | undefined }>,
  self: string,
): string[] {
  const list = [...groups]
  const inviters = new Set(list.flatMap((g) => (g.invite === undefined ? [] : [g.invite.inviter.peerId])))
  const wanted = (peerId: string): boolean =>
    peerId !== self && (inviters.has(peerId) || list.some((g) => g.group.isMember(peerId)))
  const invited = list.flatMap((g) => g.invite?.addrs ?? [])
  return [...redialAddrs(store, wanted), ...invited]
}

/**
 * Dials `addr` (a multiaddr, `/p2p/<peer id>` optional) and remembers it for the peer reached.
 *
 * @throws {DialFailedError} the address is not a multiaddr, or the peer was not reached in time
 */
export async function dialAndRemember(
  libp2p: Pick<TransportNode, 'dial'>,
  addr: string,
  store: ChatStore,
  log: Logger,
  signal: AbortSignal,
): Promise<string> {
  let peerId: string
  try {
    peerId = (await libp2p.dial(multiaddr(addr), { signal })).remotePeer.toString()
  } catch (err) {
    throw new DialFailedError(addr, (err as Error).message)
  }
  persist(log, 'a dialled address', () => rememberAddrs(store, peerId, [addr]))
  return peerId
}

/** Dials each address of an invite in the background; a failure is only logged. */
export function dialInviteAddrs(
  libp2p: Pick<TransportNode, 'dial'>,
  addrs: readonly string[],
  signal: AbortSignal,
  log: Logger,
): void {
  for (const addr of addrs) {
    libp2p.dial(multiaddr(addr), { signal }).catch((err: unknown) => {
      log('could not dial invite address %s: %s', addr, (err as Error).message)
    })
  }
}
