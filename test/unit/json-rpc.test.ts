import { describe, expect, it } from 'vitest'
import { InvalidParamsError } from '../../src/cli/errors.js'
import {
  createJsonRpcServer,
  errorResponse,
  JsonRpcErrorCode,
  type JsonRpcMethods,
  type JsonRpcRequest,
  notification,
  parseRequestLine,
  resultResponse,
  toErrorObject,
} from '../../src/cli/json-rpc.js'
import { AmbiguousMemberError, UnverifiedNameError } from '../../src/node/errors.js'

/** The error response a rejected line produced, parsed. */
function rejection(line: string): { id: unknown; error: { code: number; message: string } } {
  const parsed = parseRequestLine(line)
  if (parsed.ok) {
    throw new Error(`expected ${line} to be rejected`)
  }
  expect(parsed.response).not.toContain('\n')
  const response = JSON.parse(parsed.response)
  expect(response.jsonrpc).toBe('2.0')
  expect(response).not.toHaveProperty('result')
  return response
}

describe('parseRequestLine', () => {
  it('accepts a request with named params', () => {
    expect(parseRequestLine('{"jsonrpc":"2.0","id":1,"method":"send","params":{"text":"hi"}}')).toEqual({
      ok: true,
      request: { jsonrpc: '2.0', id: 1, method: 'send', params: { text: 'hi' } },
    })
  })

  it('tells a notification (no id) from a request with id null', () => {
    const note = parseRequestLine('{"jsonrpc":"2.0","method":"ping"}')
    expect(note).toEqual({ ok: true, request: { jsonrpc: '2.0', method: 'ping' } })
    expect(note.ok && 'id' in note.request).toBe(false)
    const nullId = parseRequestLine('{"jsonrpc":"2.0","method":"ping","id":null}')
    expect(nullId).toEqual({ ok: true, request: { jsonrpc: '2.0', method: 'ping', id: null } })
  })

  it('drops members that are not part of a request', () => {
    const parsed = parseRequestLine('{"jsonrpc":"2.0","id":"a","method":"m","extra":true}')
    expect(parsed).toEqual({ ok: true, request: { jsonrpc: '2.0', id: 'a', method: 'm' } })
  })

  it('answers invalid JSON with -32700 and id null', () => {
    expect(rejection('{"jsonrpc":"2.0","id":1,')).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32700, message: 'Parse error' },
    })
    expect(rejection('').error.code).toBe(-32700)
  })

  it('answers a batch with -32600', () => {
    expect(rejection('[{"jsonrpc":"2.0","id":1,"method":"m"}]')).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'Invalid request: batch requests are not supported' },
    })
  })

  it.each([
    ['a number', '1', null, 'expected a JSON object'],
    ['null', 'null', null, 'expected a JSON object'],
    [
      'a bad id',
      '{"jsonrpc":"2.0","id":{"x":1},"method":"m"}',
      null,
      'id must be a string, a number or null',
    ],
    ['a wrong version', '{"jsonrpc":"1.0","id":7,"method":"m"}', 7, 'jsonrpc must be "2.0"'],
    ['no version', '{"id":"q","method":"m"}', 'q', 'jsonrpc must be "2.0"'],
    ['no method', '{"jsonrpc":"2.0","id":3}', 3, 'method must be a string'],
    ['a numeric method', '{"jsonrpc":"2.0","id":3,"method":5}', 3, 'method must be a string'],
    [
      'scalar params',
      '{"jsonrpc":"2.0","id":4,"method":"m","params":"x"}',
      4,
      'params must be an object or an array',
    ],
    [
      'null params',
      '{"jsonrpc":"2.0","id":4,"method":"m","params":null}',
      4,
      'params must be an object or an array',
    ],
  ])('answers %s with -32600, keeping a readable id', (_, line, id, why) => {
    expect(rejection(line)).toEqual({
      jsonrpc: '2.0',
      id,
      error: { code: -32600, message: `Invalid request: ${why}` },
    })
  })
})

