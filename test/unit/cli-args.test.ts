import { describe, expect, it } from 'vitest'
import { parseArgs } from '../../src/cli/args.js'
import { DEFAULT_MAX_STORAGE, DEFAULT_RETENTION } from '../../src/cli/command-line.js'
import { defaultDataDir, defaultRelayDataDir, pathSegmentFor } from '../../src/cli/default-data-dir.js'
import { UsageError } from '../../src/cli/errors.js'
import { parseDuration, parseSize } from '../../src/cli/units.js'
import { usage } from '../../src/cli/usage.js'
import { isValidName, MAX_NAME_BYTES } from '../../src/membership/index.js'

/** Run `fn`, expect a UsageError, and return it for further assertions. */
function usageError(fn: () => unknown): UsageError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    expect((err as Error).name).toBe('UsageError')
    return err as UsageError
  }
  throw new Error('expected a UsageError, but nothing was thrown')
}

const PEER = '12D3KooWGRUVh8Fm6vW1L6y4xT6s7m2p6cA1GmYbHqN5TmbbXzAa'

describe('parseArgs: start', () => {
  it('fills in every default', () => {
    expect(parseArgs(['start', '--name', 'alice'])).toEqual({
      command: 'start',
      name: 'alice',
      group: { kind: 'open' },
      dataDir: undefined,
      listen: undefined,
      bootstrap: [],
      forgetRelays: [],
      mdns: true,
      json: false,
    })
  })

  it('reads every option, in both --flag value and --flag=value forms', () => {
    expect(
      parseArgs([
        'start',
        '--name=bob',
        '--join',
        'inv1te',
        '--data-dir',
        '/tmp/bob',
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--listen=/ip6/::1/tcp/0',
        '--bootstrap',
        `/dns4/relay.example.com/tcp/4001/p2p/${PEER}`,
        '--forget-relay',
        PEER,
        '--forget-relay= /ip4/10.0.0.1/tcp/4001 ',
        '--no-mdns',
        '--json',
      ]),
    ).toEqual({
      command: 'start',
      name: 'bob',
      group: { kind: 'join', invite: 'inv1te' },
      dataDir: '/tmp/bob',
      listen: ['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0'],
      bootstrap: [`/dns4/relay.example.com/tcp/4001/p2p/${PEER}`],
      forgetRelays: [PEER, '/ip4/10.0.0.1/tcp/4001'],
      mdns: false,
      json: true,
    })
  })

  it('selects the group to create, join or open', () => {
    expect(parseArgs(['start', '--name', 'a', '--create', 'team']).command === 'start').toBe(true)
    const create = parseArgs(['start', '--name', 'a', '--create', ' team '])
    expect(create).toMatchObject({ group: { kind: 'create', groupName: 'team' } })
    const open = parseArgs(['start', '--name', 'a', '--group', 'team'])
    expect(open).toMatchObject({ group: { kind: 'open', group: 'team' } })
  })

  it('requires --name', () => {
    const err = usageError(() => parseArgs(['start']))
    expect(err.message).toBe("missing required option '--name'")
    expect(err.command).toBe('start')
  })

  it('rejects empty, whitespace-only, too long and unprintable names', () => {
    expect(usageError(() => parseArgs(['start', '--name', ''])).message).toBe(
      "option '--name' must not be empty",
    )
    expect(usageError(() => parseArgs(['start', '--name', ' \t '])).message).toBe(
      "option '--name' must not be empty",
    )
    expect(usageError(() => parseArgs(['start', '--name', 'x'.repeat(65)])).message).toBe(
      "option '--name' is too long: 65 bytes, at most 64 bytes are allowed",
    )
    expect(usageError(() => parseArgs(['start', '--name', 'ali\u001b[31mce'])).message).toMatch(
      /^option '--name' contains an unprintable character \(U\+001B\)/,
    )
    // A right-to-left override would let a name display as something else.
    expect(usageError(() => parseArgs(['start', '--name', 'eci\u202Elia'])).message).toContain('U+202E')
    expect(usageError(() => parseArgs(['start', '--name', 'a\nb'])).message).toContain('U+000A')
  })

  it('accepts names of up to 64 bytes of UTF-8, spaces and emoji included, trimmed', () => {
    const astral = '😀'.repeat(16) // 16 code points, 32 UTF-16 units, 64 bytes
    expect(parseArgs(['start', '--name', astral])).toMatchObject({ name: astral })
    expect(parseArgs(['start', '--name', 'x'.repeat(64)])).toMatchObject({ name: 'x'.repeat(64) })
    // surrounding spaces do not count against the limit, since they are trimmed
    expect(parseArgs(['start', '--name', ` ${'x'.repeat(64)} `])).toMatchObject({ name: 'x'.repeat(64) })
    expect(parseArgs(['start', '--name', '  Zoë Ng  '])).toMatchObject({ name: 'Zoë Ng' })
    const family = '👨\u200D👩\u200D👧'
    expect(parseArgs(['start', '--name', family])).toMatchObject({ name: family })
  })

  it('measures the limit in UTF-8 bytes, as the membership core does, not in characters', () => {
    // 22 × 日 is 22 characters but 66 bytes: the core (isValidName) would refuse it later, or
    // every peer would silently drop the join request, so parsing refuses it with a usage error
    const cjk = '日'.repeat(22)
    expect(isValidName(cjk)).toBe(false)
    expect(usageError(() => parseArgs(['start', '--name', cjk])).message).toBe(
      "option '--name' is too long: 22 characters take 66 bytes in UTF-8, at most 64 bytes are allowed",
    )
    expect(usageError(() => parseArgs(['start', '--name', '😀'.repeat(17)])).message).toContain(
      '68 bytes in UTF-8',
    )
    const err = usageError(() => parseArgs(['start', '--name', 'a', '--create', 'é'.repeat(33)]))
    expect(err.message).toBe(
      "option '--create' is too long: 33 characters take 66 bytes in UTF-8, at most 64 bytes are allowed",
    )
    expect(err.command).toBe('start')
    // at the limit, the core agrees
    const fits = `${'日'.repeat(21)}x`
    expect(Buffer.byteLength(fits)).toBe(MAX_NAME_BYTES)
    expect(isValidName(fits)).toBe(true)
    expect(parseArgs(['start', '--name', fits, '--create', fits])).toMatchObject({
      name: fits,
      group: { kind: 'create', groupName: fits },
    })
  })

  it('the start usage states the limit in bytes', () => {
    expect(usage('start')).toContain(`at most ${MAX_NAME_BYTES} bytes of UTF-8`)
  })

  it('validates the --create group name like a display name', () => {
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--create', '  '])).message).toBe(
      "option '--create' must not be empty",
    )
  })

  it('rejects --create with --join, and --group with either', () => {
    expect(
      usageError(() => parseArgs(['start', '--name', 'a', '--create', 't', '--join', 'i'])).message,
    ).toBe("options '--create' and '--join' cannot be used together")
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--join', 'i', '--group', 'g'])).message).toBe(
      "options '--group' and '--join' cannot be used together",
    )
  })

  it('rejects empty invites and group references', () => {
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--join', ' '])).message).toBe(
      "option '--join' needs an invite, got an empty value",
    )
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--group='])).message).toBe(
      "option '--group' needs a group id or name, got an empty value",
    )
  })

  it('names the flag and the reason for a bad multiaddr', () => {
    const err = usageError(() => parseArgs(['start', '--name', 'a', '--listen', '/ip4/1.2.3/tcp/1']))
    expect(err.message).toBe(
      "invalid '--listen' value '/ip4/1.2.3/tcp/1': Invalid IPv4 address \"1.2.3\"; expected a multiaddr like /ip4/192.168.1.10/tcp/4001",
    )
    expect(
      usageError(() => parseArgs(['start', '--name', 'a', '--bootstrap', 'localhost:4001'])).message,
    ).toMatch(/^invalid '--bootstrap' value 'localhost:4001': /)
    // The parser accepts "/" as an empty address; listening on nothing is a mistake.
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--listen', '/'])).message).toMatch(
      /^invalid '--listen' value '\/': it has no protocols/,
    )
  })

  it('replaces the default listen address rather than adding to it', () => {
    expect(parseArgs(['start', '--name', 'a', '--listen', '/ip4/127.0.0.1/tcp/9000'])).toMatchObject({
      listen: ['/ip4/127.0.0.1/tcp/9000'],
    })
  })

  it('rejects unknown options, stray arguments and misuse of flags', () => {
    const unknown = usageError(() => parseArgs(['start', '--name', 'a', '--nmae', 'b']))
    expect(unknown.message).toBe("unknown option '--nmae' for 'start'")
    expect(unknown.command).toBe('start')
    expect(usageError(() => parseArgs(['start', '--name', 'a', 'extra'])).message).toBe(
      "unexpected argument 'extra'",
    )
    expect(usageError(() => parseArgs(['start', '--name'])).message).toBe("option '--name' needs a value")
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--json=yes'])).message).toBe(
      "option '--json' does not take a value",
    )
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--name', 'b'])).message).toBe(
      "option '--name' given more than once",
    )
    // relay-only options are unknown to start
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--retention', '1d'])).message).toBe(
      "unknown option '--retention' for 'start'",
    )
  })

  it('does not swallow the next flag as a missing value', () => {
    expect(usageError(() => parseArgs(['start', '--name', '--json'])).message).toBe(
      "option '--name' needs a value, got option '--json' (use --name=--json if you meant it)",
    )
    expect(parseArgs(['start', '--name=-dash-'])).toMatchObject({ name: '-dash-' })
  })
})

