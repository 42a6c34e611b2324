/**
 * @packageDocumentation
 *
 * What a peer that holds no log of a group yet (a joiner not added) is shown of the group's messages.
 * Members send the log only to members (`sync-access.ts`), so such a peer cannot tell a member's
 * envelope from a stranger's; it can check the signature, and it shows the envelope for what it is:
 * ciphertext, from a peer id, under no name. That is what a non-member saw of the old relay server
 * too, and what a removed member still sees of what follows its removal.
 */
import { LRUCache } from 'lru-cache'
import { ciphertextPreview, type Envelope } from '../membership/index.js'
import type { EncryptedNotice } from './chat-events.js'

/** Message ids remembered, so one envelope is shown once however often gossip brings it. */
const REMEMBERED = 1024

/** The notices of unreadable envelopes for one group, each shown once. */
export class UnreadableMessages {
  readonly #shown = new LRUCache<string, true>({ max: REMEMBERED })

  /** The notice for `envelope`, or `undefined` if it was shown already. */
  notice(groupId: string, envelope: Envelope): EncryptedNotice | undefined {
    if (this.#shown.has(envelope.id)) return undefined
    this.#shown.set(envelope.id, true)
    return {
      group: groupId,
      id: envelope.id,
      from: envelope.sender,
      // no log, so no signed name: the sender is its peer id alone
      name: '',
      bytes: envelope.ct.length,
      preview: ciphertextPreview(envelope.ct),
    }
  }
}
