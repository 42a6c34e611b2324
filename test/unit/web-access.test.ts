/**
 * The web interface's pure access rules: the `--web` address, which `Host` and `Origin` headers name
 * this server, and the token comparison.
 */
import { describe, expect, it } from 'vitest'
import { parseArgs } from '../../src/cli/args.js'
import { UsageError } from '../../src/cli/errors.js'
import {
  createToken,
  hostAllowed,
  originAllowed,
  parseWebAddress,
  tokenMatches,
} from '../../src/web/index.js'

describe('parseWebAddress', () => {
  it('reads host:port, host:, :port, port and bracketed IPv6; default 127.0.0.1 and no fixed port', () => {
    expect(parseWebAddress('')).toEqual({ host: '127.0.0.1', port: undefined })
    expect(parseWebAddress('127.0.0.1:7717')).toEqual({ host: '127.0.0.1', port: 7717 })
    expect(parseWebAddress('0.0.0.0:7717')).toEqual({ host: '0.0.0.0', port: 7717 })
    expect(parseWebAddress('localhost:')).toEqual({ host: 'localhost', port: undefined })
    expect(parseWebAddress(':8080')).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(parseWebAddress('8080')).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(parseWebAddress('[::1]:7717')).toEqual({ host: '::1', port: 7717 })
    expect(parseWebAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: undefined })
  })

  it('refuses DNS names, bad ports and unbracketed IPv6', () => {
    for (const bad of ['example.com:80', '127.0.0.1:65536', '127.0.0.1:http', '::1:7717', '[::1', 'a b:1']) {
      expect(() => parseWebAddress(bad), bad).toThrow(
        expect.objectContaining({ name: 'InvalidWebAddressError' }),
      )
    }
  })
})

describe('p2pchat start --web', () => {
  it('takes an optional value: alone, last, before another option, or host:port', () => {
    const web = (args: string[]) => {
      const command = parseArgs(['start', '--name', 'alice', ...args])
      return command.command === 'start' ? command.web : 'not start'
    }
    expect(web([])).toBeUndefined()
    expect(web(['--web'])).toEqual({ host: '127.0.0.1', port: undefined })
    expect(web(['--web', '--json'])).toEqual({ host: '127.0.0.1', port: undefined })
    expect(web(['--web', '0.0.0.0:7717'])).toEqual({ host: '0.0.0.0', port: 7717 })
    expect(web(['--web=:7717'])).toEqual({ host: '127.0.0.1', port: 7717 })
    expect(() => web(['--web', 'evil.example:1'])).toThrow(UsageError)
    expect(() => web(['--web', '--web'])).toThrow(UsageError)
  })
})

describe('hostAllowed', () => {
  const loopback = { host: '127.0.0.1', port: 7717 }
  it('on loopback: 127.x, [::1] and localhost with the port; no DNS name, no other port, no LAN IP', () => {
    for (const ok of ['127.0.0.1:7717', 'localhost:7717', 'LOCALHOST:7717', '[::1]:7717', '127.0.0.2:7717']) {
      expect(hostAllowed(ok, loopback), ok).toBe(true)
    }
    for (const bad of [
      undefined,
      '',
      '127.0.0.1',
      '127.0.0.1:7718',
      'evil.example:7717',
      '127.0.0.1.nip.io:7717',
      '192.168.1.2:7717',
      '[::ffff:c0a8:102]:7717',
      'localhost:7717:1',
      '127.0.0.1:07717x',
    ]) {
      expect(hostAllowed(bad, loopback), String(bad)).toBe(false)
    }
  })

  it('on all interfaces: any IP literal with the port, never a DNS name', () => {
    const any = { host: '0.0.0.0', port: 80 }
    expect(hostAllowed('192.168.1.2:80', any)).toBe(true)
    expect(hostAllowed('[fe80::1]:80', any)).toBe(true)
    expect(hostAllowed('chat.example:80', any)).toBe(false)
    const one = { host: '192.168.1.2', port: 80 }
    expect(hostAllowed('192.168.1.2:80', one)).toBe(true)
    expect(hostAllowed('192.168.1.3:80', one)).toBe(false)
  })
})

describe('originAllowed', () => {
  it('is exactly http:// and the Host; required on the WebSocket upgrade', () => {
    expect(originAllowed('http://127.0.0.1:7717', '127.0.0.1:7717', true)).toBe(true)
    expect(originAllowed(undefined, '127.0.0.1:7717', false)).toBe(true)
    expect(originAllowed(undefined, '127.0.0.1:7717', true)).toBe(false)
    for (const bad of [
      'null',
      'http://localhost:7717',
      'https://127.0.0.1:7717',
      'http://127.0.0.1:7717/',
      'http://evil.example',
    ]) {
      expect(originAllowed(bad, '127.0.0.1:7717', false), bad).toBe(false)
    }
  })
})

describe('tokens', () => {
  it('are 256 random bits, URL-safe, and match only themselves', () => {
    const token = createToken()
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(createToken()).not.toBe(token)
    expect(tokenMatches(token, token)).toBe(true)
    expect(tokenMatches(token.slice(0, -1), token)).toBe(false)
    expect(tokenMatches(`${token}A`, token)).toBe(false)
    expect(tokenMatches('', token)).toBe(false)
  })
})
