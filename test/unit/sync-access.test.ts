import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { describe, expect, it } from 'vitest'
import { isConfiguredRelay } from '../../src/node/sync-access.js'

const HOP = '/libp2p/circuit/relay/0.2.0/hop'

/** A libp2p node as far as `isConfiguredRelay` sees it: a peer store of one peer, and identify events. */
class FakeNode extends TypedEventEmitter<{ 'peer:identify': CustomEvent<{ peerId: unknown }> }> {
  protocols: string[] = []
  metadata = new Map<string, Uint8Array>()
  readonly peerStore = {
    get: async () => ({ protocols: this.protocols, metadata: this.metadata }),
  }

  /** What identify does: store the full protocol list and the agent version, then say so. */
  identify(peerId: unknown, protocols: string[]): void {
    this.protocols = protocols
    this.metadata.set('AgentVersion', new TextEncoder().encode('relay'))
    this.safeDispatchEvent('peer:identify', { detail: { peerId } })
  }
}

describe('isConfiguredRelay', () => {
  it('waits for identify when the peer store knows only the protocols of streams opened so far', async () => {
    const relay = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const node = new FakeNode()
    // a gossipsub stream to the relay was opened before identify ran: its protocol is recorded already
    node.protocols = ['/meshsub/1.1.0']
    const answer = isConfiguredRelay(
      node as never,
      new Set([relay.toString()]),
      relay.toString(),
      new AbortController().signal,
    )
    setTimeout(() => node.identify(relay, ['/meshsub/1.1.0', HOP]), 20)
    expect(await answer).toBe(true)
  })

  it('answers at once from what identify stored', async () => {
    const relay = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const node = new FakeNode()
    node.identify(relay, ['/meshsub/1.1.0'])
    const configured = new Set([relay.toString()])
    expect(
      await isConfiguredRelay(node as never, configured, relay.toString(), AbortSignal.timeout(100)),
    ).toBe(false)
    node.identify(relay, ['/meshsub/1.1.0', HOP])
    expect(
      await isConfiguredRelay(node as never, configured, relay.toString(), AbortSignal.timeout(100)),
    ).toBe(true)
  })

  it('is never a peer outside the bootstrap list', async () => {
    const relay = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const node = new FakeNode()
    node.identify(relay, [HOP])
    expect(
      await isConfiguredRelay(node as never, new Set(), relay.toString(), AbortSignal.timeout(100)),
    ).toBe(false)
  })
})
