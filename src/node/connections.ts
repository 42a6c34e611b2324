/**
 * @packageDocumentation
 *
 * Connections a user asks for: dialling a multiaddr by hand, the addresses of an invite, and the relays
 * remembered from `--bootstrap`, which can be listed and forgotten.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { PeerRef } from './chat-events.js'
import { dialSignal } from './components.js'
import { NodeStoppedError } from './errors.js'
import type { Invite } from './invite.js'
import {
  dialAndRemember,
  forgetRelays,
  rememberAddrs,
  rememberedRelays,
  rememberRelays,
} from './peer-addresses.js'
import type { PeerKeeper } from './peer-keeper.js'
import { type ChatStore, persist } from './store.js'
import type { TransportNode } from './transport.js'

/** What {@link Connections} acts on; the libp2p node and keeper exist while the node runs. */
export interface ConnectionsComponents {
  store: ChatStore
  log: Logger
  /** The libp2p node while the node runs (not stopping); undefined otherwise. */
  running: () => TransportNode | undefined
  keeper: () => PeerKeeper | undefined
  /** Aborted when the node stops. */
  shutdown: AbortSignal
  ref: (peerId: string) => PeerRef
}

/** Dialling by hand and the remembered relays, as `ChatNode.connections`. */
export class Connections {
  readonly #c: ConnectionsComponents
  /** The names of this start's `forgetRelays` that matched no remembered relay. */
  #unmatched: string[] = []

  constructor(components: ConnectionsComponents) {
    this.#c = components
  }

  /**
   * Dials `addr` (a multiaddr, `/p2p/<peer id>` optional) and remembers it for later starts.
   *
   * @throws {DialFailedError} the address is not a multiaddr, or the peer was not reached in time
   * @throws {NodeStoppedError} the node is not running
   */
  async connect(addr: string, options: AbortOptions = {}): Promise<PeerRef> {
    const libp2p = this.#c.running()
    if (libp2p === undefined) throw new NodeStoppedError('the node is not running')
    const peerId = await dialAndRemember(libp2p, addr, this.#c.store, this.#c.log, this.#signal(options))
    return this.#c.ref(peerId)
  }

  /**
   * Remembers the addresses of an invite for its inviter, and, if the node runs, dials them now and
   * keeps the inviter connected from now on, as the peers remembered at start are.
   */
  reachInviter(invite: Pick<Invite, 'inviter' | 'addrs'>): void {
    persist(this.#c.log, 'invite addresses', () =>
      rememberAddrs(this.#c.store, invite.inviter.peerId, invite.addrs),
    )
    if (this.#c.running() !== undefined) this.#c.keeper()?.keepAddrs(invite.addrs)
  }

  /**
   * The bootstrap list of this start (see `rememberRelays`): the relays remembered from earlier runs, less
   * those `forget` names, and `given`, remembered from now on. The names in `forget` that match no
   * remembered relay are kept for {@link Connections.unmatchedForgets}.
   */
  startRelays(given: readonly string[], forget: readonly string[] = []): string[] {
    this.#unmatched = forget.filter((ref) => forgetRelays(this.#c.store, ref).length === 0)
    return rememberRelays(this.#c.store, given)
  }

  /** The names given to forget at start ({@link Connections.startRelays}) that named no remembered relay. */
  unmatchedForgets(): string[] {
    return [...this.#unmatched]
  }

  /** The relays remembered from `--bootstrap`: dialled at every start, and kept connected. */
  relays(): string[] {
    return rememberedRelays(this.#c.store)
  }

  /**
   * Forgets remembered `--bootstrap` relays, named by multiaddr or peer id: not dialled any more, in this
   * run or later ones. A connection open now stays until it closes.
   *
   * @returns the multiaddrs forgotten; none when `ref` names no remembered relay
   */
  forgetRelay(ref: string): string[] {
    const forgotten = forgetRelays(this.#c.store, ref)
    for (const { peerId } of forgotten) if (peerId !== undefined) this.#c.keeper()?.forget(peerId)
    return forgotten.map((f) => f.addr)
  }

  /** The caller's signal, the node's shutdown and the dial timeout, combined. */
  #signal(options: AbortOptions): AbortSignal {
    return dialSignal(AbortSignal.any([this.#c.shutdown, ...(options.signal ? [options.signal] : [])]))
  }
}
