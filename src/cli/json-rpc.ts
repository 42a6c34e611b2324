/**
 * JSON-RPC 2.0 over newline-delimited JSON, as `p2pchat start --json` speaks it on stdin/stdout.
 *
 * Everything here is pure and transport-agnostic: lines in, lines out. Each produced line is one
 * JSON text without the line terminator; the transport appends `\n`. `JSON.stringify` never emits a
 * raw newline, and U+2028/U+2029 are escaped as well, so a line can be split on any line separator.
 *
 * @see https://www.jsonrpc.org/specification
 * @packageDocumentation
 */

import { presentationOf } from './user-errors.js'

/** A request id: the spec allows strings, numbers and `null`. */
export type JsonRpcId = string | number | null

/** Structured parameters, by name or by position. */
export type JsonRpcParams = Record<string, unknown> | unknown[]

/** A well-formed request. When `id` is absent it is a notification, and gets no response. */
export interface JsonRpcRequest {
  jsonrpc: '2.0'
  method: string
  params?: JsonRpcParams
  id?: JsonRpcId
}

/** The error object of an error response. */
export interface JsonRpcErrorObject {
  code: number
  message: string
  data?: unknown
}

/** Error codes defined by JSON-RPC 2.0, plus the one code p2pchat uses for application errors. */
export const JsonRpcErrorCode = {
  /** The line is not valid JSON. */
  ParseError: -32700,
  /** The JSON is not a valid request object (or is a batch, which p2pchat does not accept). */
  InvalidRequest: -32600,
  /** No such method. */
  MethodNotFound: -32601,
  /** The method exists but the params are unusable; `data.name` is `'InvalidParams'`. */
  InvalidParams: -32602,
  /** A bug on the server side; details are not sent to the client. */
  InternalError: -32603,
  /** The request was understood but refused; `data.name` says why (see {@link ApplicationErrorName}). */
  ApplicationError: -32000,
} as const

/**
 * Why an understood request failed, as reported in `error.data.name`:
 *
 * - `AccessDenied`: the caller's peer is not allowed to do this (e.g. remove a member without being one)
 * - `UnknownMember`: no member matches the given name or peer id
 * - `AmbiguousMember`: several members match the given name; use a peer id (`data.candidates`)
 * - `UnverifiedName`: the name is known only from join requests, where anyone can claim any name; nobody
 *   was added, and `data.candidates` lists who asked, to add by peer id
 * - `InvalidParams`: the params are missing a field or have the wrong type (code -32602)
 * - `NotInGroup`: this peer is not (or no longer) a member of a group
 * - `Unreachable`: `connect` could not reach the address (not a multiaddr, refused, or timed out)
 */
export type ApplicationErrorName = (typeof APPLICATION_ERROR_NAMES)[number]

/** Every {@link ApplicationErrorName}; an error already named so is reported as it is. */
const APPLICATION_ERROR_NAMES = [
  'AccessDenied',
  'UnknownMember',
  'AmbiguousMember',
  'UnverifiedName',
  'InvalidParams',
  'NotInGroup',
  'Unreachable',
] as const

function isApplicationErrorName(name: unknown): name is ApplicationErrorName {
  return (APPLICATION_ERROR_NAMES as readonly unknown[]).includes(name)
}

/** A peer a name may mean, as sent in `error.data.candidates`: only the two fields clients are promised. */
function candidateOf(value: unknown): { peerId: unknown; name: unknown } {
  const { peerId, name } = isRecord(value) ? value : {}
  return { peerId, name }
}

/** The result of {@link parseRequestLine}: the request, or the error response line to send back. */
export type ParsedRequestLine = { ok: true; request: JsonRpcRequest } | { ok: false; response: string }

function toLine(message: object): string {
  // Valid JSON, but some line splitters (and JavaScript before ES2019) treat these as line breaks.
  return JSON.stringify(message)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isId(value: unknown): value is JsonRpcId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)) || value === null
}

/**
 * Parse one line received from a client.
 *
 * @returns `{ ok: true, request }` for a valid request or notification; otherwise
 * `{ ok: false, response }` with the error response line to send: -32700 for invalid JSON, -32600
 * for anything that is not a single request object (batches included). The response carries the
 * request's id when one could be read, `null` otherwise.
 *
 * @example
 * ```ts
 * const parsed = parseRequestLine('{"jsonrpc":"2.0","id":1,"method":"send","params":{"text":"hi"}}')
 * if (parsed.ok) dispatch(parsed.request)
 * else write(parsed.response)
 * ```
 */
