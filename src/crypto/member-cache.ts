import { LRUCache } from 'lru-cache'

/**
 * A Map key for `bytes` (a member id, a CID): latin1 maps each byte to one character, read in place with
 * no encoding work.
 */
export function bytesKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

/** Member ids whose derived key is kept. */
const MAX_CACHED_MEMBERS = 4096

/**
 * `derive`, remembered per member id for the {@link MAX_CACHED_MEMBERS} ids used last: deriving a key
 * object costs about as much as using it. Least recently used first out, so a flood of new ids (junk
 * events, join requests) does not evict the members in use. What `derive` throws is not remembered.
 */
export function perMember<V extends object>(
  derive: (memberId: Uint8Array) => V,
): (memberId: Uint8Array) => V {
  const cache = new LRUCache<string, V, Uint8Array>({
    max: MAX_CACHED_MEMBERS,
    memoMethod: (_key, _stale, { context }) => derive(context),
  })
  // the bytes as a string key, read in place: one lookup per signature checked
  return (memberId) => cache.memo(bytesKey(memberId), { context: memberId })
}
