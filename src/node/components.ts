import type { AbortOptions, ComponentLogger } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import type { ChatStore } from './store.js'
import { createTransport, type TransportInit, type TransportNode } from './transport.js'

/** The time, in ms since the epoch; injected so tests can move it. */
export interface Clock {
  now(): number
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() }

/** Builds and starts the libp2p node; tests wrap {@link createTransport} to set their test-only options. */
export type TransportFactory = (init: TransportInit, options?: AbortOptions) => Promise<TransportNode>

/**
 * What a chat node or relay is built from, as libp2p services take `(components, init)`. Every field has
 * a default; tests hand in fakes or wrappers.
 */
export interface NodeComponents {
  /** Builds the libp2p node at start. Default {@link createTransport}. */
  transport: TransportFactory
  /**
   * Where every part of the node logs, each under `p2pchat:<part>`. Default `defaultLogger()`; a
   * `prefixLogger(name)` tells the logs of several nodes in one process apart.
   */
  logger: ComponentLogger
  /** Default {@link systemClock}. */
  clock: Clock
}

/** {@link NodeComponents} plus the database a chat node or relay opened in its data directory. */
export interface ChatNodeComponents extends NodeComponents {
  store: ChatStore
}

/** `components` with every missing field set to its default. */
export function nodeComponents(components: Partial<NodeComponents> = {}): NodeComponents {
  return {
    transport: components.transport ?? createTransport,
    logger: components.logger ?? defaultLogger(),
    clock: components.clock ?? systemClock,
  }
}

/** How long any dial of a chat node or relay may take before it is given up. */
export const DIAL_TIMEOUT_MS = 10_000

/** A signal for one dial: `shutdown`, or {@link DIAL_TIMEOUT_MS}, whichever comes first. */
export function dialSignal(shutdown: AbortSignal): AbortSignal {
  return AbortSignal.any([shutdown, AbortSignal.timeout(DIAL_TIMEOUT_MS)])
}
