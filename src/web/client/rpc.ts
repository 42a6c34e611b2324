/**
 * The page's side of the JSON-RPC 2.0 WebSocket: requests matched to responses by id, notifications to
 * one handler, and a reconnect after the connection drops.
 */

/** An error response, as the server sent it: `data.name` says why (`AccessDenied`, ...). */
export class RpcError extends Error {
  override readonly name = 'RpcError'
  readonly code: number
  readonly data: { name?: string; candidates?: Array<{ peerId: string; name: string }> } | undefined

  constructor(code: number, message: string, data?: RpcError['data']) {
    super(message)
    this.code = code
    this.data = data
  }
}

/** JSON-RPC 2.0's code for an unknown method. */
export const METHOD_NOT_FOUND = -32601

/** What the page does with the connection. */
export interface RpcHandlers {
  /** A notification arrived. */
  notify(method: string, params: Record<string, unknown>): void
  /** The connection opened (again); state fetched before may be stale. */
  open(): void
  /** The connection closed; it is retried. */
  closed(): void
}

/** A JSON-RPC client over one WebSocket at a time. */
export interface Rpc {
  call<T = Record<string, unknown>>(method: string, params?: Record<string, unknown>): Promise<T>
}

/** Connects to `url`, and again a second after each drop. */
export function connectRpc(url: string, handlers: RpcHandlers): Rpc {
  let ws: WebSocket | undefined
  let next = 1
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>()

  const open = (): void => {
    const socket = new WebSocket(url)
    ws = socket
    socket.addEventListener('open', () => handlers.open())
    socket.addEventListener('message', (event) => {
      let message: Record<string, unknown>
      try {
        message = JSON.parse(String(event.data)) as Record<string, unknown>
      } catch {
        return
      }
      if (typeof message.method === 'string' && message.id === undefined) {
        const params = message.params
        handlers.notify(
          message.method,
          typeof params === 'object' && params !== null ? (params as never) : {},
        )
        return
      }
      const pending = typeof message.id === 'number' ? waiting.get(message.id) : undefined
      if (pending === undefined) return
      waiting.delete(message.id as number)
      const error = message.error as { code: number; message: string; data?: RpcError['data'] } | undefined
      if (error !== undefined) pending.reject(new RpcError(error.code, error.message, error.data))
      else pending.resolve(message.result)
    })
    socket.addEventListener('close', () => {
      for (const pending of waiting.values()) pending.reject(new RpcError(0, 'Disconnected from p2pchat'))
      waiting.clear()
      handlers.closed()
      setTimeout(open, 1000)
    })
  }
  open()

  return {
    call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
      if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
        return Promise.reject(new RpcError(0, 'Not connected to p2pchat'))
      }
      const id = next++
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }))
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject })
      })
    },
  }
}
