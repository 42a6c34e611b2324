/**
 * The local web interface of `p2pchat start --web`: an HTTP server for the page and a WebSocket that
 * carries the JSON-RPC API of `--json`, behind a random token, `Host` and `Origin` checks and a strict
 * Content-Security-Policy. The client is in `client/`, bundled into `assets/` at build time.
 *
 * @packageDocumentation
 */
export { createToken, hostAllowed, originAllowed, tokenMatches } from './access.js'
export { DEFAULT_WEB_HOST, hostPort, isLoopbackHost, parseWebAddress, type WebAddress } from './address.js'
export { CONTENT_SECURITY_POLICY, DEFAULT_ASSETS_DIR, SECURITY_HEADERS } from './assets.js'
export { InvalidWebAddressError } from './errors.js'
export {
  createWebServer,
  MAX_CONNECTIONS,
  MAX_MESSAGE_BYTES,
  RPC_PATH,
  type WebRpcConnection,
  type WebServer,
  type WebServerInit,
} from './server.js'
