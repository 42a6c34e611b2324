import { closeSync, fchmodSync, fstatSync, mkdirSync, openSync } from 'node:fs'
import { logger } from '@libp2p/logger'

const log = logger('p2pchat:node:data-dir')

/**
 * Creates a data directory (and missing parents) with mode 0700. The database in it holds decrypted
 * messages and `identity.key` the private key, so only the owner may list or enter it. The mode is
 * passed to `mkdir` rather than set through `process.umask`, which is process-wide: p2pchat is also a
 * library, and its host's other files are none of its business.
 */
export function makeDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
}

/**
 * Makes `path` readable and writable by its owner only: creates it empty with mode 0600 when `create` is
 * set and it is missing, and removes the group and other bits from a file that exists (one an older
 * p2pchat created 0644, say). Returns false when the file does not exist and was not created.
 */
export function makePrivateFile(path: string, { create }: { create: boolean }): boolean {
  let fd: number
  try {
    // 'a' creates without truncating; 'r' only opens. fchmod on the descriptor needs ownership, not write
    // access, and cannot be redirected to another file between a check and the change
    fd = openSync(path, create ? 'a' : 'r', 0o600)
  } catch (err) {
    if (!create && (err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
  try {
    const mode = fstatSync(fd).mode & 0o777
    if ((mode & 0o077) !== 0) {
      log('restricting %s from mode %s to %s', path, mode.toString(8), (mode & 0o700).toString(8))
      fchmodSync(fd, mode & 0o700)
    }
  } finally {
    closeSync(fd)
  }
  return true
}
