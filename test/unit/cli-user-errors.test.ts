import { describe, expect, it } from 'vitest'
import { listenErrorMessage, noCurrentEpochMessage, userErrorMessage } from '../../src/cli/user-errors.js'
import { InsecureIdentityKeyError } from '../../src/node/errors.js'
import { admissionLimits } from '../../src/relay/admission.js'

/** An error with a given `.name`, as the node and libp2p throw them. */
function named(name: string, message: string, extra: Record<string, unknown> = {}): Error {
  const err = new Error(message)
  Object.defineProperty(err, 'name', { value: name })
  return Object.assign(err, extra)
}

/** The message libp2p 3's transport manager builds when listening fails (copied from a real run). */
const LIBP2P_HEADER =
  'Some configured addresses failed to be listened on, you may need to remove one or more listen addresses from your configuration or set `transportManager.faultTolerance` to NO_FATAL:\n'
const inUse = (addr: string, host: string): string =>
  `\n  ${addr}: Error: listen EADDRINUSE: address already in use ${host}\n      at Server.setupListenHandle [as _listen2] (node:net:2328:16)\n      at listenInCluster (node:net:2437:12)\n`

describe('listenErrorMessage', () => {
  it('says which address could not be listened on, and why, in one line', () => {
    const message = LIBP2P_HEADER + inUse('/ip4/0.0.0.0/tcp/4001', '0.0.0.0:4001')
    expect(listenErrorMessage(message)).toBe('cannot listen on /ip4/0.0.0.0/tcp/4001: address already in use')
  })

  it('lists every failed address, IPv6 ones included', () => {
    const message =
      LIBP2P_HEADER +
      inUse('/ip6/::1/tcp/4001', '::1:4001') +
      '\n  /ip4/203.0.113.7/tcp/0: Error: listen EADDRNOTAVAIL: address not available 203.0.113.7\n      at x (node:net:1:1)\n'
    const line = listenErrorMessage(message)
    expect(line).not.toContain('\n')
    expect(line).toBe(
      'cannot listen on /ip6/::1/tcp/4001: address already in use; cannot listen on /ip4/203.0.113.7/tcp/0: address not available (no network interface of this machine has that IP address)',
    )
  })

  it('explains an address no transport can listen on', () => {
    const message = `${LIBP2P_HEADER}\n  /ip4/127.0.0.1/udp/5: UnsupportedListenAddressError: No transport was configured to listen on this address\n      at file:///x.js:1:1\n`
    expect(listenErrorMessage(message)).toMatch(
      /^cannot listen on \/ip4\/127\.0\.0\.1\/udp\/5: no transport can listen on it \(p2pchat listens on TCP/,
    )
  })

  it('falls back to the first line when the format is not recognised', () => {
    expect(listenErrorMessage('something else\n  at x')).toBe(
      'cannot listen on the --listen addresses: something else',
    )
  })
})

describe('userErrorMessage', () => {
  it("maps libp2p's listen failure, also when it is another error's cause", () => {
    const listen = named(
      'UnsupportedListenAddressesError',
      LIBP2P_HEADER + inUse('/ip4/0.0.0.0/tcp/4001', 'x'),
    )
    const expected = 'cannot listen on /ip4/0.0.0.0/tcp/4001: address already in use'
    expect(userErrorMessage(listen)).toBe(expected)
    expect(userErrorMessage(new Error('could not start', { cause: listen }))).toBe(expected)
  })

  it('maps a bare Node.js listen error (EADDRINUSE in a cause)', () => {
    const raw = named('Error', 'listen EADDRINUSE: address already in use 0.0.0.0:4001', {
      code: 'EADDRINUSE',
      syscall: 'listen',
      address: '0.0.0.0',
      port: 4001,
    })
    expect(userErrorMessage(new Error('start failed', { cause: raw }))).toBe(
      'cannot listen on 0.0.0.0 port 4001: address already in use',
    )
  })

  it('prints the message of errors the user can fix, on one line', () => {
    for (const name of [
      'DataDirLockedError',
      'InvalidInviteError',
      'NotInGroupError',
      'InvalidArgumentError',
    ]) {
      expect(userErrorMessage(named(name, `a ${name}\nsecond line`)), name).toBe(`a ${name} second line`)
    }
    expect(
      userErrorMessage(
        named('DataDirLockedError', 'another p2pchat is using /home/al/.local/share/p2pchat/al'),
      ),
    ).toBe('another p2pchat is using /home/al/.local/share/p2pchat/al')
  })

  it('tells the user how to fix an identity key other users can read', () => {
    const key = '/home/al/.local/share/p2pchat/al/identity.key'
    expect(userErrorMessage(new InsecureIdentityKeyError(key, 0o644))).toBe(
      `${key} is readable by other users; run: chmod 600 ${key}`,
    )
  })

  it('tells a relay operator which limits do not fit together', () => {
    let thrown: unknown
    try {
      admissionLimits({ maxMemory: 64 * 1024 * 1024 })
    } catch (err) {
      thrown = err
    }
    expect(userErrorMessage(thrown)).toMatch(
      /^a memory budget of 67108864 bytes does not cover the pending buffers of 1000 groups \(\d+ bytes\): raise it, or lower the number of groups$/,
    )
  })

  it('returns undefined for bugs, so the caller prints the stack', () => {
    expect(userErrorMessage(new TypeError('x is undefined'))).toBeUndefined()
    expect(userErrorMessage(named('IncompatibleGossipsubError', 'bad gossipsub'))).toBeUndefined()
    expect(userErrorMessage('a string')).toBeUndefined()
    expect(userErrorMessage(undefined)).toBeUndefined()
  })
})

describe('noCurrentEpochMessage', () => {
  it('explains that a rekey is awaited and to retry', () => {
    expect(noCurrentEpochMessage('no usable epoch key yet: waiting for a rekey')).toBe(
      'no usable group key yet: waiting for a member to rekey; try again shortly',
    )
    expect(noCurrentEpochMessage('')).toBe(
      'no usable group key yet: waiting for a member to rekey; try again shortly',
    )
  })

  it("keeps the core's reason when it says something else", () => {
    expect(noCurrentEpochMessage('this member holds no key for the current epoch yet')).toBe(
      'no usable group key yet (this member holds no key for the current epoch yet); try again shortly',
    )
  })
})