export function parseRequestLine(line: string): ParsedRequestLine {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return { ok: false, response: errorResponse(null, JsonRpcErrorCode.ParseError, 'Parse error') }
  }

  const invalid = (id: JsonRpcId, why: string): ParsedRequestLine => ({
    ok: false,
    response: errorResponse(id, JsonRpcErrorCode.InvalidRequest, `Invalid request: ${why}`),
  })

  if (Array.isArray(value)) {
    return invalid(null, 'batch requests are not supported')
  }
  if (!isRecord(value)) {
    return invalid(null, 'expected a JSON object')
  }
  if (Object.hasOwn(value, 'id') && !isId(value.id)) {
    return invalid(null, 'id must be a string, a number or null')
  }
  const id = Object.hasOwn(value, 'id') ? (value.id as JsonRpcId) : null
  if (value.jsonrpc !== '2.0') {
    return invalid(id, 'jsonrpc must be "2.0"')
  }
  if (typeof value.method !== 'string') {
    return invalid(id, 'method must be a string')
  }
  const params = value.params
  if (params !== undefined && !isRecord(params) && !Array.isArray(params)) {
    return invalid(id, 'params must be an object or an array')
  }

  const request: JsonRpcRequest = { jsonrpc: '2.0', method: value.method }
  if (params !== undefined) {
    request.params = params
  }
  if (Object.hasOwn(value, 'id')) {
    request.id = id
  }
  return { ok: true, request }
}

/**
 * A success response line. An `undefined` result is sent as `null`, since a response must carry
 * `result`.
 */
export function resultResponse(id: JsonRpcId, result: unknown): string {
  return toLine({ jsonrpc: '2.0', id, result: result === undefined ? null : result })
}

/**
 * An error response line.
 *
 * @example
 * ```ts
 * errorResponse(7, JsonRpcErrorCode.ApplicationError, 'Not a member', { name: 'AccessDenied' })
 * // → '{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"Not a member","data":{"name":"AccessDenied"}}}'
 * ```
 */
export function errorResponse(id: JsonRpcId, code: number, message: string, data?: unknown): string {
  const error: JsonRpcErrorObject = data === undefined ? { code, message } : { code, message, data }
  return toLine({ jsonrpc: '2.0', id, error })
}

/**
 * A notification line from server to client, for events (`message:receive`, `member:add`, ...).
 * Notifications have no id and expect no answer.
 */
export function notification(method: string, params?: JsonRpcParams): string {
  return toLine(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params })
}

/**
 * Map a thrown value to the error object a client should see.
 *
 * An error whose `rpcName` is a non-empty string, whose class has a JSON-RPC name in the CLI's error
 * table (`AccessDeniedError`, `UnknownMemberError`, ...; see `ERROR_TABLE`), or whose `name` already is
 * an {@link ApplicationErrorName}, becomes an application error with its message as the table shows it
 * and `data.name`; `InvalidParams` uses code -32602, the others -32000. An error that lists the peers a
 * name may mean (a `candidates` array of `{ peerId, name }`) sends it as `data.candidates`, so the client
 * can go on by peer id without parsing the message. Anything else is a bug:
 * -32603 with a generic message, so internals do not leak to the client.
 *
 * @returns the error object, and whether it was expected (`false` for internal errors)
 */
export function toErrorObject(err: unknown): { error: JsonRpcErrorObject; expected: boolean } {
  if (err instanceof Error || isRecord(err)) {
    const { rpcName, name, message, candidates } = err as {
      rpcName?: unknown
      name?: unknown
      message?: unknown
      candidates?: unknown
    }
    const presentation = presentationOf(err)
    const reported =
      typeof rpcName === 'string' && rpcName !== ''
        ? rpcName
        : (presentation?.rpc ?? (isApplicationErrorName(name) ? name : undefined))
    if (reported !== undefined) {
      const code =
        reported === 'InvalidParams' ? JsonRpcErrorCode.InvalidParams : JsonRpcErrorCode.ApplicationError
      const shown = typeof message === 'string' ? (presentation?.message?.(message) ?? message) : undefined
      const text = shown !== undefined && shown !== '' ? shown : reported
      const data = Array.isArray(candidates)
        ? { name: reported, candidates: candidates.map(candidateOf) }
        : { name: reported }
      return { error: { code, message: text, data }, expected: true }
    }
  }
  return { error: { code: JsonRpcErrorCode.InternalError, message: 'Internal error' }, expected: false }
}

/** A method implementation: receives the request's named params (`{}` when absent). */
export type JsonRpcMethod = (params: Record<string, unknown>) => unknown