describe('response builders', () => {
  it('builds result, error and notification lines', () => {
    expect(resultResponse(1, { ok: true })).toBe('{"jsonrpc":"2.0","id":1,"result":{"ok":true}}')
    expect(resultResponse('x', undefined)).toBe('{"jsonrpc":"2.0","id":"x","result":null}')
    expect(errorResponse(null, -32601, 'Method not found')).toBe(
      '{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Method not found"}}',
    )
    expect(errorResponse(2, JsonRpcErrorCode.ApplicationError, 'no', { name: 'AccessDenied' })).toBe(
      '{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"no","data":{"name":"AccessDenied"}}}',
    )
    expect(notification('message:receive', { text: 'hi' })).toBe(
      '{"jsonrpc":"2.0","method":"message:receive","params":{"text":"hi"}}',
    )
    expect(notification('tick')).toBe('{"jsonrpc":"2.0","method":"tick"}')
  })

  it('never emits a line break inside a line, whatever the payload', () => {
    const nasty = 'a\nb\r\nc\u2028d\u2029e\u0085f'
    const result = resultResponse(1, { text: nasty })
    const error = errorResponse(1, -32000, nasty)
    const note = notification('m', { text: nasty })
    for (const line of [result, error, note]) {
      expect(line).not.toMatch(/[\n\r\u2028\u2029]/)
    }
    // ...and the text survives the round trip
    expect(JSON.parse(result).result.text).toBe(nasty)
    expect(JSON.parse(error).error.message).toBe(nasty)
    expect(JSON.parse(note).params.text).toBe(nasty)
  })

  it('defines the standard codes', () => {
    expect(JsonRpcErrorCode).toEqual({
      ParseError: -32700,
      InvalidRequest: -32600,
      MethodNotFound: -32601,
      InvalidParams: -32602,
      InternalError: -32603,
      ApplicationError: -32000,
    })
  })
})

describe('toErrorObject', () => {
  class AccessDeniedError extends Error {
    override name = 'AccessDeniedError'
  }

  it('maps known error names to application errors with data.name', () => {
    expect(toErrorObject(new AccessDeniedError('bob is not a member'))).toEqual({
      error: { code: -32000, message: 'bob is not a member', data: { name: 'AccessDenied' } },
      expected: true,
    })
    for (const [name, reported] of [
      ['UnknownMemberError', 'UnknownMember'],
      ['AmbiguousMemberError', 'AmbiguousMember'],
      ['NotInGroupError', 'NotInGroup'],
      ['NotInGroup', 'NotInGroup'],
    ]) {
      const err = Object.assign(new Error('m'), { name })
      expect(toErrorObject(err).error).toEqual({ code: -32000, message: 'm', data: { name: reported } })
    }
  })

  it('sends the peers a name may mean as data.candidates, with only their peer id and name', () => {
    const carol = { peerId: '12D3KooWcarol', name: 'carol' }
    const candidates = [carol]
    // a field beyond the two promised ones is not sent
    const unverified = new UnverifiedNameError('carol', [
      { ...carol, addrs: ['/ip4/10.0.0.1'] } as typeof carol,
    ])
    expect(toErrorObject(unverified).error).toEqual({
      code: -32000,
      message: unverified.message,
      data: { name: 'UnverifiedName', candidates },
    })
    const ambiguous = new AmbiguousMemberError('two carols', [
      ...candidates,
      { peerId: '12D3KooWo', name: 'carol' },
    ])
    expect(toErrorObject(ambiguous).error.data).toEqual({
      name: 'AmbiguousMember',
      candidates: ambiguous.candidates,
    })
  })

  it('prefers rpcName, and reports InvalidParams as -32602', () => {
    const custom = Object.assign(new Error('two bobs'), { rpcName: 'AmbiguousMember' })
    expect(toErrorObject(custom).error).toEqual({
      code: -32000,
      message: 'two bobs',
      data: { name: 'AmbiguousMember' },
    })
    expect(toErrorObject(new InvalidParamsError('text must be a string')).error).toEqual({
      code: -32602,
      message: 'text must be a string',
      data: { name: 'InvalidParams' },
    })
  })

  it('hides the details of unexpected errors', () => {
    for (const thrown of [
      new TypeError('secret path /home/x'),
      'a string',
      undefined,
      { name: 'Whatever' },
    ]) {
      expect(toErrorObject(thrown)).toEqual({
        error: { code: -32603, message: 'Internal error' },
        expected: false,
      })
    }
  })
})

