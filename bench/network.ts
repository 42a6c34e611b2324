/**
 * What the network figures share: chat nodes and relays on 127.0.0.1 (port 0, mDNS off) in this
 * process or as real `bin/p2pchat.js` processes, data directories seeded through the store's own API,
 * and a probe of the longest event-loop block.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import type { Identity } from '../src/crypto/index.js'
import { Group, type SealedMessage, type SignedEvent } from '../src/membership/index.js'
import {
  type ChatNode,
  ChatStore,
  createChatNode,
  createTransport,
  loadOrCreateIdentity,
  type NodeComponents,
} from '../src/node/index.js'
import { waitFor } from '../test/fixtures/wait-for.js'

/** Every bench peer listens here: loopback, a port the system picks. */
export const LOOPBACK = '/ip4/127.0.0.1/tcp/0'

/** A 200-byte message text, as in the envelope figures. */
export const TEXT = 'x'.repeat(200)

/** A fresh temporary directory; the caller removes it (see {@link removeDirs}). */
export function benchDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `p2pchat-bench-${label}-`))
}

/** Removes directories made by {@link benchDir}. */
export async function removeDirs(dirs: readonly string[]): Promise<void> {
  await Promise.allSettled(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
}

/**
 * Components of an in-process bench node or relay: the real transport with gossipsub's IP-colocation
 * penalty off, since every bench peer shares 127.0.0.1 (the rest of peer scoring stays on).
 */
export function sameHostComponents(): Partial<NodeComponents> {
  return {
    transport: (init, options) =>
      createTransport({ ...init, gossip: { ...init.gossip, sameHostTest: true } }, options),
  }
}

/** A chat node on 127.0.0.1 with mDNS off, not started; `bootstrap` as `--bootstrap` would give it. */
export function benchChatNode(
  dataDir: string,
  name: string,
  bootstrap: readonly string[] = [],
): Promise<ChatNode> {
  return createChatNode(
    { dataDir, name, listen: [LOOPBACK], mdns: false, bootstrap: [...bootstrap] },
    sameHostComponents(),
  )
}

/** {@link benchChatNode}, started. */
export async function startChatNode(
  dataDir: string,
  name: string,
  bootstrap: readonly string[] = [],
): Promise<ChatNode> {
  const node = await benchChatNode(dataDir, name, bootstrap)
  await node.start()
  return node
}

/** Waits for `condition`, checking every 20 ms, or fails after `timeout` ms saying what did not happen. */
export function until(condition: () => boolean, timeout: number, message: string): Promise<void> {
  return waitFor(condition, { timeout, interval: 20, message })
}

/** A group whose log was written by the Group API, with one replica per member. */
export interface SeededGroup {
  id: string
  name: string
  events: SignedEvent[]
  /** One replica per member, in the order of the data directories given; the first is the founder. */
  replicas: Group[]
}

/**
 * A group of the members whose identities live in `dataDirs` (created there as a node would), founded
 * by the first and the others added by it, each holding a replica of the log.
 */
export async function seedGroup(dataDirs: readonly string[], name: string): Promise<SeededGroup> {
  const identities = await Promise.all(dataDirs.map((dir) => loadOrCreateIdentity(dir)))
  const [founder, ...others] = identities as [Identity, ...Identity[]]
  const { group } = await Group.create({ identity: founder, name, memberName: 'm0' })
  for (const [i, other] of others.entries()) await group.add(other.memberId, `m${i + 1}`)
  const replicas = others.map((identity) => new Group({ identity, groupId: group.id }))
  for (const replica of replicas) for (const e of group.events()) replica.receiveEvent(e.bytes)
  return { id: group.id, name, events: group.events(), replicas: [group, ...replicas] }
}

/** Writes `identity` as the identity key of `dataDir` (which must not have one). */
export function writeIdentity(dataDir: string, identity: Identity): void {
  writeFileSync(join(dataDir, 'identity.key'), identity.toProtobuf(), { mode: 0o600, flag: 'wx' })
}

/** A message sealed by one replica, and its sender's peer id. */
export interface SeededMessage extends SealedMessage {
  sender: string
}

/** `count` messages of {@link TEXT}, the `senders` taking turns. */
export async function sealMessages(senders: readonly Group[], count: number): Promise<SeededMessage[]> {
  const out: SeededMessage[] = []
  for (let i = 0; i < count; i++) {
    const sender = senders[i % senders.length] as Group
    out.push({ ...(await sender.seal(TEXT)), sender: sender.identity.memberId })
  }
  return out
}

/**
 * Writes a group's log, and optionally messages, into the store of `dataDir` with the store's own
 * methods, as a node that had accepted them would have. `readable`: store the text, as a member does;
 * otherwise only ciphertext, as a relay does.
 */
export function seedStore(
  dataDir: string,
  group: { id: string; name: string; events: ReadonlyArray<Pick<SignedEvent, 'id' | 'bytes'>> },
  messages: readonly SeededMessage[] = [],
  readable = true,
): void {
  const store = ChatStore.open(dataDir)
  try {
    store.saveGroup({ id: group.id, name: group.name })
    for (const e of group.events) store.addEvent(group.id, e.id, e.bytes)
    const now = Date.now()
    for (const m of messages) {
      store.addMessage({
        groupId: group.id,
        id: m.id,
        sender: m.sender,
        seq: m.seq,
        epoch: m.epoch,
        receivedAt: now,
        bytes: m.bytes,
        text: readable ? TEXT : null,
        ts: readable ? m.ts : null,
      })
    }
  } finally {
    store.close()
  }
}

/**
 * The longest the event loop was blocked while it ran: `monitorEventLoopDelay` at 10 ms resolution
 * (its maximum is the longest a timer of that resolution was held up).
 */
export class LoopBlockProbe {
  readonly #histogram = monitorEventLoopDelay({ resolution: 10 })

  start(): void {
    this.#histogram.reset()
    this.#histogram.enable()
  }

  /** Stops and returns the longest block, in ms. */
  stop(): number {
    this.#histogram.disable()
    return this.#histogram.max / 1e6
  }
}

/** `bin/p2pchat.js` of this checkout. */
export const CLI = new URL('../../bin/p2pchat.js', import.meta.url).pathname

/** A child process started by {@link spawnUntilReady}. */
export interface ReadyProcess {
  child: ChildProcess
  /** Milliseconds from spawn to its `ready` line. */
  readyMs: number
  /** The `params` of its `ready` notification. */
  ready: Record<string, unknown>
  /** Every later JSON line it writes on stdout. */
  onLine(listener: (message: Record<string, unknown>) => void): void
  /** Writes one JSON line to its stdin. */
  send(message: object): void
  /** Closes its stdin (a `--json` p2pchat stops on EOF) and waits for it to exit; kills it after 10 s. */
  stop(): Promise<void>
}

/**
 * Spawns `node <script> ...args` and waits (up to `timeout` ms) for its first stdout line, a JSON-RPC
 * `ready` notification, as `p2pchat start --json` and `p2pchat relay --json` write.
 */
export async function spawnUntilReady(
  script: string,
  args: readonly string[],
  timeout = 60_000,
): Promise<ReadyProcess> {
  const start = performance.now()
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const listeners: Array<(message: Record<string, unknown>) => void> = []
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = await new Promise<{ at: number; params: Record<string, unknown> }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} not ready in ${timeout} ms: ${stderr}`)),
      timeout,
    )
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before ready: ${stderr}`)))
    lines.on('line', (line) => {
      const message = JSON.parse(line) as { method?: string; params?: Record<string, unknown> }
      if (message.method === 'ready') {
        clearTimeout(timer)
        resolve({ at: performance.now(), params: message.params ?? {} })
      } else for (const listener of listeners) listener(message as Record<string, unknown>)
    })
  }).catch((err: unknown) => {
    child.kill('SIGKILL')
    throw err
  })
  return {
    child,
    readyMs: ready.at - start,
    ready: ready.params,
    onLine: (listener) => listeners.push(listener),
    send: (message) => child.stdin?.write(`${JSON.stringify(message)}\n`),
    stop: async () => {
      child.stdin?.end()
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Resident set size of process `pid`, in bytes (Linux /proc), or undefined where it cannot be read. */
export function rssOf(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}
