import type { Logger } from '@libp2p/interface'
import type { ChatStatus } from './chat-events.js'
import type { GroupRegistry } from './group-registry.js'
import { type ChatStore, persist } from './store.js'

/** What `status` says of a group that depends on its log. */
export type GroupStatusPart = Pick<ChatStatus, 'group' | 'member' | 'removed'>

/** Where a group's snapshot is kept, in the meta table. */
const snapshotKey = (groupId: string): string => `status:${groupId}`

interface Snapshot extends GroupStatusPart {
  /** Bytes of the group's stored events when it was taken: events are only ever added. */
  eventBytes: number
}

/**
 * What `status` says of group `groupId` (nothing when undefined): from its live state, or, before the
 * stored logs are replayed, from the last clean stop's snapshot if no event was stored since.
 */
export function groupStatus(
  groups: GroupRegistry,
  store: ChatStore,
  groupId: string | undefined,
): GroupStatusPart {
  const saved = groups.restored || groupId === undefined ? undefined : readStatusSnapshot(store, groupId)
  if (saved !== undefined) return saved
  const chatGroup = groupId === undefined ? undefined : groups.byId.get(groupId)
  return {
    group: chatGroup === undefined ? null : chatGroup.status(groups.nameOf(chatGroup.group)),
    member: chatGroup?.group.isMember() ?? false,
    removed: chatGroup?.standing().removed ?? null,
  }
}

/**
 * Keeps what `status` says of every group as a node stops cleanly, with the size of the log it was
 * resolved from, so that the next start can say it before it has replayed the logs (see
 * {@link readStatusSnapshot}). Nothing when the logs were not replayed: the snapshots kept still hold.
 * A failure is logged.
 */
export function saveStatusSnapshots(groups: GroupRegistry, store: ChatStore, log: Logger): void {
  if (!groups.restored) return
  persist(log, 'status snapshots', () => {
    for (const groupId of groups.byId.keys()) {
      const { group, member, removed } = groupStatus(groups, store, groupId)
      const snapshot: Snapshot = { eventBytes: store.eventBytes(groupId), group, member, removed }
      store.setMeta(snapshotKey(groupId), JSON.stringify(snapshot))
    }
  })
}

/**
 * What the last clean stop said of a group, if it still holds: taken from the log that is stored now
 * (no event was stored since). A node drops its snapshots once it replays the logs
 * ({@link dropStatusSnapshots}), so after a crash there is none, and the caller replays.
 */
function readStatusSnapshot(store: ChatStore, groupId: string): GroupStatusPart | undefined {
  const text = store.getMeta(snapshotKey(groupId))
  if (text === undefined) return undefined
  try {
    const { eventBytes, group, member, removed } = JSON.parse(text) as Snapshot
    return eventBytes === store.eventBytes(groupId) ? { group, member, removed } : undefined
  } catch {
    return undefined
  }
}

/** Forgets the snapshots of `groupIds`: from now on the live state answers, and may change. */
export function dropStatusSnapshots(store: ChatStore, groupIds: Iterable<string>): void {
  for (const id of groupIds) store.deleteMeta(snapshotKey(id))
}
