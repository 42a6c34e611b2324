import { createInterface } from 'node:readline'
import type { ChatNode } from '../node/index.js'
import { InvalidParamsError } from './errors.js'
import type { CliIO } from './io.js'
import { createJsonRpcServer, type JsonRpcMethods, notification } from './json-rpc.js'
import { runUntilShutdown } from './shutdown.js'

/** Errors whose message is for the client but whose kind has no JSON-RPC name of its own. */
const PARAMS_ERRORS = new Set([
  'InvalidArgumentError',
  'InvalidMemberIdError',
  'TooLargeError',
  'NoCurrentEpochError',
  'InvalidInviteError',
])

function stringParam(params: Record<string, unknown>, key: string): string {
  const value = params[key]
  if (typeof value !== 'string' || value.length === 0)
    throw new InvalidParamsError(`params.${key} must be a non-empty string`)
  return value
}

/** Rethrows core errors that have no JSON-RPC name as InvalidParams, keeping their message. */
async function mapErrors<T>(run: () => Promise<T> | T): Promise<T> {
  try {
    return await run()
  } catch (err) {
    const error = err as Error
    if (PARAMS_ERRORS.has(error.name)) throw new InvalidParamsError(error.message)
    throw err
  }
}

/** The JSON-RPC methods of `p2pchat start --json`, over a chat node. */
export function jsonRpcMethods(node: ChatNode, quit: () => void): JsonRpcMethods {
  return {
    send: (params) =>
      mapErrors(async () => {
        const { id, ts } = await node.send(stringParam(params, 'text'))
        return { id, ts }
      }),
    add: (params) => mapErrors(async () => ({ members: await node.add(stringParam(params, 'member')) })),
    remove: (params) =>
      mapErrors(async () => ({ members: await node.remove(stringParam(params, 'member')) })),
    members: () => mapErrors(() => ({ members: node.members() })),
    invite: () => mapErrors(() => ({ invite: node.invite() })),
    history: (params) =>
      mapErrors(() => {
        const limit = params.limit ?? 50
        if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
          throw new InvalidParamsError('params.limit must be an integer from 1 to 10000')
        }
        return { messages: node.history(limit) }
      }),
    status: () => node.status(),
    quit: () => {
      // answer first, then exit
      setImmediate(quit)
      return {}
    },
  }
}

/**
 * Runs the machine interface: JSON-RPC 2.0 requests on stdin, one per line; responses and
 * notifications on stdout, one per line, and nothing else there (logs go to stderr).
 */
export async function runJsonMode(node: ChatNode, io: CliIO): Promise<number> {
  const write = (line: string): void => io.stdout(`${line}\n`)
  const notify = (method: string, params: object): void =>
    write(notification(method, params as Record<string, unknown>))

  node.addEventListener('message:receive', ({ detail }) => notify('message', detail))
  node.addEventListener('message:encrypted', ({ detail }) => {
    const { name: _name, ...rest } = detail
    notify('encrypted', rest)
  })
  node.addEventListener('membership:change', ({ detail }) => notify('membership', detail))
  node.addEventListener('join:request', ({ detail }) => notify('joinRequest', detail))
  node.addEventListener('message:reject', ({ detail }) =>
    io.stderr(`rejected from ${detail.from}: ${detail.reason}\n`),
  )

  return runUntilShutdown(node, io, (shutdown) => {
    const server = createJsonRpcServer({
      methods: jsonRpcMethods(node, () => shutdown('quit')),
      write,
      onError: (err) => io.stderr(`p2pchat: internal error: ${(err as Error).stack ?? String(err)}\n`),
    })
    const lines = createInterface({ input: io.stdin, terminal: false })
    lines.on('line', (line) => void server.handleLine(line))
    lines.on('close', () => {
      void server.drain().then(() => shutdown('stdin closed'))
    })
    const status = node.status()
    notify('ready', {
      peerId: status.peerId,
      name: status.name,
      addrs: status.addrs,
      group: status.group,
      member: status.member,
    })
    return async () => {
      lines.close()
      await server.drain()
    }
  })
}
