import { isIP } from 'node:net'
import { InvalidWebAddressError } from './errors.js'

/** Where the web interface listens. */
export interface WebAddress {
  /** An IP literal (IPv6 without brackets) or `localhost`. */
  host: string
  /** A TCP port; `undefined`: the port remembered from the last run, else a free one. */
  port: number | undefined
}

/** The default of `--web`: loopback, the remembered or a free port. */
export const DEFAULT_WEB_HOST = '127.0.0.1'

/**
 * Reads a `--web` value: `''` (the default), `host:port`, `host:` (a free port), `:port` or `port`, with
 * an IPv6 host in brackets (`[::1]:7717`). The host must be an IP literal or `localhost`: the server
 * accepts requests only for the host names it can tell apart from a rebound DNS name.
 *
 * @throws {InvalidWebAddressError} saying what is wrong
 * @example
 * ```ts
 * parseWebAddress('0.0.0.0:7717') // → { host: '0.0.0.0', port: 7717 }
 * parseWebAddress('') // → { host: '127.0.0.1', port: undefined }
 * ```
 */
export function parseWebAddress(text: string): WebAddress {
  const value = text.trim()
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(.*))?$/.exec(value)
  const onlyPort = /^\d+$/.test(value)
  const hostText = onlyPort ? '' : (match?.[1] ?? match?.[2])
  const portText = onlyPort ? value : match?.[3]
  if (hostText === undefined) {
    throw new InvalidWebAddressError(
      `'${text}' is not host:port (an IPv6 address goes in brackets: [::1]:7717)`,
    )
  }
  const host = hostText === '' ? DEFAULT_WEB_HOST : hostText.toLowerCase()
  if (host !== 'localhost' && isIP(host) === 0) {
    throw new InvalidWebAddressError(`'${hostText}' is not an IP address or localhost`)
  }
  if (portText === undefined || portText === '') return { host, port: undefined }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN
  if (!(port >= 0 && port <= 65535)) {
    throw new InvalidWebAddressError(`'${portText}' is not a port (0 to 65535)`)
  }
  return { host, port: port === 0 ? undefined : port }
}

/** Whether `host` (an IP literal or `localhost`) can only be reached from this machine. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

/** `host:port` as it appears in a URL and a `Host` header (IPv6 in brackets). */
export function hostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`
}
