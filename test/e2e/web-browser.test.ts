/**
 * The seed's story played through the web interface alone, in a real headless Chromium: two nodes, each
 * with its page. Screenshots of each step go to test-results/web/. Also: hostile message bodies render
 * as inert text, and how long a page takes to show what its node reported (measured, printed, not
 * asserted).
 */
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatMessage } from '../../src/node/index.js'
import { ARTIFACTS_DIR, launchBrowser, openPage, pageWaitFor, screenshot } from '../fixtures/browser.js'
import { tempDir } from '../fixtures/chat.js'
import { REPO_ROOT } from '../fixtures/cli.js'
import { startWebChat, type WebChat } from '../fixtures/web.js'

const ASSETS = join(REPO_ROOT, 'dist', 'src', 'web', 'assets')

const cleanups: Array<() => unknown> = []
let browser: Browser

beforeAll(async () => {
  if (!existsSync(join(ASSETS, 'app.js'))) {
    throw new Error(`${ASSETS}/app.js is missing: run \`npm run build\` first (\`npm test\` does)`)
  }
  browser = await launchBrowser()
  cleanups.push(() => browser.close())
})

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Types `text` in the composer, its line breaks with Shift+Enter, and presses Enter. */
async function send(page: Page, text: string): Promise<void> {
  await page.click('#text')
  const [first = '', ...rest] = text.split('\n')
  await page.keyboard.type(first)
  for (const line of rest) {
    await page.keyboard.down('Shift')
    await page.keyboard.press('Enter')
    await page.keyboard.up('Shift')
    await page.keyboard.type(line)
  }
  await page.keyboard.press('Enter')
}

/** The text of the notice line under the conversation (errors such as "Access denied: …"). */
function notice(page: Page): Promise<string> {
  return page.$eval('#notice', (el) => el.textContent ?? '')
}

/** Waits until the notice line says `text`, then clears it for the next step. */
async function expectNotice(page: Page, text: string, step: string): Promise<string> {
  await pageWaitFor(
    page,
    `${step}: "${text}"`,
    (t) => document.querySelector('#notice')?.textContent?.includes(t) === true,
    text,
  )
  const shown = await notice(page)
  await page.$eval('#notice', (el) => el.replaceChildren())
  return shown
}

/** Waits until a message bubble (not locked) with exactly `text` is on the page. */
function waitForBubble(page: Page, text: string, who: string): Promise<void> {
  return pageWaitFor(
    page,
    `${who} to show "${text.slice(0, 40)}"`,
    (t) => [...document.querySelectorAll('.msg:not(.locked) .text')].some((el) => el.textContent === t),
    text,
  )
}

/** How many locked bubbles the page shows. */
function lockedCount(page: Page): Promise<number> {
  return page.$$eval('.msg.locked', (els) => els.length)
}

/**
 * The page's clock minus the test's (Chromium derives wall time from a monotonic clock, so the two may
 * differ by a few ms): from the probe with the shortest round trip of five.
 */
async function clockOffset(page: Page): Promise<number> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 }
  for (let i = 0; i < 5; i++) {
    const before = Date.now()
    const there = await page.evaluate(() => Date.now())
    const after = Date.now()
    if (after - before < best.rtt) best = { rtt: after - before, offset: there - (before + after) / 2 }
  }
  return best.offset
}

/** Records, in the page, when a bubble with each text first appeared (Date.now(), same clock as node). */
async function recordAppearances(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: Record<string, number> = {}
    ;(window as unknown as { __seen: Record<string, number> }).__seen = seen
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('.msg .text')) {
        const text = el.textContent ?? ''
        if (!(text in seen)) seen[text] = Date.now()
      }
    }).observe(document.body, { childList: true, subtree: true })
  })
}

