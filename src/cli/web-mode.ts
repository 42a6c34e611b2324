import {
  createToken,
  createWebServer,
  isLoopbackHost,
  type WebAddress,
  type WebServer,
} from '../web/index.js'
import type { CliIO } from './io.js'
import { forwardNotifications, jsonRpcMethods } from './json-mode.js'
import { createJsonRpcServer, notification } from './json-rpc.js'
import type { ChatSession, StartMode } from './session.js'

/** Where the session keeps the web interface's last port, in the node's database. */
const WEB_PORT_KEY = 'webPort'

/** Options of {@link createWebMode}. */
export interface WebModeInit {
  /** `--web`'s address. */
  address: WebAddress
  /** Whether stdout carries JSON-RPC (`--json`): then the address is printed on stderr. */
  json: boolean
  /** Where the built client is; default: next to the web server module. */
  assetsDir?: string
}

/**
 * `--web`: the web interface beside the terminal UI or `--json`. It serves the same JSON-RPC methods
 * (`jsonRpcMethods`) and notifications (`forwardNotifications`) over a WebSocket, so the two are one API.
 *
 * @param inner - builds the mode it runs beside, from the I/O it should use: a `quit` from a page stops
 * the session as SIGTERM would
 */
export function createWebMode(init: WebModeInit, io: CliIO, inner: (io: CliIO) => StartMode): StartMode {
  const stopHandlers = new Set<(signal: 'SIGINT' | 'SIGTERM') => void>()
  const innerIO: CliIO = {
    ...io,
    onSignal: (handler) => {
      stopHandlers.add(handler)
      const remove = io.onSignal(handler)
      return () => {
        stopHandlers.delete(handler)
        remove()
      }
    },
  }
  const mode = inner(innerIO)
  const requestStop = (): void => {
    for (const handler of [...stopHandlers]) handler('SIGTERM')
  }
  /** Notification lines raised before the server listens; `undefined` once it does. */
  let early: string[] | undefined = []
  let server: WebServer | undefined

  return {
    attach(session) {
      mode.attach(session)
      forwardNotifications(session.node, (method, params) => {
        const line = notification(method, params as Record<string, unknown>)
        if (server === undefined) early?.push(line)
        else server.broadcast(line)
      })
    },

    async run(session) {
      try {
        server = await listen(session, init, () => requestStop(), io)
      } catch (err) {
        await session.node.stop()
        throw err
      }
      const say = init.json ? io.stderr : io.stdout
      if (!isLoopbackHost(server.host)) {
        io.stderr(
          `p2pchat: warning: the web interface listens on ${server.host}, reachable from other machines over plain HTTP; anyone who sees the address below can read and write as you\n`,
        )
      }
      say(`Open ${server.url}\n`)
      for (const line of early ?? []) server.broadcast(line)
      early = undefined
      try {
        return await mode.run(session)
      } finally {
        await server.close()
      }
    },
  }
}

/** Listens on the address asked for; without a port, on the last run's port if it is free, else any. */
async function listen(
  session: ChatSession,
  init: WebModeInit,
  quit: () => void,
  io: CliIO,
): Promise<WebServer> {
  const { store } = session.node
  const web = (port: number): Promise<WebServer> =>
    createWebServer(
      {
        host: init.address.host,
        token: createToken(),
        ...(init.assetsDir === undefined ? {} : { assetsDir: init.assetsDir }),
        connect: (send) =>
          createJsonRpcServer({
            methods: jsonRpcMethods(session, quit),
            write: send,
            onError: (err) => io.stderr(`p2pchat: internal error: ${(err as Error).stack ?? String(err)}\n`),
          }),
      },
      port,
    )
  let server: WebServer
  if (init.address.port !== undefined) {
    server = await web(init.address.port)
  } else {
    const last = Number(store.getMeta(WEB_PORT_KEY))
    try {
      server = await web(Number.isSafeInteger(last) && last > 0 && last < 65536 ? last : 0)
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EADDRINUSE' && (err as { code?: unknown }).code !== 'EACCES')
        throw err
      server = await web(0)
    }
  }
  store.setMeta(WEB_PORT_KEY, String(server.port))
  return server
}
