/**
 * What a node keeps on its own disk: the data directory is its owner's alone (decrypted messages and the
 * private key are in it), and an identity key other users can read is refused.
 */

import { chmodSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { createChatNode, InsecureIdentityKeyError, loadOrCreateIdentity } from '../../src/node/index.js'
import { createRelayNode } from '../../src/relay/index.js'
import { cleanupAfterEach, tempDir, testChatInit } from '../fixtures/chat.js'

const cleanups = cleanupAfterEach()

const scratch = (label: string): Promise<string> => tempDir(label, cleanups)

const modeOf = (path: string): string => (statSync(path).mode & 0o777).toString(8)

/** The mode of every entry of `dir`, by name. */
function modes(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((name) => [name, modeOf(join(dir, name))]))
}

describe('data directory permissions', () => {
  it('creates the data directory 0700 and every file in it 0600, the database -wal and -shm included', async () => {
    const root = await scratch('perms')
    // the default is nested too (~/.local/share/p2pchat/<name>): parents that did not exist are private
    const dataDir = join(root, 'p2pchat', 'alice')
    const node = await createChatNode(testChatInit(dataDir, 'alice'))
    cleanups.push(() => node.stop())
    await node.createGroup('private')
    await node.send('decrypted text on disk')

    expect(modeOf(join(root, 'p2pchat'))).toBe('700')
    expect(modeOf(dataDir)).toBe('700')
    const open = modes(dataDir)
    // the files whose creation is at stake are all there while the node runs
    expect(Object.keys(open)).toEqual(
      expect.arrayContaining(['identity.key', 'lock', 'p2pchat.db', 'p2pchat.db-wal', 'p2pchat.db-shm']),
    )
    expect(open).toEqual(Object.fromEntries(Object.keys(open).map((name) => [name, '600'])))

    await node.stop()
    const closed = modes(dataDir)
    expect(closed).toEqual(Object.fromEntries(Object.keys(closed).map((name) => [name, '600'])))
  })

  it('restricts to 0600 the database, -wal and -shm files an older version left readable by others', async () => {
    const dataDir = await scratch('older')
    await loadOrCreateIdentity(dataDir)
    // an older p2pchat, killed while running: the database and its -wal and -shm are all on disk
    const db = new DatabaseSync(join(dataDir, 'p2pchat.db'))
    cleanups.push(() => db.close())
    db.exec('PRAGMA journal_mode = WAL; CREATE TABLE old (text TEXT); INSERT INTO old VALUES (1)')
    for (const name of ['p2pchat.db', 'p2pchat.db-wal', 'p2pchat.db-shm'])
      chmodSync(join(dataDir, name), 0o644)

    const node = await createChatNode(testChatInit(dataDir, 'alice'))
    cleanups.push(() => node.stop())
    expect(modes(dataDir)).toMatchObject({
      'p2pchat.db': '600',
      'p2pchat.db-wal': '600',
      'p2pchat.db-shm': '600',
    })
  })
})

describe('an identity key other users can read or write', () => {
  it('is refused by a chat node and by a relay, with the chmod that fixes it', async () => {
    const dataDir = await scratch('exposed')
    const identity = await loadOrCreateIdentity(dataDir)
    const keyFile = join(dataDir, 'identity.key')

    chmodSync(keyFile, 0o644)
    const readable = {
      name: InsecureIdentityKeyError.name,
      message: `${keyFile} is readable by other users; run: chmod 600 ${keyFile}`,
    }
    await expect(createChatNode(testChatInit(dataDir, 'alice'))).rejects.toMatchObject(readable)
    await expect(createRelayNode({ dataDir })).rejects.toMatchObject(readable)

    chmodSync(keyFile, 0o620)
    await expect(createChatNode(testChatInit(dataDir, 'alice'))).rejects.toMatchObject({
      name: InsecureIdentityKeyError.name,
      message: `${keyFile} is writable by other users; run: chmod 600 ${keyFile}`,
    })

    // the refusal left the data directory unlocked, and the fix it names works
    chmodSync(keyFile, 0o600)
    const node = await createChatNode(testChatInit(dataDir, 'alice'))
    cleanups.push(() => node.stop())
    expect(node.peerId).toBe(identity.memberId)
  })

  it('quotes a path with spaces in the chmod it suggests', async () => {
    const dataDir = join(await scratch('quoted'), "bob's data")
    await loadOrCreateIdentity(dataDir)
    const keyFile = join(dataDir, 'identity.key')
    chmodSync(keyFile, 0o640)
    await expect(createChatNode(testChatInit(dataDir, 'bob'))).rejects.toMatchObject({
      message: `${keyFile} is readable by other users; run: chmod 600 '${keyFile.replaceAll("'", "'\\''")}'`,
    })
  })
})
