/**
 * The web interface is a door into the identity: every HTTP request and the WebSocket upgrade need the
 * token, a `Host` naming this server (DNS rebinding) and, on the upgrade, this server's `Origin`
 * (cross-site WebSocket hijacking). Checked with plain HTTP and WebSocket clients that set every header.
 */
import * as crypto from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createJsonRpcServer, notification } from '../../src/cli/json-rpc.js'
import {
  CONTENT_SECURITY_POLICY,
  createToken,
  createWebServer,
  MAX_MESSAGE_BYTES,
  type WebServer,
} from '../../src/web/index.js'
import { tempDir } from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'
import { httpGet, openWebSocket } from '../fixtures/web.js'

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>()
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) }
})

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let web: WebServer
let token: string
let origin: string
let rpcUrl: string

beforeEach(async () => {
  const assetsDir = await tempDir('web-assets', cleanups)
  await mkdir(assetsDir, { recursive: true })
  await writeFile(join(assetsDir, 'app.js'), 'document.title = "ok"\n')
  await writeFile(join(assetsDir, 'style.css'), 'body { color: black }\n')
  token = createToken()
  web = await createWebServer(
    {
      host: '127.0.0.1',
      token,
      assetsDir,
      connect: (send) =>
        createJsonRpcServer({ methods: { echo: (params) => ({ echo: params.text }) }, write: send }),
    },
    0,
  )
  cleanups.push(() => web.close())
  origin = `http://127.0.0.1:${web.port}`
  rpcUrl = `ws://127.0.0.1:${web.port}/${token}/rpc`
})

describe('web interface: HTTP', () => {
  it('serves the page, its script and style only under the token, each with the strict CSP', async () => {
    expect(web.url).toBe(`http://127.0.0.1:${web.port}/${token}/`)
    for (const [path, type] of [
      [`/${token}/`, 'text/html'],
      [`/${token}/app.js`, 'text/javascript'],
      [`/${token}/style.css`, 'text/css'],
    ] as const) {
      const reply = await httpGet(web.port, path)
      expect(reply.status, path).toBe(200)
      expect(reply.headers['content-type']).toContain(type)
      expect(reply.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY)
      expect(reply.headers['x-content-type-options']).toBe('nosniff')
      expect(reply.headers['referrer-policy']).toBe('no-referrer')
    }
    const page = await httpGet(web.port, `/${token}/`)
    expect(page.body).toContain('<script type="module" src="app.js"></script>')
    expect(page.body).not.toMatch(/<script>|<style|\son\w+=/)
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'")
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'")
    expect(CONTENT_SECURITY_POLICY).toContain("connect-src 'self'")
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe|\*|https?:/)
  })

  it('answers 401 to every request without the right token, the page and its files included', async () => {
    const wrong = createToken()
    for (const path of [
      '/',
      '/app.js',
      '/style.css',
      '/index.html',
      '/favicon.ico',
      `/${wrong}/`,
      `/${wrong}/app.js`,
      `/${token.slice(0, -1)}/`,
      `/${token}x/`,
      `/?k=${token}`,
      `/x/${token}/`,
    ]) {
      const reply = await httpGet(web.port, path)
      expect(reply.status, path).toBe(401)
      expect(reply.body).not.toContain('<script')
      expect(reply.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY)
    }
  })

  it('compares the token with crypto.timingSafeEqual', async () => {
    const spy = vi.mocked(crypto.timingSafeEqual)
    spy.mockClear()
    expect((await httpGet(web.port, `/${createToken()}/`)).status).toBe(401)
    expect(spy).toHaveBeenCalled()
  })

  it('refuses a Host that is not this server (DNS rebinding), even with the token', async () => {
    for (const host of [
      `evil.example:${web.port}`,
      `127.0.0.1.nip.io:${web.port}`,
      `127.0.0.1:${web.port + 1}`,
      '127.0.0.1',
      `192.168.1.10:${web.port}`,
      `localhost.evil.example:${web.port}`,
    ]) {
      expect((await httpGet(web.port, `/${token}/`, { host })).status, host).toBe(421)
    }
    expect((await httpGet(web.port, `/${token}/`, { host: `localhost:${web.port}` })).status).toBe(200)
  })

  it("refuses a request from another site's page (Origin), even with the token", async () => {
    for (const bad of [
      'http://evil.example',
      'null',
      `http://localhost:${web.port + 1}`,
      `https://127.0.0.1:${web.port}`,
    ]) {
      expect((await httpGet(web.port, `/${token}/app.js`, { origin: bad })).status, bad).toBe(403)
    }
    expect((await httpGet(web.port, `/${token}/app.js`, { origin })).status).toBe(200)
  })

  it('serves nothing but GET and HEAD, and the RPC path only as a WebSocket', async () => {
    expect((await httpGet(web.port, `/${token}/`, {}, 'POST')).status).toBe(405)
    expect((await httpGet(web.port, `/${token}/rpc`)).status).toBe(426)
    expect((await httpGet(web.port, `/${token}/..%2f..%2fpackage.json`)).status).toBe(404)
    expect((await httpGet(web.port, `/${token}/package.json`)).status).toBe(404)
    const bare = await httpGet(web.port, `/${token}`)
    expect(bare.status).toBe(308)
    expect(bare.headers.location).toBe(`/${token}/`)
  })
})

describe('web interface: WebSocket', () => {
  it('refuses the upgrade without the token (401), from another Origin or none (403), to another Host (421)', async () => {
    expect(await openWebSocket(`ws://127.0.0.1:${web.port}/rpc`, origin)).toEqual({ refused: 401 })
    expect(await openWebSocket(`ws://127.0.0.1:${web.port}/${createToken()}/rpc`, origin)).toEqual({
      refused: 401,
    })
    expect(await openWebSocket(rpcUrl, 'http://evil.example')).toEqual({ refused: 403 })
    expect(await openWebSocket(rpcUrl, `http://localhost:${web.port}`)).toEqual({ refused: 403 })
    expect(await openWebSocket(rpcUrl, undefined)).toEqual({ refused: 403 })
    expect(
      await openWebSocket(rpcUrl, 'http://evil.example:80', { host: `evil.example:${web.port}` }),
    ).toEqual({
      refused: 421,
    })
  })

  it('carries JSON-RPC 2.0: requests, errors, and broadcast notifications, kept for pages opened later', async () => {
    web.broadcast(notification('message', { text: 'before the page' }))
    const opened = await openWebSocket(rpcUrl, origin)
    if (!('open' in opened)) throw new Error(`refused ${opened.refused}`)
    const rpc = opened.open
    cleanups.push(() => rpc.close())
    expect(await rpc.call('echo', { text: 'hi' })).toMatchObject({ result: { echo: 'hi' } })
    expect(await rpc.call('nope')).toMatchObject({ error: { code: -32601 } })
    expect(rpc.notifications('message')).toEqual([
      { jsonrpc: '2.0', method: 'message', params: { text: 'before the page' } },
    ])
    web.broadcast(notification('message', { text: 'live' }))
    await waitFor(() => rpc.notifications('message').length === 2, { message: 'the live notification' })
  })

  it('closes a WebSocket that sends more than a request line may hold', async () => {
    const opened = await openWebSocket(rpcUrl, origin)
    if (!('open' in opened)) throw new Error(`refused ${opened.refused}`)
    const { ws } = opened.open
    const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)))
    ws.send('x'.repeat(MAX_MESSAGE_BYTES + 1))
    expect(await code).toBe(1009)
  })
})