describe('parseArgs: relay', () => {
  it('fills in every default', () => {
    expect(parseArgs(['relay'])).toEqual({
      command: 'relay',
      dataDir: undefined,
      listen: ['/ip4/0.0.0.0/tcp/4001'],
      bootstrap: [],
      json: false,
      maxStorage: 1024 ** 3,
      retention: 30 * 24 * 60 * 60 * 1000,
      maxMemory: 256 * 1024 ** 2,
      maxGroups: 1000,
    })
    expect(DEFAULT_MAX_STORAGE).toBe(1073741824)
    expect(DEFAULT_RETENTION).toBe(2592000000)
  })

  it('parses sizes and durations into bytes and milliseconds', () => {
    expect(
      parseArgs([
        'relay',
        '--max-storage',
        '512MiB',
        '--retention',
        '7d',
        '--listen',
        '/ip4/0.0.0.0/tcp/4002',
        '--bootstrap',
        `/ip4/10.0.0.1/tcp/4001/p2p/${PEER}`,
        '--data-dir',
        'relay-data',
        '--max-memory',
        '128MiB',
        '--max-groups',
        '200',
        '--json',
      ]),
    ).toEqual({
      command: 'relay',
      dataDir: 'relay-data',
      listen: ['/ip4/0.0.0.0/tcp/4002'],
      bootstrap: [`/ip4/10.0.0.1/tcp/4001/p2p/${PEER}`],
      json: true,
      maxStorage: 512 * 1024 * 1024,
      retention: 7 * 24 * 60 * 60 * 1000,
      maxMemory: 128 * 1024 * 1024,
      maxGroups: 200,
    })
  })

  it('reports bad sizes and durations with the flag and an example', () => {
    const size = usageError(() => parseArgs(['relay', '--max-storage', '1XB']))
    expect(size.message).toBe(
      "invalid '--max-storage' value '1XB': expected a size like 512MiB, 1GB or a number of bytes",
    )
    expect(size.command).toBe('relay')
    expect(usageError(() => parseArgs(['relay', '--retention', '7'])).message).toBe(
      "invalid '--retention' value '7': expected a duration like 7d, 12h or 30m (a unit is required)",
    )
    for (const bad of ['0', '1.5', '10k', ' ']) {
      const count = usageError(() => parseArgs(['relay', '--max-groups', bad]))
      expect(count.message).toBe(
        `invalid '--max-groups' value '${bad}': expected a whole number of at least 1`,
      )
      expect(count.command).toBe('relay')
    }
  })

  it('rejects start-only options', () => {
    expect(usageError(() => parseArgs(['relay', '--name', 'a'])).message).toBe(
      "unknown option '--name' for 'relay'",
    )
    expect(usageError(() => parseArgs(['relay', '--no-mdns'])).message).toBe(
      "unknown option '--no-mdns' for 'relay'",
    )
  })
})

