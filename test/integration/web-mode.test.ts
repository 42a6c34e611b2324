/**
 * `p2pchat start --json --web`: the web interface beside `--json` serves the same JSON-RPC methods and
 * notifications over its WebSocket, hears what happened before it listened, stops the session on a
 * page's `quit`, and keeps its port across runs.
 */
import { describe, expect, it } from 'vitest'
import { cleanupAfterEach, NETWORK_TIMEOUT, tempDir } from '../fixtures/chat.js'
import { waitFor } from '../fixtures/wait-for.js'
import { openWebSocket, startWebChat, type WebChat } from '../fixtures/web.js'

const cleanups = cleanupAfterEach()

/** alice's `start --create team --json --web`, with a WebSocket open on her page's API. */
async function start(dataDir: string) {
  const alice: WebChat = await startWebChat({
    name: 'alice',
    dataDir,
    group: { kind: 'create', groupName: 'team' },
  })
  cleanups.push(() => alice.stop())
  const { host, pathname } = new URL(alice.url)
  const opened = await openWebSocket(`ws://${host}${pathname}rpc`, `http://${host}`)
  if (!('open' in opened)) throw new Error(`refused: ${opened.refused}`)
  cleanups.push(() => opened.open.close())
  return { ...alice, rpc: opened.open }
}

describe('--web beside --json', () => {
  it('is one API: the same methods and notifications on the WebSocket as on stdout', async () => {
    const dir = await tempDir('web-mode', cleanups)
    const alice = await start(dir)
    expect(alice.out()).not.toContain('Open ')
    // raised while the node started, before the server listened
    await waitFor(() => alice.rpc.notifications('membership').length === 1, {
      timeout: NETWORK_TIMEOUT,
      message: 'the --create membership notification on the WebSocket',
    })
    const status = await alice.rpc.call('status')
    expect(status).toMatchObject({ result: { name: 'alice', member: true, group: { name: 'team' } } })
    expect(await alice.rpc.call('peers')).toEqual({ jsonrpc: '2.0', id: 2, result: { peers: [] } })
    const sent = await alice.rpc.call('send', { text: 'from the page' })
    await waitFor(() => alice.rpc.notifications('message').length === 1, {
      timeout: NETWORK_TIMEOUT,
      message: 'the message notification on the WebSocket',
    })
    expect(alice.rpc.notifications('message')[0]).toMatchObject({
      params: { id: (sent.result as { id: string }).id, text: 'from the page', name: 'alice' },
    })
    // --json's stdout got the same notification line
    expect(alice.out()).toContain('"method":"message"')
    expect(alice.out()).toContain('"text":"from the page"')
    expect(await alice.rpc.call('remove', { member: 'nobody' })).toMatchObject({
      error: { code: -32000, data: { name: 'UnknownMember' } },
    })
  })

  it("stops the session on a page's quit, and keeps the port for the next run", async () => {
    const dir = await tempDir('web-mode', cleanups)
    const first = await start(dir)
    expect(await first.rpc.call('quit')).toMatchObject({ result: {} })
    expect(await first.exit).toBe(0)
    const second = await start(dir)
    expect(new URL(second.url).port).toBe(new URL(first.url).port)
    expect(second.url).not.toBe(first.url) // a new token each run
  })
})
