/**
 * Where the CLI keeps a peer's or a relay's state when no `--data-dir` is given: the platform's rule
 * for per-user application data, and a safe directory name for each `--name`. This only chooses the
 * path; the node creates it, private to the user (`makeDataDir` in src/node/data-dir.ts).
 *
 * @packageDocumentation
 */

import { homedir } from 'node:os'
import { posix, win32 } from 'node:path'
import { UsageError } from './errors.js'

/**
 * The platform's per-user data directory, where applications keep their state:
 * `$XDG_DATA_HOME` (if absolute) or `~/.local/share` on Linux and other Unixes,
 * `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
 */
function userDataDir(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  if (platform === 'win32') {
    const appData = env.APPDATA
    if (appData !== undefined && appData !== '') {
      return appData
    }
    return win32.join(env.USERPROFILE || homedir(), 'AppData', 'Roaming')
  }
  const home = env.HOME || homedir()
  if (platform === 'darwin') {
    return posix.join(home, 'Library', 'Application Support')
  }
  const xdg = env.XDG_DATA_HOME
  // The XDG spec says relative values are invalid and must be ignored.
  if (xdg !== undefined && posix.isAbsolute(xdg)) {
    return xdg
  }
  return posix.join(home, '.local', 'share')
}

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i

/**
 * Turn a display name into a single, safe path segment on every platform.
 *
 * Characters that are unsafe in a file name (path separators, `:*?"<>|`, controls, `%` itself), a
 * dot that starts the segment or follows another dot (so no `.`, `..` or hidden directory), trailing
 * dots and spaces (which Windows drops) and the first letter of Windows device names are
 * percent-encoded. Because `%` is encoded too, two different names never share a directory.
 *
 * @example
 * ```ts
 * pathSegmentFor('alice')     // → 'alice'
 * pathSegmentFor('../etc')    // → '%2E%2E%2Fetc'
 * ```
 */
export function pathSegmentFor(name: string): string {
  if (name === '') {
    throw new UsageError('a name is needed to choose a data directory')
  }
  const encode = (char: string): string =>
    [...Buffer.from(char, 'utf8')]
      .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)
      .join('')

  const chars = [...name.normalize('NFC')]
  const out = chars.map((char, i) => {
    const unsafe =
      /[/\\:*?"<>|%\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(char) ||
      (char === '.' && (i === 0 || chars[i - 1] === '.')) ||
      // Trailing dots and spaces are silently dropped by Windows.
      ((char === '.' || char === ' ') && chars.slice(i).every((c) => c === '.' || c === ' '))
    return unsafe ? encode(char) : char
  })
  if (WINDOWS_RESERVED.test(name)) {
    out[0] = encode(chars[0] ?? '')
  }
  return out.join('')
}

/**
 * Where `p2pchat start --name <name>` keeps its identity, group keys and membership log when no
 * `--data-dir` is given: `<user data dir>/p2pchat/<name>`, where the user data dir is
 * `$XDG_DATA_HOME` or `~/.local/share` on Linux, `~/Library/Application Support` on macOS and
 * `%APPDATA%` on Windows. The name is made a safe path segment first (see {@link pathSegmentFor}), so
 * a name can never point outside `p2pchat/`.
 *
 * @param name - the `--name` the peer runs as
 * @param env - environment variables to read (`HOME`, `XDG_DATA_HOME`, `APPDATA`, `USERPROFILE`)
 * @param platform - the platform whose conventions to follow
 *
 * @example
 * ```ts
 * defaultDataDir('alice', { HOME: '/home/al' }, 'linux') // → '/home/al/.local/share/p2pchat/alice'
 * ```
 */
export function defaultDataDir(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const path = platform === 'win32' ? win32 : posix
  return path.join(userDataDir(env, platform), 'p2pchat', pathSegmentFor(name))
}

/**
 * Where `p2pchat relay` keeps its identity and stored ciphertext when no `--data-dir` is given:
 * `<user data dir>/p2pchat-relay` (see {@link defaultDataDir} for the user data dir).
 *
 * @example
 * ```ts
 * defaultRelayDataDir({ HOME: '/Users/al' }, 'darwin') // → '/Users/al/Library/Application Support/p2pchat-relay'
 * ```
 */
export function defaultRelayDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const path = platform === 'win32' ? win32 : posix
  return path.join(userDataDir(env, platform), 'p2pchat-relay')
}