describe('parseArgs: help, version and commands', () => {
  it('returns help for the program and for each command', () => {
    expect(parseArgs(['--help'])).toEqual({ command: 'help', topic: undefined })
    expect(parseArgs(['-h'])).toEqual({ command: 'help', topic: undefined })
    expect(parseArgs(['help'])).toEqual({ command: 'help', topic: undefined })
    expect(parseArgs(['help', 'relay'])).toEqual({ command: 'help', topic: 'relay' })
    expect(parseArgs(['start', '--help'])).toEqual({ command: 'help', topic: 'start' })
    expect(parseArgs(['--help', 'start'])).toEqual({ command: 'help', topic: 'start' })
  })

  it('lets --help win over an otherwise invalid command line', () => {
    expect(parseArgs(['start', '--bogus', '--create', 'a', '--join', 'b', '-h'])).toEqual({
      command: 'help',
      topic: 'start',
    })
    // ...but not when it comes after `--`, where it is just an argument
    expect(usageError(() => parseArgs(['start', '--name', 'a', '--', '--help'])).message).toBe(
      "unexpected argument '--help'",
    )
  })

  it('returns version', () => {
    expect(parseArgs(['--version'])).toEqual({ command: 'version' })
    expect(parseArgs(['-v'])).toEqual({ command: 'version' })
  })

  it('rejects a missing or unknown command, suggesting a close one', () => {
    expect(usageError(() => parseArgs([])).message).toBe('missing command')
    expect(usageError(() => parseArgs(['strat'])).message).toBe(
      "unknown command 'strat' (did you mean 'start'?)",
    )
    expect(usageError(() => parseArgs(['chat'])).message).toBe("unknown command 'chat'")
    expect(usageError(() => parseArgs(['help', 'chat'])).message).toBe("unknown command 'chat'")
    expect(usageError(() => parseArgs(['--json'])).message).toBe("unknown option '--json'")
    expect(usageError(() => parseArgs(['--version', 'x'])).message).toBe("unexpected argument 'x'")
  })
})

