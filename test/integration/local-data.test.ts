/**
 * What a node keeps on its own disk and how it shows it back: the data directory is its owner's alone
 * (decrypted messages and the private key are in it), an identity key other users can read is refused,
 * and history comes back in the order messages arrived, with a sender's far-future time clamped.
 */

import { chmodSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import type { Group } from '../../src/membership/index.js'
import { InsecureIdentityKeyError, loadOrCreateIdentity } from '../../src/node/index.js'
import { encodeGossip, topicOf } from '../../src/node/wire.js'
import { createRelayNode } from '../../src/relay/index.js'
import {
  cleanupAfterEach,
  createChatNodes,
  createTestChatNode,
  tempDir,
  waitForGroupMesh,
  waitForMembers,
} from '../fixtures/chat.js'

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
    const node = await createTestChatNode(dataDir, 'alice')
    cleanups.push(() => node.stop())
    const { id: groupId } = await node.createGroup('private')
    await node.send(groupId, 'decrypted text on disk')

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

    const node = await createTestChatNode(dataDir, 'alice')
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
    await expect(createTestChatNode(dataDir, 'alice')).rejects.toMatchObject(readable)
    await expect(createRelayNode({ dataDir })).rejects.toMatchObject(readable)

    chmodSync(keyFile, 0o620)
    await expect(createTestChatNode(dataDir, 'alice')).rejects.toMatchObject({
      name: InsecureIdentityKeyError.name,
      message: `${keyFile} is writable by other users; run: chmod 600 ${keyFile}`,
    })

    // the refusal left the data directory unlocked, and the fix it names works
    chmodSync(keyFile, 0o600)
    const node = await createTestChatNode(dataDir, 'alice')
    cleanups.push(() => node.stop())
    expect(node.peerId).toBe(identity.memberId)
  })

  it('quotes a path with spaces in the chmod it suggests', async () => {
    const dataDir = join(await scratch('quoted'), "bob's data")
    await loadOrCreateIdentity(dataDir)
    const keyFile = join(dataDir, 'identity.key')
    chmodSync(keyFile, 0o640)
    await expect(createTestChatNode(dataDir, 'bob')).rejects.toMatchObject({
      message: `${keyFile} is readable by other users; run: chmod 600 '${keyFile.replaceAll("'", "'\\''")}'`,
    })
  })
})

describe('history order and sender clocks', () => {
  it('shows history in arrival order, and a far-future sender time as the arrival time, live and later', async () => {
    const net = await createChatNodes(2, { names: ['alice', 'bob'] })
    cleanups.push(net.teardown)
    const alice = net.node(0)
    const bob = net.node(1)
    const { id: groupId } = await alice.createGroup('clocks')
    await bob.joinGroup(alice.invite(groupId, { ask: true }))
    await alice.add(groupId, bob.peerId)
    await waitForMembers(bob, groupId, [alice.peerId, bob.peerId])
    await waitForGroupMesh([alice, bob], groupId)

    await alice.send(groupId, 'first')
    // bob's clock is wrong: his messages claim times ahead of alice's. They are sealed by his own replica
    // (so they are valid) with the time given, and published as his node would publish them
    const bobGroup = bob.group(groupId) as Group
    const fromBob = async (text: string, ts: number): Promise<void> => {
      const sealed = await bobGroup.seal(text, ts)
      await bob.libp2p?.services.pubsub.publish(
        topicOf(groupId),
        encodeGossip({ kind: 'message', data: sealed.bytes }),
      )
    }
    const sentAt = Date.now()
    await fromBob('from the year 250000', Date.UTC(250000, 0, 1))
    await net.record(0).waitForText(groupId, 'from the year 250000')
    await fromBob('ten minutes fast', Date.now() + 10 * 60_000)
    await net.record(0).waitForText(groupId, 'ten minutes fast')
    const slightlyFast = Date.now() + 2 * 60_000
    await fromBob('two minutes fast', slightlyFast)
    await net.record(0).waitForText(groupId, 'two minutes fast')
    const receivedBy = Date.now()
    await alice.send(groupId, 'last')

    const live = net.record(0).messages(groupId)
    expect(live.map((m) => m.text)).toEqual([
      'first',
      'from the year 250000',
      'ten minutes fast',
      'two minutes fast',
      'last',
    ])
    // more than 5 minutes ahead: shown at arrival; less: the sender's time, as it is
    for (const text of ['from the year 250000', 'ten minutes fast']) {
      const ts = live.find((m) => m.text === text)?.ts
      expect(ts, text).toBeGreaterThanOrEqual(sentAt)
      expect(ts, text).toBeLessThanOrEqual(receivedBy)
    }
    expect(live.find((m) => m.text === 'two minutes fast')?.ts).toBe(slightlyFast)

    // history: the same messages, in the same order, with the same times, also after a restart
    const shown = live.map(({ text, ts }) => ({ text, ts }))
    expect(alice.history(groupId, 10).map(({ text, ts }) => ({ text, ts }))).toEqual(shown)
    expect(alice.history(groupId, 2).map((m) => m.text)).toEqual(['two minutes fast', 'last'])
    const restarted = await net.restart(0)
    expect(restarted.history(groupId, 10).map(({ text, ts }) => ({ text, ts }))).toEqual(shown)
  }, 60_000)
})