/** A server whose output lines are collected, parsed. */
function serve(methods: JsonRpcMethods) {
  const lines: string[] = []
  const errors: Array<{ err: unknown; request: JsonRpcRequest | undefined }> = []
  const server = createJsonRpcServer({
    methods,
    write: (line) => lines.push(line),
    onError: (err, request) => errors.push({ err, request }),
  })
  const responses = () => lines.map((line) => JSON.parse(line))
  return { server, lines, responses, errors }
}

const request = (id: unknown, method: string, params?: unknown): string =>
  JSON.stringify({ jsonrpc: '2.0', id, method, params })

describe('createJsonRpcServer', () => {
  it('calls the method with its params and writes the result', async () => {
    const { server, responses } = serve({
      add: async (params) => (params.a as number) + (params.b as number),
    })
    await server.handleLine(request(1, 'add', { a: 2, b: 3 }))
    expect(responses()).toEqual([{ jsonrpc: '2.0', id: 1, result: 5 }])
  })

  it('passes {} when params are absent, and answers undefined with null', async () => {
    const seen: unknown[] = []
    const { server, responses } = serve({
      peek: async (params) => {
        seen.push(params)
      },
    })
    await server.handleLine('{"jsonrpc":"2.0","id":"p","method":"peek"}')
    expect(seen).toEqual([{}])
    expect(responses()).toEqual([{ jsonrpc: '2.0', id: 'p', result: null }])
  })

  it('answers an unknown method with -32601, including inherited names', async () => {
    const { server, responses } = serve({})
    await server.handleLine(request(1, 'nope'))
    await server.handleLine(request(2, 'toString'))
    await server.handleLine(request(3, '__proto__'))
    expect(responses()).toEqual([
      { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'Method not found: nope' } },
      { jsonrpc: '2.0', id: 2, error: { code: -32601, message: 'Method not found: toString' } },
      { jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'Method not found: __proto__' } },
    ])
  })

  it('rejects positional params with -32602 without calling the method', async () => {
    let called = false
    const { server, responses } = serve({
      send: async () => {
        called = true
      },
    })
    await server.handleLine(request(9, 'send', ['hi']))
    expect(called).toBe(false)
    expect(responses()).toEqual([
      {
        jsonrpc: '2.0',
        id: 9,
        error: { code: -32602, message: 'params must be an object', data: { name: 'InvalidParams' } },
      },
    ])
  })

  it('writes the error response for malformed lines and ignores blank ones', async () => {
    const { server, responses } = serve({})
    await server.handleLine('not json')
    await server.handleLine('   ')
    await server.handleLine('')
    await server.handleLine('[]')
    expect(responses().map((r) => [r.id, r.error.code])).toEqual([
      [null, -32700],
      [null, -32600],
    ])
  })

  it('reports application errors with data.name and the error message', async () => {
    class UnknownMemberError extends Error {
      override name = 'UnknownMemberError'
    }
    const { server, responses, errors } = serve({
      remove: async (params) => {
        throw new UnknownMemberError(`no member called ${String(params.member)}`)
      },
      send: () => {
        // thrown synchronously, not from an async function
        throw new InvalidParamsError('params.text must be a string')
      },
    })
    await server.handleLine(request(1, 'remove', { member: 'zed' }))
    await server.handleLine(request(2, 'send', {}))
    expect(responses()).toEqual([
      {
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32000, message: 'no member called zed', data: { name: 'UnknownMember' } },
      },
      {
        jsonrpc: '2.0',
        id: 2,
        error: { code: -32602, message: 'params.text must be a string', data: { name: 'InvalidParams' } },
      },
    ])
    expect(errors).toEqual([])
  })

  it('turns an unexpected exception into -32603, reports it, and keeps serving', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')")
    const { server, responses, errors } = serve({
      broken: async () => {
        throw bug
      },
      ok: async () => 'fine',
    })
    await server.handleLine(request(1, 'broken'))
    await server.handleLine(request(2, 'ok'))
    expect(responses()).toEqual([
      { jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'Internal error' } },
      { jsonrpc: '2.0', id: 2, result: 'fine' },
    ])
    expect(errors).toHaveLength(1)
    expect(errors[0]?.err).toBe(bug)
    expect(errors[0]?.request?.method).toBe('broken')
  })

  it('answers -32603 when a result cannot be serialised', async () => {
    const { server, responses, errors } = serve({ big: async () => ({ n: 1n }) })
    await server.handleLine(request(1, 'big'))
    expect(responses()).toEqual([
      { jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'Internal error' } },
    ])
    expect(errors).toHaveLength(1)
  })

  it('runs notifications without answering them, even when they fail', async () => {
    const calls: string[] = []
    const { server, lines } = serve({
      mark: async () => {
        calls.push('mark')
      },
      fail: async () => {
        throw new Error('boom')
      },
    })
    await server.handleLine('{"jsonrpc":"2.0","method":"mark"}')
    await server.handleLine('{"jsonrpc":"2.0","method":"fail"}')
    await server.handleLine('{"jsonrpc":"2.0","method":"missing"}')
    expect(calls).toEqual(['mark'])
    expect(lines).toEqual([])
  })

  it('answers each request when its handler finishes, not in arrival order', async () => {
    const gates = new Map<string, () => void>()
    const { server, responses } = serve({
      wait: (params) =>
        new Promise((resolve) => {
          gates.set(String(params.key), () => resolve(params.key))
        }),
    })
    const slow = server.handleLine(request(1, 'wait', { key: 'slow' }))
    const fast = server.handleLine(request(2, 'wait', { key: 'fast' }))
    expect(server.pending).toBe(2)
    gates.get('fast')?.()
    await fast
    expect(responses().map((r) => r.id)).toEqual([2])
    gates.get('slow')?.()
    await slow
    expect(responses().map((r) => r.id)).toEqual([2, 1])
    expect(server.pending).toBe(0)
  })

  it('drain() waits for requests still running', async () => {
    let release: () => void = () => {}
    const { server, responses } = serve({
      hold: () =>
        new Promise((resolve) => {
          release = () => resolve('done')
        }),
    })
    void server.handleLine(request(1, 'hold'))
    let drained = false
    const draining = server.drain().then(() => {
      drained = true
    })
    await Promise.resolve()
    expect(drained).toBe(false)
    release()
    await draining
    expect(drained).toBe(true)
    expect(responses()).toEqual([{ jsonrpc: '2.0', id: 1, result: 'done' }])
  })

  it('survives a writer that throws, reporting the failure', async () => {
    const errors: unknown[] = []
    const server = createJsonRpcServer({
      methods: { ok: async () => 1 },
      write: () => {
        throw new Error('EPIPE')
      },
      onError: (err) => errors.push(err),
    })
    await expect(server.handleLine(request(1, 'ok'))).resolves.toBeUndefined()
    await expect(server.handleLine('garbage')).resolves.toBeUndefined()
    expect(errors.map((e) => (e as Error).message)).toEqual(['EPIPE', 'EPIPE'])
  })
})