describe('parseSize', () => {
  it.each([
    ['1024', 1024],
    ['1B', 1],
    ['512MiB', 536870912],
    ['1GB', 1e9],
    ['1gib', 1024 ** 3],
    ['1.5 GiB', 1.5 * 1024 ** 3],
    ['10kB', 10_000],
    ['2KiB', 2048],
    ['1TiB', 1024 ** 4],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes)
  })

  it.each(['', 'lots', '1 XB', '1M', '-5MB', '1e9', 'MiB'])('rejects %j', (text) => {
    expect(usageError(() => parseSize(text)).message).toBe(
      `invalid size '${text}': expected a size like 512MiB, 1GB or a number of bytes`,
    )
  })

  it('rejects zero and sizes too large to count exactly', () => {
    expect(usageError(() => parseSize('0')).message).toBe("invalid size '0': must be at least 1 byte")
    expect(usageError(() => parseSize('0.5B')).message).toBe("invalid size '0.5B': must be at least 1 byte")
    expect(usageError(() => parseSize('99999TiB')).message).toBe("invalid size '99999TiB': too large")
  })
})

describe('parseDuration', () => {
  it.each([
    ['7d', 7 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['30m', 30 * 60_000],
    ['45s', 45_000],
    ['250ms', 250],
    ['2w', 14 * 86_400_000],
    ['1h30m', 90 * 60_000],
    ['1.5d', 36 * 3_600_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  it.each(['', 'forever', '7 days', 'd', '1h 30m', '-1d', '5y'])('rejects %j', (text) => {
    expect(usageError(() => parseDuration(text)).message).toBe(
      `invalid duration '${text}': expected a duration like 7d, 12h or 30m`,
    )
  })

  it('asks for a unit on a bare number, and rejects zero', () => {
    expect(usageError(() => parseDuration('30')).message).toBe(
      "invalid duration '30': expected a duration like 7d, 12h or 30m (a unit is required)",
    )
    expect(usageError(() => parseDuration('0d')).message).toBe(
      "invalid duration '0d': must be longer than zero",
    )
  })
})

describe('defaultDataDir', () => {
  it('uses XDG_DATA_HOME on Linux, else ~/.local/share', () => {
    expect(defaultDataDir('alice', { HOME: '/home/al', XDG_DATA_HOME: '/data' }, 'linux')).toBe(
      '/data/p2pchat/alice',
    )
    expect(defaultDataDir('alice', { HOME: '/home/al' }, 'linux')).toBe('/home/al/.local/share/p2pchat/alice')
    // The XDG spec says to ignore a relative XDG_DATA_HOME.
    expect(defaultDataDir('alice', { HOME: '/home/al', XDG_DATA_HOME: 'rel' }, 'linux')).toBe(
      '/home/al/.local/share/p2pchat/alice',
    )
  })

  it('uses Application Support on macOS and %APPDATA% on Windows', () => {
    expect(defaultDataDir('alice', { HOME: '/Users/al', XDG_DATA_HOME: '/x' }, 'darwin')).toBe(
      '/Users/al/Library/Application Support/p2pchat/alice',
    )
    expect(defaultDataDir('alice', { APPDATA: 'C:\\Users\\al\\AppData\\Roaming' }, 'win32')).toBe(
      'C:\\Users\\al\\AppData\\Roaming\\p2pchat\\alice',
    )
    expect(defaultDataDir('alice', { USERPROFILE: 'C:\\Users\\al' }, 'win32')).toBe(
      'C:\\Users\\al\\AppData\\Roaming\\p2pchat\\alice',
    )
  })

  it('gives the relay its own directory', () => {
    expect(defaultRelayDataDir({ HOME: '/home/al' }, 'linux')).toBe('/home/al/.local/share/p2pchat-relay')
    expect(defaultRelayDataDir({ APPDATA: 'D:\\roam' }, 'win32')).toBe('D:\\roam\\p2pchat-relay')
  })

  it('keeps a hostile name inside p2pchat/', () => {
    const env = { HOME: '/home/al' }
    for (const name of ['..', '.', '../../etc', 'a/../../b', '..\\..\\x', '/abs', 'x/..']) {
      const dir = defaultDataDir(name, env, 'linux')
      const segment = dir.slice('/home/al/.local/share/p2pchat/'.length)
      expect(dir.startsWith('/home/al/.local/share/p2pchat/')).toBe(true)
      expect(segment).not.toMatch(/[/\\]/)
      expect(segment).not.toContain('..')
      expect(segment).not.toBe('.')
    }
    expect(defaultDataDir('../../etc', env, 'linux')).toBe(
      '/home/al/.local/share/p2pchat/%2E%2E%2F.%2E%2Fetc',
    )
    const win = defaultDataDir('..\\..\\Windows', { APPDATA: 'C:\\r' }, 'win32')
    expect(win).toBe('C:\\r\\p2pchat\\%2E%2E%5C.%2E%5CWindows')
  })
})

describe('pathSegmentFor', () => {
  it('leaves ordinary names, including non-Latin ones, readable', () => {
    expect(pathSegmentFor('alice')).toBe('alice')
    expect(pathSegmentFor('Zoë Ng')).toBe('Zoë Ng')
    expect(pathSegmentFor('a.b')).toBe('a.b')
  })

  it('encodes what is unsafe on any platform', () => {
    expect(pathSegmentFor('.hidden')).toBe('%2Ehidden')
    expect(pathSegmentFor('a:b*c?')).toBe('a%3Ab%2Ac%3F')
    expect(pathSegmentFor('trail. ')).toBe('trail%2E%20')
    expect(pathSegmentFor('CON')).toBe('%43ON')
    expect(pathSegmentFor('nul.txt')).toBe('%6Eul.txt')
    expect(pathSegmentFor('console')).toBe('console')
  })

  it('never maps two names to one directory', () => {
    const names = ['a/b', 'a%2Fb', 'a_b', 'a\\b', '..', '%2E.', '.', 'CON', '%43ON']
    const segments = new Set(names.map(pathSegmentFor))
    expect(segments.size).toBe(names.length)
  })

  it('refuses an empty name', () => {
    expect(usageError(() => pathSegmentFor('')).message).toBe('a name is needed to choose a data directory')
  })
})

describe('usage', () => {
  it('describes the program, pointing at each command', () => {
    const text = usage()
    expect(text).toContain('p2pchat start --name <name>')
    expect(text).toContain('p2pchat relay')
    expect(text).toContain('--version')
    expect(text).toContain("Run 'p2pchat help <command>'")
  })

  it('lists every start option with its default, and examples', () => {
    const text = usage('start')
    for (const flag of ['--name', '--create', '--join', '--group', '--data-dir', '--listen', '--bootstrap']) {
      expect(text).toContain(flag)
    }
    expect(text).toContain('--no-mdns')
    expect(text).toContain('--json')
    expect(text).toContain('default: /ip4/0.0.0.0/tcp/0')
    expect(text).toMatch(/Examples:\n {2}p2pchat start --name alice --create team/)
  })

  it('lists every relay option with its default', () => {
    const text = usage('relay')
    for (const flag of [
      '--listen',
      '--bootstrap',
      '--data-dir',
      '--max-storage',
      '--retention',
      '--max-groups',
      '--max-memory',
      '--json',
    ]) {
      expect(text).toContain(flag)
    }
    expect(text).toContain('default: /ip4/0.0.0.0/tcp/4001')
    expect(text).toContain('(default: 1GiB)')
    expect(text).toContain('(default: 30d)')
    expect(text).toContain('(default: 1000)')
    expect(text).toContain('(default: 256MiB)')
  })

  it('has examples that parse', () => {
    for (const topic of [undefined, 'start', 'relay'] as const) {
      const examples = (usage(topic).split('Examples:\n')[1] ?? '')
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.startsWith('p2pchat ') && !line.includes('<') && !line.endsWith('\\'))
      expect(examples.length).toBeGreaterThan(0)
      for (const example of examples) {
        const argv = example.split(/\s+/).slice(1)
        expect(() => parseArgs(argv), example).not.toThrow()
      }
    }
  })

  it('keeps help lines within 100 columns', () => {
    for (const topic of [undefined, 'start', 'relay'] as const) {
      for (const line of usage(topic).split('\n')) {
        expect(line.length, line).toBeLessThanOrEqual(100)
      }
    }
  })
})
