import { createInterface } from 'node:readline'
import type { ChatNode } from '../node/index.js'
import { InvalidParamsError } from './errors.js'
import type { CliIO } from './io.js'
import { createJsonRpcServer, type JsonRpcMethods, notification } from './json-rpc.js'
import type { ChatSession, StartMode } from './session.js'
import { runUntilShutdown } from './shutdown.js'

/** Longest request line accepted on stdin (a message is at most 64 KiB of text, escaped). */
const MAX_REQUEST_LINE = 1024 * 1024

function stringParam(params: Record<string, unknown>, key: string): string {
  const value = params[key]
  if (typeof value !== 'string' || value.length === 0)
    throw new InvalidParamsError(`params.${key} must be a non-empty string`)
  return value
}

/** `params[key]` when it is a non-empty string, `undefined` when absent. */
function optionalStringParam(params: Record<string, unknown>, key: string): string | undefined {
  return params[key] === undefined ? undefined : stringParam(params, key)
}

/**
 * The JSON-RPC methods of `p2pchat start --json`, over a session's node. A method about a group takes
 * it as `params.group` (a name or an id); without it, the node's only group (several: InvalidParams
 * naming them, see {@link ChatSession.pick}). What a method throws is reported as the CLI's error table
 * says (`ERROR_TABLE` in user-errors.ts), e.g. `NoCurrentEpochError` as InvalidParams with a message
 * that says to retry.
 */
export function jsonRpcMethods(session: ChatSession, quit: () => void): JsonRpcMethods {
  const { node } = session
  const groupOf = (params: Record<string, unknown>): string =>
    session.pick(optionalStringParam(params, 'group')).id
  return {
    send: async (params) => {
      const group = groupOf(params)
      const { id, ts } = await node.send(group, stringParam(params, 'text'))
      return { id, ts }
    },
    add: async (params) => ({ members: await node.add(groupOf(params), stringParam(params, 'member')) }),
    remove: async (params) => ({
      members: await node.remove(groupOf(params), stringParam(params, 'member')),
    }),
    members: (params) => ({ members: node.members(groupOf(params)) }),
    invite: (params) => {
      // `ask: true`: a member approves the joiner by hand (`add`); else the invite admits on its own, once
      const { ask, validForMs } = params
      if (ask !== undefined && typeof ask !== 'boolean')
        throw new InvalidParamsError('params.ask must be a boolean')
      if (
        validForMs !== undefined &&
        (typeof validForMs !== 'number' || !Number.isSafeInteger(validForMs) || validForMs < 1)
      )
        throw new InvalidParamsError('params.validForMs must be a positive integer')
      const options = { ask: ask === true, ...(validForMs === undefined ? {} : { validForMs }) }
      return { invite: node.invite(groupOf(params), options) }
    },
    history: (params) => {
      const limit = params.limit ?? 50
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
        throw new InvalidParamsError('params.limit must be an integer from 1 to 10000')
      }
      return { messages: node.history(groupOf(params), limit) }
    },
    status: (params) => (node.groups().length === 0 ? node.status() : node.status(groupOf(params))),
    groups: () => ({
      groups: session.groups().map(({ id, name, member, removed }) => ({ id, name, member, removed })),
    }),
    create: async (params) => ({ group: await node.createGroup(stringParam(params, 'name')) }),
    join: async (params) => ({ group: await node.joinGroup(stringParam(params, 'invite')) }),
    leave: async (params) => {
      await node.leave(groupOf(params))
      return {}
    },
    rejoin: (params) => {
      node.rejoin(groupOf(params))
      return {}
    },
    // deleting history takes the group's name or id, never the default
    forget: (params) => {
      session.forget(session.pick(stringParam(params, 'group')).id)
      return {}
    },
    peers: () => ({ peers: node.peers() }),
    connect: async (params) => ({ peer: await node.connect(stringParam(params, 'addr')) }),
    relays: () => ({ relays: node.connections.relays() }),
    forgetRelay: (params) => {
      const forgotten = node.connections.forgetRelay(stringParam(params, 'relay'))
      return { forgotten, relays: node.connections.relays() }
    },
    quit: () => {
      // answer first, then exit
      setImmediate(quit)
      return {}
    },
  }
}

