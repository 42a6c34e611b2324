/**
 * Who may use the web interface: pure checks on a request's token and headers. The page is a door into
 * the identity, so every HTTP request and the WebSocket upgrade must carry the random token printed at
 * start, and come with a `Host` (and, from a browser, an `Origin`) that names this server:
 *
 * - the token keeps out anything that did not read the terminal, including other local users' browsers;
 * - the `Host` check defeats DNS rebinding: a page of evil.example whose name is made to resolve to
 *   127.0.0.1 sends `Host: evil.example:<port>`, and only IP literals and `localhost` are accepted;
 * - the `Origin` check defeats cross-site WebSocket hijacking: browsers send it on every WebSocket
 *   handshake and cross-origin request, and a page elsewhere cannot forge it.
 *
 * @packageDocumentation
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { isLoopbackHost } from './address.js'

/** A fresh token: 32 random bytes, base64url (43 characters, safe in a URL path). */
export function createToken(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Whether `given` is `token`, in time that depends on neither: both are hashed to 32 bytes first, so
 * `timingSafeEqual` compares equal lengths and even the length of the token does not leak.
 */
export function tokenMatches(given: string, token: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()
  return timingSafeEqual(digest(given), digest(token))
}

/** The address the server is bound to. */
export interface BoundAddress {
  host: string
  port: number
}

/**
 * Whether a `Host` header names this server: its port, and as host `localhost`, the bound IP, or (when
 * bound to all interfaces) any IP literal; a loopback server accepts loopback names only. A DNS name
 * never passes, so a rebound name cannot reach the server from a browser.
 */
export function hostAllowed(header: string | undefined, bound: BoundAddress): boolean {
  if (header === undefined) return false
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/i.exec(header)
  if (match === null || Number(match[3]) !== bound.port) return false
  const host = (match[1] ?? match[2] ?? '').toLowerCase()
  if (host === 'localhost') return true
  if (isIP(host) === 0) return false
  if (isLoopbackHost(bound.host)) return isLoopbackHost(host)
  if (bound.host === '0.0.0.0' || bound.host === '::') return true
  return host === bound.host || isLoopbackHost(host)
}

/**
 * Whether an `Origin` header is this server's own: `http://` and the (already checked) `Host` header.
 * Browsers send `Origin` on every WebSocket handshake and cross-origin request; same-origin GETs of the
 * page's own files may come without one.
 *
 * @param required - the header must be present (the WebSocket upgrade)
 */
export function originAllowed(origin: string | undefined, host: string, required: boolean): boolean {
  if (origin === undefined) return !required
  return origin.toLowerCase() === `http://${host.toLowerCase()}`
}
