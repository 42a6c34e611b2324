import { closeSync, fchmodSync, fstatSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { Identity } from '../crypto/index.js'
import { InsecureIdentityKeyError } from './errors.js'

const log = logger('p2pchat:node:data-dir')

/** Permission bits that let users other than the owner read or write a file. */
const OTHERS_READ_WRITE = 0o066

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

/**
 * Reads a private key file, refusing one that users other than its owner can read (they could act as
 * this member) or write (they could replace it), as ssh refuses such a key. Returns undefined when the
 * file does not exist. Windows is not checked: its POSIX mode bits do not reflect who may read a file.
 *
 * @throws {InsecureIdentityKeyError} the file is readable or writable by group or others
 */
export function readPrivateKeyFile(path: string): Uint8Array | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const mode = fstatSync(fd).mode & 0o777
    if (process.platform !== 'win32' && (mode & OTHERS_READ_WRITE) !== 0) {
      throw new InsecureIdentityKeyError(resolve(path), mode)
    }
    return new Uint8Array(readFileSync(fd))
  } finally {
    closeSync(fd)
  }
}

/**
 * Loads the identity key from `dir/identity.key`, creating it (mode 0600, in a directory of mode 0700) on
 * first use.
 *
 * @throws {InsecureIdentityKeyError} the key file is readable or writable by group or others
 */
export async function loadOrCreateIdentity(dir: string): Promise<Identity> {
  makeDataDir(dir)
  const path = join(dir, 'identity.key')
  const stored = readPrivateKeyFile(path)
  if (stored !== undefined) return Identity.fromProtobuf(stored)
  const identity = await Identity.generate()
  // created with its mode, never widened first: 'wx' fails rather than write into a file someone made
  writeFileSync(path, identity.toProtobuf(), { mode: 0o600, flag: 'wx' })
  return identity
}