/** The methods a {@link JsonRpcServer} serves, by name. */
export type JsonRpcMethods = Readonly<Record<string, JsonRpcMethod>>

/** Options for {@link createJsonRpcServer}. */
export interface JsonRpcServerInit {
  /** The methods to serve. Only own properties count, so `toString` or `__proto__` are never methods. */
  methods: JsonRpcMethods
  /** Sends one line (without the trailing newline) to the client. */
  write: (line: string) => void
  /**
   * Told about unexpected failures: a handler that threw something unknown (answered with -32603),
   * a result that could not be serialised, or `write` itself throwing. The server never rethrows.
   */
  onError?: (err: unknown, request: JsonRpcRequest | undefined) => void
}

/** Dispatches JSON-RPC lines to a method table. Create one with {@link createJsonRpcServer}. */
export interface JsonRpcServer {
  /**
   * Handle one received line. Blank lines are ignored. The response (if the request has an id) is
   * written when the handler settles, so concurrent requests may be answered out of order; clients
   * match responses by id.
   *
   * @returns a promise that settles once the response is written; it never rejects
   */
  handleLine(line: string): Promise<void>
  /** How many requests are still running. */
  readonly pending: number
  /** Resolves when no request is running, e.g. before closing the transport on shutdown. */
  drain(): Promise<void>
}

/**
 * Serve a method table over JSON-RPC 2.0 lines.
 *
 * Named params must be an object (an array gets -32602); absent params reach the handler as `{}`.
 * Errors thrown by handlers become error responses (see {@link toErrorObject}); nothing a client
 * sends can make the server throw. Notifications (no `id`) run but are never answered, not even
 * with an error, as the spec requires.
 *
 * @example
 * ```ts
 * const server = createJsonRpcServer({
 *   methods: { send: async ({ text }) => chat.send(String(text)) },
 *   write: (line) => process.stdout.write(`${line}\n`),
 * })
 * readline.createInterface({ input: process.stdin }).on('line', (line) => void server.handleLine(line))
 * ```
 */
export function createJsonRpcServer(init: JsonRpcServerInit): JsonRpcServer {
  const { methods, write, onError } = init
  const running = new Set<Promise<void>>()

  const report = (err: unknown, request: JsonRpcRequest | undefined): void => {
    try {
      onError?.(err, request)
    } catch {
      // A failing logger must not take the server down with it.
    }
  }

  const send = (line: string, request: JsonRpcRequest | undefined): void => {
    try {
      write(line)
    } catch (err) {
      report(err, request)
    }
  }

  const answer = (request: JsonRpcRequest, build: () => string): void => {
    if (request.id === undefined) {
      return
    }
    let line: string
    try {
      line = build()
    } catch (err) {
      // e.g. a result holding a BigInt or a cycle
      report(err, request)
      line = errorResponse(request.id, JsonRpcErrorCode.InternalError, 'Internal error')
    }
    send(line, request)
  }

  const dispatch = async (request: JsonRpcRequest): Promise<void> => {
    const handler = Object.hasOwn(methods, request.method) ? methods[request.method] : undefined
    if (handler === undefined) {
      answer(request, () =>
        errorResponse(
          request.id ?? null,
          JsonRpcErrorCode.MethodNotFound,
          `Method not found: ${request.method}`,
        ),
      )
      return
    }
    if (request.params !== undefined && !isRecord(request.params)) {
      answer(request, () =>
        errorResponse(request.id ?? null, JsonRpcErrorCode.InvalidParams, 'params must be an object', {
          name: 'InvalidParams',
        }),
      )
      return
    }

    let result: unknown
    try {
      result = await handler(request.params ?? {})
    } catch (err) {
      const { error, expected } = toErrorObject(err)
      if (!expected) {
        report(err, request)
      }
      answer(request, () => errorResponse(request.id ?? null, error.code, error.message, error.data))
      return
    }
    answer(request, () => resultResponse(request.id ?? null, result))
  }

  return {
    handleLine(line: string): Promise<void> {
      if (line.trim() === '') {
        return Promise.resolve()
      }
      const parsed = parseRequestLine(line)
      if (!parsed.ok) {
        send(parsed.response, undefined)
        return Promise.resolve()
      }
      const task = dispatch(parsed.request).catch((err: unknown) => report(err, parsed.request))
      running.add(task)
      void task.finally(() => running.delete(task))
      return task
    },

    get pending(): number {
      return running.size
    },

    async drain(): Promise<void> {
      while (running.size > 0) {
        await Promise.all(running)
      }
    },
  }
}
