import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { type ComponentLogger, defaultLogger } from '@libp2p/logger'
import { type WebSocket, WebSocketServer } from 'ws'
import { hostAllowed, originAllowed, tokenMatches } from './access.js'
import { hostPort } from './address.js'
import { createAssets, DEFAULT_ASSETS_DIR, SECURITY_HEADERS } from './assets.js'

/** The path, under the token, of the WebSocket that carries JSON-RPC. */
export const RPC_PATH = 'rpc'

/** Largest WebSocket message accepted: a request line as `--json` takes it (64 KiB of text, escaped). */
export const MAX_MESSAGE_BYTES = 1024 * 1024

/** A client that reads no faster than this much is waiting to be sent is disconnected. */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024

/** Most WebSockets open at once; a page uses one. */
export const MAX_CONNECTIONS = 16

/** Notifications kept for a page opened later (join requests and locked messages have no method). */
export const REPLAY_LINES = 256
/** ... and at most this many bytes of them. */
export const REPLAY_BYTES = 4 * 1024 * 1024

/** One WebSocket's side of JSON-RPC: takes the lines the page sends. */
export interface WebRpcConnection {
  handleLine(line: string): unknown
}

/** Options of {@link createWebServer}. */
export interface WebServerInit {
  /** IP literal or `localhost` to bind. */
  host: string
  /** The token every request must carry (see `createToken`). */
  token: string
  /**
   * Serves a new WebSocket: gets the function that sends it one line, returns what handles the lines
   * it sends. Both carry JSON-RPC 2.0, one message each, as `--json` does on stdin/stdout.
   */
  connect: (send: (line: string) => void) => WebRpcConnection
  /** Where `app.js` and `style.css` are; default: `assets/` next to this module (built by `npm run build`). */
  assetsDir?: string
  /** Default: `@libp2p/logger`'s, under `p2pchat:web`. */
  logger?: ComponentLogger
}

/** A running web interface. */
export interface WebServer {
  /** The address and port it is bound to. */
  readonly host: string
  readonly port: number
  /** The address to open: `http://<host>:<port>/<token>/`. */
  readonly url: string
  /** Sends a notification line to every open page, and keeps it for pages opened later. */
  broadcast(line: string): void
  /** Closes every WebSocket and stops listening. Idempotent. */
  close(): Promise<void>
}

/**
 * The web interface: the page and its files, and a WebSocket at `/<token>/rpc` carrying the same
 * JSON-RPC 2.0 requests, responses and notifications as `p2pchat start --json`.
 *
 * The token is the first segment of every path, so each request the page makes carries it without
 * cookies or script. Every request and upgrade is checked, in this order: `Host` (421), `Origin`
 * (403; required on the upgrade), token (401, compared in constant time); only then is anything
 * served. Every response carries a strict Content-Security-Policy (see `assets.ts`).
 *
 * @param port - 0 for a free one
 * @example
 * ```ts
 * const web = await createWebServer({ host: '127.0.0.1', token: createToken(), connect }, 0)
 * console.log(`Open ${web.url}`)
 * ```
 */