describe('the web interface in a browser', () => {
  let alice: WebChat
  let bob: WebChat
  let alicePage: Page
  let bobPage: Page
  const problems: string[] = []
  const latencies: number[] = []

  it('plays the story: create, invite, denied, locked, admit, chat, remove, locked again', async () => {
    // 1. alice creates the group
    alice = await startWebChat({
      name: 'alice',
      dataDir: await tempDir('web-alice', cleanups),
      group: { kind: 'create', groupName: 'team' },
      assetsDir: ASSETS,
    })
    cleanups.push(() => alice.stop())
    const a = await openPage(browser, alice.url)
    alicePage = a.page
    problems.push(...a.problems)
    await pageWaitFor(alicePage, "alice's page to say she created team", () =>
      [...document.querySelectorAll('li.system')].some((el) => /you created team/.test(el.textContent ?? '')),
    )
    await screenshot(alicePage, '1-alice-created')

    // 2. bob opens with an invite that alice's page made, one she approves by hand
    await alicePage.click('#invite-ask')
    await pageWaitFor(
      alicePage,
      'an invite',
      () => (document.querySelector('#invite-text') as HTMLTextAreaElement).value !== '',
    )
    const invite = await alicePage.$eval('#invite-text', (el) => (el as HTMLTextAreaElement).value)
    expect(invite).toMatch(/^p2pchat2:/)
    bob = await startWebChat({
      name: 'bob',
      dataDir: await tempDir('web-bob', cleanups),
      group: { kind: 'join', invite },
      bootstrap: alice.session.node.addrs(),
      assetsDir: ASSETS,
    })
    cleanups.push(() => bob.stop())
    const b = await openPage(browser, bob.url)
    bobPage = b.page
    problems.push(...b.problems)
    await pageWaitFor(bobPage, "bob's page to say he is not a member", () =>
      /not a member of team/.test(document.querySelector('#banner:not([hidden])')?.textContent ?? ''),
    )
    await screenshot(bobPage, '2-bob-opened-with-invite')

    // 3. bob's attempts to send, add and remove are refused as the terminal refuses them
    await send(bobPage, 'let me in')
    expect(await expectNotice(bobPage, 'Access denied', 'bob sending')).toMatch(
      /^Access denied: you are not a member of team/,
    )
    await bobPage.type('#member-ref', 'carol')
    await bobPage.click('#add')
    expect(await expectNotice(bobPage, 'Access denied', 'bob adding')).toMatch(/^Access denied: /)
    await bobPage.$eval('#member-ref', (el) => {
      ;(el as HTMLInputElement).value = ''
    })
    await bobPage.type('#member-ref', 'alice')
    await bobPage.click('#remove')
    const denied = await expectNotice(bobPage, 'Access denied', 'bob removing')
    expect(denied).toMatch(/^Access denied: /)
    expect(await bobPage.$eval('#text', (el) => (el as HTMLTextAreaElement).value)).toBe('let me in')
    await bobPage.$eval('#text', (el) => {
      ;(el as HTMLTextAreaElement).value = ''
    })
    await screenshot(bobPage, '3-bob-access-denied')

    // 5 (first half). bob's join request reaches alice's page: they share the group's topic now
    await pageWaitFor(alicePage, "bob's join request on alice's page", () =>
      [...document.querySelectorAll('#requests li')].some((el) => /bob/.test(el.textContent ?? '')),
    )

    // 4. bob sees alice's message as a locked bubble
    await send(alicePage, 'the plan is\non two lines')
    await waitForBubble(alicePage, 'the plan is\non two lines', 'alice')
    await pageWaitFor(
      bobPage,
      "a locked bubble on bob's page",
      () => document.querySelectorAll('.msg.locked').length >= 1,
    )
    const locked = await bobPage.$eval('.msg.locked', (el) => el.textContent ?? '')
    expect(locked).toMatch(/locked: \d+ encrypted bytes/)
    expect(locked).not.toContain('the plan')
    await screenshot(bobPage, '4-bob-locked-bubble')

    // 5. alice admits bob from the join request
    await screenshot(alicePage, '5-alice-join-request')
    await alicePage.click('#requests .admit')
    await pageWaitFor(alicePage, "bob in alice's member list", () =>
      [...document.querySelectorAll('#members li')].some((el) => /bob/.test(el.textContent ?? '')),
    )
    await pageWaitFor(
      bobPage,
      "bob's page to know he is a member",
      () =>
        document.querySelector('#banner')?.hasAttribute('hidden') === true &&
        [...document.querySelectorAll('#members li')].some((el) => /you/.test(el.textContent ?? '')),
    )

    // 6. they chat both ways
    await recordAppearances(bobPage)
    const shownAt = new Map<string, number>()
    bob.session.node.addEventListener('message:receive', ({ detail }: CustomEvent<ChatMessage>) => {
      if (!shownAt.has(detail.text)) shownAt.set(detail.text, Date.now())
    })
    const offset = await clockOffset(bobPage)
    await send(bobPage, 'thanks alice')
    await waitForBubble(alicePage, 'thanks alice', 'alice')
    for (const text of ['welcome bob', 'second', 'third']) {
      await send(alicePage, text)
      await waitForBubble(bobPage, text, 'bob')
      const appeared = await bobPage.evaluate(
        (t) => (window as unknown as { __seen: Record<string, number> }).__seen[t],
        text,
      )
      const notified = shownAt.get(text)
      if (appeared !== undefined && notified !== undefined)
        latencies.push(Math.round(appeared - offset - notified))
    }
    expect(await bobPage.$eval('.msg.own .text', (el) => el.textContent)).toBe('thanks alice')
    await screenshot(alicePage, '6-alice-chat')
    await screenshot(bobPage, '6-bob-chat')

    // 7. alice removes bob; bob sees locked bubbles again
    const before = await lockedCount(bobPage)
    await alicePage.$$eval('#members li', (items) => {
      const bobItem = items.find((el) => /bob/.test(el.textContent ?? ''))
      ;(bobItem?.querySelector('button.remove-member') as HTMLButtonElement | null)?.click()
    })
    await pageWaitFor(
      alicePage,
      "bob gone from alice's member list",
      () => ![...document.querySelectorAll('#members li')].some((el) => /bob/.test(el.textContent ?? '')),
    )
    await pageWaitFor(bobPage, 'bob to see he was removed', () =>
      [...document.querySelectorAll('li.system')].some((el) => /removed you/.test(el.textContent ?? '')),
    )
    await send(alicePage, 'after bob left')
    await pageWaitFor(
      bobPage,
      "a new locked bubble on bob's page",
      (n) => document.querySelectorAll('.msg.locked').length > n,
      before,
    )
    expect(await bobPage.$$eval('.msg .text', (els) => els.map((el) => el.textContent))).not.toContain(
      'after bob left',
    )
    await screenshot(bobPage, '7-bob-removed-locked-again')
    await screenshot(alicePage, '7-alice')

    const report = `page shown after the node's message:receive, ms: ${latencies.join(', ')}`
    process.stdout.write(`web interface latency: ${report}\n`)
    await writeFile(join(ARTIFACTS_DIR, 'latency.txt'), `${report}\n`)
    expect(problems).toEqual([])
  })

  it('shows an invite that admitted nobody, and that no peer is reachable, as system lines', async () => {
    // carol presents an invite that expired before she could use it: alice's node refuses it
    const groupId = alice.session.groupId as string
    const invite = alice.session.node.invite(groupId, { validForMs: 1 })
    const carol = await startWebChat({
      name: 'carol',
      dataDir: await tempDir('web-carol', cleanups),
      group: { kind: 'join', invite },
      assetsDir: ASSETS,
    })
    cleanups.push(() => carol.stop())
    const line = (text: string) =>
      [...document.querySelectorAll('li.system')].some((el) => el.textContent?.includes(text) === true)
    await pageWaitFor(
      alicePage,
      "alice's page to say carol's invite expired",
      line,
      'presented an expired invite',
    )
    // every peer gone: after the grace period, alice's page says none is reachable
    await carol.stop()
    await bob.stop()
    // the grace period is 10 s: longer than pageWaitFor's deadline
    await alicePage
      .waitForFunction(line, { timeout: 30_000, polling: 'mutation' }, '* no peer is reachable')
      .catch((err: Error) => {
        throw new Error(`timed out waiting for alice's page to say no peer is reachable: ${err.message}`)
      })
    await screenshot(alicePage, '8-refused-unreachable')
    expect(problems).toEqual([])
  }, 60_000)

  it('renders hostile message bodies as inert text', async () => {
    const payloads = [
      `<img src=x onerror="window.__pwned='img'">`,
      `<script>window.__pwned='script'</script>`,
      `<a href="javascript:window.__pwned='link'">click me</a>`,
      `<svg onload="window.__pwned='svg'"></svg><iframe src="javascript:parent.__pwned='frame'"></iframe>`,
      `invoice\u202Egpj.exe\u202C and \u2067isolate\u2069 tricks`,
      `${'A'.repeat(64 * 1024 - 20)}\n${'<b>bold</b>'.slice(0, 11)}`,
    ]
    const { group } = alice.session.status()
    for (const text of payloads) await alice.session.node.send(group?.id ?? '', text)
    // bidi controls are removed, as the terminal removes them: the rest is shown as it was sent
    const shown = (text: string) => text.replace(/[\u202A-\u202E\u2066-\u2069]/g, '')
    for (const text of payloads) await waitForBubble(alicePage, shown(text), 'alice')
    // click each bubble: a link, had one been made, would run its javascript:
    for (const el of await alicePage.$$('.msg .text')) await el.click().catch(() => {})
    const dom = await alicePage.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: string }).__pwned,
      elements: document.querySelectorAll(
        '.messages img, .messages script, .messages a, .messages svg, .messages iframe, .messages b',
      ).length,
      overflow:
        (document.querySelector('#conversation') as HTMLElement).scrollWidth -
        (document.querySelector('#conversation') as HTMLElement).clientWidth,
      isolated: getComputedStyle(document.querySelector('.msg .text') as Element).unicodeBidi,
      bidi: /[\u202A-\u202E\u2066-\u2069]/.test(document.body.textContent ?? ''),
    }))
    expect(dom).toEqual({ pwned: undefined, elements: 0, overflow: 0, isolated: 'isolate', bidi: false })
    await screenshot(alicePage, '9-hostile-bodies')
    expect(problems).toEqual([])
  })
})