/**
 * Sends the node's events as the JSON-RPC notifications of the API (`message`, `encrypted`,
 * `membership`, `joinRequest`, `inviteForged`, `inviteRefused`, `joinUnanswered`, `badEpochKey`,
 * `reachability`), for `--json` and the web interface alike.
 */
export function forwardNotifications(node: ChatNode, notify: (method: string, params: object) => void): void {
  node.addEventListener('message:receive', ({ detail }) => notify('message', detail))
  node.addEventListener('message:encrypted', ({ detail }) => {
    const { name: _name, ...rest } = detail
    notify('encrypted', rest)
  })
  node.addEventListener('membership:change', ({ detail }) => notify('membership', detail))
  node.addEventListener('join:request', ({ detail }) => notify('joinRequest', detail))
  node.addEventListener('invite:forged', ({ detail }) => notify('inviteForged', detail))
  node.addEventListener('invite:refused', ({ detail }) => notify('inviteRefused', detail))
  node.addEventListener('join:unanswered', ({ detail }) => notify('joinUnanswered', detail))
  node.addEventListener('epoch:bad-key', ({ detail }) => notify('badEpochKey', detail))
  node.addEventListener('reachability:change', ({ detail }) => notify('reachability', detail))
}

/**
 * The machine interface: JSON-RPC 2.0 requests on stdin, one per line; responses and notifications on
 * stdout, one per line, and nothing else there (logs go to stderr).
 *
 * `ready` is always the first line: notifications raised while the node starts (the `membership`
 * change of `--create`, what sync delivers early) are held until it is written, then sent in order.
 * When stdout fails (EPIPE: the reader went away) the node stops cleanly and the exit status is 0.
 *
 * @example
 * ```ts
 * const mode = createJsonMode(io)
 * const session = await openSession(command, (opened) => mode.attach(opened))
 * return mode.run(session)
 * ```
 */
export function createJsonMode(io: CliIO): StartMode {
  const write = (line: string): void => io.stdout(`${line}\n`)
  /** Notification lines held until `ready` is written; `undefined` once it has been. */
  let held: string[] | undefined = []
  const notify = (method: string, params: object): void => {
    const line = notification(method, params as Record<string, unknown>)
    if (held === undefined) write(line)
    else held.push(line)
  }

  return {
    attach({ node }) {
      forwardNotifications(node, notify)
      node.addEventListener('message:reject', ({ detail }) =>
        io.stderr(`rejected from ${detail.from}: ${detail.reason}\n`),
      )
    },

    run(session) {
      return runUntilShutdown(session.node, io, (shutdown) => {
        // the reader is gone: nobody can see an answer any more, so stop as on stdin EOF
        const removeStdoutError = io.onStdoutError(() => shutdown('stdout closed'))
        const server = createJsonRpcServer({
          methods: jsonRpcMethods(session, () => shutdown('quit')),
          write,
          onError: (err) => io.stderr(`p2pchat: internal error: ${(err as Error).stack ?? String(err)}\n`),
        })
        // readline buffers a line without bound: refuse input that never ends a line
        let sinceNewline = 0
        io.stdin.on('data', (chunk: Buffer | string) => {
          const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1')
          const last = text.lastIndexOf('\n')
          sinceNewline = last < 0 ? sinceNewline + text.length : text.length - last - 1
          if (sinceNewline > MAX_REQUEST_LINE) {
            io.stderr(`p2pchat: a request line is longer than ${MAX_REQUEST_LINE} bytes; closing\n`)
            io.stdin.pause()
            shutdown('request too long')
          }
        })
        const lines = createInterface({ input: io.stdin, terminal: false })
        lines.on('line', (line) => void server.handleLine(line))
        lines.on('close', () => {
          void server.drain().then(() => shutdown('stdin closed'))
        })
        const status = session.status()
        write(
          notification('ready', {
            peerId: status.peerId,
            name: status.name,
            addrs: status.addrs,
            group: status.group,
            member: status.member,
            removed: status.removed,
          }),
        )
        const early = held ?? []
        held = undefined
        for (const line of early) write(line)
        return async () => {
          removeStdoutError()
          lines.close()
          await server.drain()
        }
      })
    },
  }
}