export async function createWebServer(init: WebServerInit, port: number): Promise<WebServer> {
  const log = (init.logger ?? defaultLogger()).forComponent('p2pchat:web')
  const assets = createAssets(init.assetsDir ?? DEFAULT_ASSETS_DIR)
  const sockets = new Set<WebSocket>()
  const replay = createReplay()
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false })
  const http = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 })
  let bound = { host: init.host, port }

  const check = (req: IncomingMessage, upgrade: boolean): Refusal | { resource: string } => {
    const host = req.headers.host
    if (!hostAllowed(host, bound)) return refusal(421, 'wrong Host')
    if (!originAllowed(req.headers.origin, host as string, upgrade)) return refusal(403, 'wrong Origin')
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const [, token = '', ...rest] = path.split('/')
    if (!tokenMatches(token, init.token)) return refusal(401, 'no valid token')
    if (rest.length === 0) return { resource: '/' } // `/<token>`: the page wants the trailing slash
    return { resource: rest.join('/') }
  }

  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const verdict = check(req, false)
    if ('status' in verdict) {
      log('refused %s %s: %s', req.method, sanitize(req.url), verdict.reason)
      return respond(res, verdict.status, verdict.reason)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return respond(res, 405, 'method not allowed')
    if (verdict.resource === '/') {
      res.writeHead(308, {
        ...SECURITY_HEADERS,
        Location: `${new URL(req.url ?? '/', 'http://x').pathname}/`,
      })
      return res.end()
    }
    if (verdict.resource === RPC_PATH) return respond(res, 426, 'WebSocket only')
    void assets(verdict.resource).then((asset) => {
      if (asset === undefined) return respond(res, 404, 'not found')
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': asset.type,
        'Content-Length': asset.body.length,
      })
      res.end(req.method === 'HEAD' ? undefined : asset.body)
    })
  })

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const verdict = check(req, true)
    const refused = (status: number, reason: string): void => {
      log('refused WebSocket %s: %s', sanitize(req.url), reason)
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    }
    if ('status' in verdict) return refused(verdict.status, verdict.reason)
    if (verdict.resource !== RPC_PATH) return refused(404, 'not found')
    if (sockets.size >= MAX_CONNECTIONS) return refused(503, 'too many connections')
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws))
  })

  const serve = (ws: WebSocket): void => {
    sockets.add(ws)
    const send = (line: string): void => {
      if (ws.readyState !== ws.OPEN) return
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        log('closing a page that reads too slowly')
        ws.terminate()
        return
      }
      ws.send(line)
    }
    const rpc = init.connect(send)
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text only')
      void rpc.handleLine(data.toString('utf8'))
    })
    ws.on('error', (err) => log('WebSocket error: %s', err.message))
    ws.on('close', () => sockets.delete(ws))
    for (const line of replay.lines()) send(line)
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen({ host: init.host, port, exclusive: true }, () => {
      http.off('error', reject)
      resolve()
    })
  })
  const address = http.address()
  bound = { host: init.host, port: typeof address === 'object' && address !== null ? address.port : port }
  http.on('error', (err) => log.error('web server error: %s', err.message))
  log('listening on %s', hostPort(bound.host, bound.port))

  let closing: Promise<void> | undefined
  return {
    host: bound.host,
    port: bound.port,
    // a wildcard address is no place to browse to: the page is opened on loopback
    url: `http://${hostPort(WILDCARD[bound.host] ?? bound.host, bound.port)}/${init.token}/`,
    broadcast(line) {
      replay.add(line)
      for (const ws of sockets)
        if (ws.readyState === ws.OPEN && ws.bufferedAmount <= MAX_BUFFERED_BYTES) ws.send(line)
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const ws of sockets) ws.close(1001, 'p2pchat is stopping')
        http.close(() => resolve())
        http.closeAllConnections()
        wss.close()
        // sockets that do not answer the close handshake
        setTimeout(() => {
          for (const ws of sockets) ws.terminate()
        }, 1000).unref()
      })
      return closing
    },
  }
}

/** The loopback address to open for a server bound to all interfaces. */
const WILDCARD: Readonly<Record<string, string>> = { '0.0.0.0': '127.0.0.1', '::': '::1' }

interface Refusal {
  status: number
  reason: string
}

function refusal(status: number, reason: string): Refusal {
  return { status, reason }
}

function respond(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' })
  res.end(`${text}\n`)
}

/** A request path for the log, without the token. */
function sanitize(url: string | undefined): string {
  return (url ?? '').replace(/^\/[^/]*/, '/<token>').slice(0, 200)
}

/** The last notifications, bounded in count and bytes. */
function createReplay(): { add(line: string): void; lines(): readonly string[] } {
  const kept: string[] = []
  let bytes = 0
  return {
    add(line) {
      kept.push(line)
      bytes += line.length
      while (kept.length > REPLAY_LINES || bytes > REPLAY_BYTES) bytes -= kept.shift()?.length ?? 0
    },
    lines: () => kept,
  }
}
