/**
 * `p2pchat --version`, `--help` and a mistyped command answer without loading libp2p: the network
 * stack, and the membership core (which needs `@libp2p/crypto` and `@libp2p/peer-id`), are imported
 * only when a command that runs a node needs them. Checked by the modules the process loads, not by
 * timing: a module hook records every module node loads and writes the list when the process exits.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliGroup, createCliGroup, runCli } from '../fixtures/cli.js'

/**
 * Modules of libp2p, and of the parts of p2pchat built on it or on the core. `src/node/errors.ts` and
 * `src/relay/errors.ts` import nothing, and the CLI needs them to tell the user's errors from bugs;
 * `src/node/defaults.ts` and `src/relay/defaults.ts` import nothing, and the help shows their defaults.
 */
const HEAVY =
  /\/node_modules\/(libp2p|@libp2p|@chainsafe)\/|\/dist\/src\/(node\/(?!(errors|defaults)\.js$)|relay\/(?!(errors|defaults)\.js$)|membership\/|crypto\/)/

describe('p2pchat loads libp2p only for a command that runs a node', () => {
  let cli: CliGroup
  let dir: string

  beforeAll(async () => {
    cli = createCliGroup()
    dir = await cli.tempDir('p2pchat-lazy-')
  })
  afterAll(async () => {
    await cli?.teardown()
  })

  /** Runs the CLI with a hook that records the URL of every module loaded; resolves to the list. */
  async function modulesLoaded(args: string[], expectedCode: number): Promise<string[]> {
    const log = join(dir, `${args.join('_').replace(/\W/g, '')}.txt`)
    const hook = `
      import { registerHooks } from 'node:module'
      import { writeFileSync } from 'node:fs'
      const loaded = []
      registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context) } })
      process.on('exit', () => writeFileSync(${JSON.stringify(log)}, loaded.join('\\n')))`
    const run = await runCli(args, undefined, [
      '--import',
      `data:text/javascript,${encodeURIComponent(hook)}`,
    ])
    expect(run.code, `p2pchat ${args.join(' ')}: ${run.stderr}`).toBe(expectedCode)
    return (await readFile(log, 'utf8')).split('\n')
  }

  it.each([
    [['--version'], 0],
    [['--help'], 0],
    [['start', '--help'], 0],
    [['help', 'relay'], 0],
    [['strat'], 2],
  ])('p2pchat %j loads no libp2p module', async (args, code) => {
    const modules = await modulesLoaded(args, code)
    expect(modules.some((url) => url.endsWith('/dist/src/cli/index.js'))).toBe(true)
    expect(modules.filter((url) => HEAVY.test(url))).toEqual([])
  })

  it('the hook does see them where a command checks names with the core', async () => {
    // a usage error found by the value checks, which need the membership core
    const modules = await modulesLoaded(['relay', '--max-storage', 'lots'], 2)
    expect(modules.some((url) => url.includes('/node_modules/@libp2p/peer-id/'))).toBe(true)
    expect(modules.some((url) => url.includes('/dist/src/membership/'))).toBe(true)
  })
})
