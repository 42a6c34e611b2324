import { describe, expect, it } from 'vitest'
import type { Group } from '../../src/membership/index.js'
import { PeerDirectory } from '../../src/node/peer-directory.js'

const ALICE = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAlice'
const BOB = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBob'
const CAROL = '12D3KooWCarolCarolCarolCarolCarolCarolCarolCaro'
const DAVE = '12D3KooWDaveDaveDaveDaveDaveDaveDaveDaveDaveDave'

/** A group whose signed events name `names` only. */
function groupNaming(names: Record<string, string>): Group {
  return { nameOf: (peerId: string) => names[peerId] } as unknown as Group
}

describe('PeerDirectory.claimedRef', () => {
  it('gives the signed name, else the best claimed one marked unverified, else none', () => {
    const directory = new PeerDirectory({
      self: { peerId: 'self', name: 'me' },
      store: { isOpen: true, peers: () => [], peerName: (peerId) => (peerId === DAVE ? 'dave' : undefined) },
      chatGroups: () => [
        // a group this peer is a member of, where bob asks to join
        { group: groupNaming({ [ALICE]: 'alice' }), joins: { requesters: () => [[BOB, { name: 'bob' }]] } },
        // a group this peer is joining: no log yet, only the invite's names
        {
          group: groupNaming({}),
          joins: { requesters: () => [] },
          invite: {
            inviter: { peerId: CAROL, name: 'carol' },
            founder: { peerId: ALICE, name: 'not alice' },
          },
        },
      ],
    })
    expect(directory.claimedRef(ALICE)).toEqual({ peerId: ALICE, name: 'alice' })
    expect(directory.claimedRef(BOB)).toEqual({ peerId: BOB, name: 'bob', unverified: true })
    expect(directory.claimedRef(CAROL)).toEqual({ peerId: CAROL, name: 'carol', unverified: true })
    // a request of an earlier run, from the peers table
    expect(directory.claimedRef(DAVE)).toEqual({ peerId: DAVE, name: 'dave', unverified: true })
    expect(directory.claimedRef('12D3KooWNobody')).toEqual({ peerId: '12D3KooWNobody', name: '' })
  })
})
