import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { makeDataDir } from './data-dir.js'
import { DataDirLockedError } from './errors.js'

const log = logger('p2pchat:node:lock')

/** Name of the lock file inside a data directory. */
export const LOCK_FILE = 'lock'

/** Lock files this process holds (absolute paths): our own pid in a lock file is only ours if listed. */
const held = new Set<string>()

/** A held lock on a data directory; see {@link lockDataDir}. */
export interface DataDirLock {
  /** Path of the lock file. */
  readonly path: string
  /** Deletes the lock file if it is still ours. Idempotent; never throws. */
  release(): void
}

/**
 * Takes the lock of `dataDir` for this process: creates `<dataDir>/lock` exclusively, holding the pid.
 * A lock left by a process that no longer runs is taken over.
 *
 * @throws {DataDirLockedError} a running process holds it
 */
export function lockDataDir(dataDir: string): DataDirLock {
  makeDataDir(dataDir)
  const path = resolve(join(dataDir, LOCK_FILE))
  // written aside, then linked into place: link fails if the lock exists (as O_EXCL would), and a lock
  // file is never seen half written
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`
  // 'wx': the mode applies only to a file this call creates
  writeFileSync(temp, `${process.pid}\n`, { mode: 0o600, flag: 'wx' })
  try {
    return acquire(dataDir, path, temp)
  } finally {
    try {
      unlinkSync(temp)
    } catch {
      // already gone
    }
  }
}

function acquire(dataDir: string, path: string, temp: string): DataDirLock {
  // a stale lock is removed and creation retried; a retry can lose to another process taking it first
  for (let attempt = 0; ; attempt++) {
    if (create(path, temp)) {
      held.add(path)
      return lockAt(path)
    }
    const holder = readPid(path)
    if (holder !== undefined && isRunning(holder, path)) throw new DataDirLockedError(dataDir, holder)
    if (attempt >= 2) throw new DataDirLockedError(dataDir, holder ?? 0)
    // someone else may have taken it over meanwhile: only remove what was judged stale
    if (readPid(path) !== holder) continue
    log('taking over the stale lock %s (pid %s)', path, holder ?? 'unreadable')
    try {
      unlinkSync(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
}

/** Creates the lock file from `temp`; false if it exists. */
function create(path: string, temp: string): boolean {
  try {
    linkSync(temp, path)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw err
  }
  // a file system without hard links: create exclusively and write at once
  try {
    writeFileSync(path, `${process.pid}\n`, { mode: 0o600, flag: 'wx' })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
}

function lockAt(path: string): DataDirLock {
  let released = false
  return {
    path,
    release() {
      if (released) return
      released = true
      held.delete(path)
      try {
        if (readPid(path) === process.pid) unlinkSync(path)
      } catch (err) {
        log.error('could not remove the lock %s: %s', path, (err as Error).message)
      }
    },
  }
}

/** The pid in a lock file; undefined if it is missing, empty (being written) or not a pid. */
function readPid(path: string): number | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
  const pid = Number.parseInt(text.trim(), 10)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

function isRunning(pid: number, path: string): boolean {
  // our own pid: held by this process (another node on the same directory), or left by an earlier
  // process that had the same pid
  if (pid === process.pid) return held.has(path)
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it runs, under another user
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
