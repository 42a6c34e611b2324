/**
 * The data directory lock: one p2pchat process per data directory, and a lock left by a process that
 * died does not keep the directory closed.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { lockDataDir } from '../../src/node/lock.js'

describe('data directory lock', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2pchat-test-lock-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('holds the pid, refuses a second holder, and is free again once released', async () => {
    const lock = lockDataDir(dir)
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid))
    expect(() => lockDataDir(dir)).toThrow(
      expect.objectContaining({
        name: 'DataDirLockedError',
        message: `${dir} is in use by another p2pchat process (pid ${process.pid})`,
        pid: process.pid,
      }),
    )
    lock.release()
    lock.release()
    expect(existsSync(join(dir, 'lock'))).toBe(false)
    lockDataDir(dir).release()
    // nothing is left behind but what was there
    expect(await readdir(dir)).toEqual([])
  })

  it('refuses a directory a running process holds', () => {
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`)
    expect(() => lockDataDir(dir)).toThrow(
      expect.objectContaining({ name: 'DataDirLockedError', pid: process.ppid }),
    )
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.ppid))
  })

  it('takes over a lock whose process is gone', () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    })
    const deadPid = Number(gone.stdout)
    expect(deadPid).toBeGreaterThan(0)
    writeFileSync(join(dir, 'lock'), `${deadPid}\n`)
    const lock = lockDataDir(dir)
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid))
    lock.release()
  })

  it('takes over a lock with our own pid that this process does not hold (left by an earlier process)', () => {
    writeFileSync(join(dir, 'lock'), `${process.pid}\n`)
    const lock = lockDataDir(dir)
    expect(() => lockDataDir(dir)).toThrow(expect.objectContaining({ name: 'DataDirLockedError' }))
    lock.release()
  })
})
