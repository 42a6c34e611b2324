import { logger } from '@libp2p/logger'
import type { Identity } from '../crypto/index.js'
import { type ChatNodeComponents, nodeComponents } from './components.js'
import { type DataDirLock, lockDataDir } from './lock.js'
import { ChatStore, loadOrCreateIdentity } from './store.js'

const log = logger('p2pchat:node:lifecycle')

/**
 * The start/stop bookkeeping a chat node and a relay share: every caller of `start` gets the same
 * start (a failed one may be retried), every caller of `stop` the same stop, and nothing starts once a
 * stop began.
 */
export class Lifecycle {
  readonly #stoppedError: () => Error
  #starting: Promise<void> | undefined
  #stopped: Promise<void> | undefined
  #stopping = false

  constructor(stoppedError: () => Error) {
    this.#stoppedError = stoppedError
  }

  /** True from the first call of {@link stop} on; background work checks it before doing more. */
  get stopping(): boolean {
    return this.#stopping
  }

  /** Runs `run` once for all concurrent callers; rejects after a stop. */
  start(run: () => Promise<void>): Promise<void> {
    if (this.#stopped !== undefined) return Promise.reject(this.#stoppedError())
    if (this.#starting === undefined) {
      const starting = run()
      this.#starting = starting
      starting.catch(() => {
        if (this.#starting === starting) this.#starting = undefined
      })
    }
    return this.#starting
  }

  /** Marks the lifecycle stopping and runs `run` once for every caller. */
  stop(run: () => Promise<void>): Promise<void> {
    this.#stopping = true
    this.#stopped ??= run()
    return this.#stopped
  }

  /** Resolves once a start in flight has settled, whatever its outcome, so what it built can be stopped. */
  async startSettled(): Promise<void> {
    await this.#starting?.catch(() => {})
  }

  /**
   * The start a chat node and a relay share: `create` the libp2p node, hand it to `created` at once (so
   * a stop meanwhile stops it too), then `serve` its protocols, stopping the node if that fails.
   *
   * @returns the node, or `undefined` when a stop began meanwhile: the stop waits for this start
   * ({@link startSettled}), then stops the node
   */
  async startNode<T extends { stop(): Promise<void> | void }>(
    create: () => Promise<T>,
    created: (node: T) => void,
    serve: (node: T) => Promise<void>,
  ): Promise<T | undefined> {
    const node = await create()
    created(node)
    if (this.#stopping) return undefined
    await startOrRelease(
      () => serve(node),
      () => node.stop(),
    )
    return this.#stopping ? undefined : node
  }

  /**
   * The stop a chat node and a relay share: aborts `shutdown`, lets a start in flight finish (so the node
   * it creates is stopped too), runs `halt` (background work, then libp2p), then closes or releases each
   * of `held`, even if `halt` failed (see {@link stopAndRelease}).
   */
  async stopNode(
    shutdown: AbortController,
    halt: () => Promise<void>,
    held: ReadonlyArray<Releasable | undefined>,
  ): Promise<void> {
    shutdown.abort()
    await stopAndRelease(async () => {
      await this.startSettled()
      await halt()
    }, held)
  }
}

/**
 * Runs `start`; if it fails, runs `release` to free whatever did start (a listening socket, a libp2p
 * node), logs a failure of that too, and rethrows the error of `start`, which is the one to report.
 *
 * @example
 * ```ts
 * await startOrRelease(() => node.start(), () => node.stop())
 * ```
 */
export async function startOrRelease(
  start: () => Promise<void>,
  release: () => Promise<void> | void,
): Promise<void> {
  try {
    await start()
  } catch (err) {
    try {
      await release()
    } catch (releaseErr) {
      log.error('releasing after a failed start failed too - %e', releaseErr)
    }
    throw err
  }
}

/** Something a node holds until it stops: its database, its data directory lock. */
export interface Releasable {
  close?(): void
  release?(): void
}

/**
 * Stops a node: runs `stop`, then closes or releases each of `held` in order, each even if what came
 * before it failed (the first failure is rethrown once all ran).
 *
 * @example
 * ```ts
 * await stopAndRelease(() => libp2p.stop(), [store, lock])
 * ```
 */
export async function stopAndRelease(
  stop: () => Promise<void>,
  held: ReadonlyArray<Releasable | undefined>,
): Promise<void> {
  let failure: unknown
  let failed = false
  const attempt = async (step: () => unknown): Promise<void> => {
    try {
      await step()
    } catch (err) {
      if (!failed) failure = err
      failed = true
    }
  }
  await attempt(stop)
  for (const item of held) await attempt(() => (item?.close !== undefined ? item.close() : item?.release?.()))
  if (failed) throw failure
}

/**
 * How a chat node and a relay are opened: locks `dataDir` for this process, opens (creating on first use)
 * the identity and, unless `components.store` is given, the database in it, and `build`s the node from
 * them with the other components defaulted. If any of it fails, the store is closed and the lock released.
 *
 * @throws {DataDirLockedError} another running p2pchat process uses the data directory
 * @throws {InsecureIdentityKeyError} `identity.key` is readable or writable by other users
 */
export async function openNode<T>(
  dataDir: string,
  components: Partial<ChatNodeComponents>,
  build: (identity: Identity, components: ChatNodeComponents, lock: DataDirLock) => T,
): Promise<T> {
  const lock = lockDataDir(dataDir)
  let opened: ChatStore | undefined
  try {
    const identity = await loadOrCreateIdentity(dataDir)
    opened = components.store ?? ChatStore.open(dataDir)
    return build(identity, { ...nodeComponents(components), store: opened }, lock)
  } catch (err) {
    opened?.close()
    lock.release()
    throw err
  }
}
