/**
 * The group on screen is the CLI session's state, no longer the node's: it is remembered in the data
 * directory, so the next `p2pchat start` without `--group` opens the group used last.
 */
import { describe, expect, it } from 'vitest'
import { ChatSession } from '../../src/cli/session.js'
import { cleanupAfterEach, createTestChatNode, tempDir } from '../fixtures/chat.js'

const cleanups = cleanupAfterEach()

describe('ChatSession', () => {
  it('opens the group used last after a restart, else the newest; the node itself selects nothing', async () => {
    const dir = await tempDir('session', cleanups)
    const first = await createTestChatNode(dir, 'alice')
    const team = await first.createGroup('team')
    const other = await first.createGroup('other')
    const fresh = new ChatSession(first)
    fresh.restore()
    expect(fresh.groupId).toBe(other.id)
    expect(fresh.select('team')).toEqual({ ...team, missed: 0 })
    expect(fresh.status().group).toMatchObject({ id: team.id, name: 'team' })
    await first.stop()

    const again = await createTestChatNode(dir, 'alice')
    cleanups.push(() => again.stop())
    const restored = new ChatSession(again)
    restored.restore()
    expect(restored.groupId).toBe(team.id)
    expect(again.status().group).toBeNull()
    expect(() => restored.select('nowhere')).toThrow(expect.objectContaining({ name: 'NotInGroupError' }))
  })
})
