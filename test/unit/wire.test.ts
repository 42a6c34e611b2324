/**
 * The join request codec: a join request names its sender's peer id and display name, and a member adds
 * whoever it names. Only the signature ties those to the key that made the request, so every way of
 * changing them after signing must be refused.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { Identity } from '../../src/crypto/index.js'
import { decodeJoinRequest, encodeJoinRequest } from '../../src/node/wire.js'
import { withEditedJoinPayload as edited, withFlippedSignature } from '../fixtures/forgery.js'

// any well-formed CID serves as a group id here
const GROUP = 'bafyreia3eacpdffdwys3le3z6xjlgwb6rfhdltzouymkabry4ptljk5n3m'
const OTHER_GROUP = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

type Fields = Record<string, unknown>

const invalidSignature = expect.objectContaining({ name: 'InvalidSignatureError' })

describe('join request codec', () => {
  it('decodes what its signer encoded', async () => {
    const bob = await Identity.generate()
    expect(decodeJoinRequest(encodeJoinRequest(bob, GROUP, 'bob', 1234))).toEqual({
      group: GROUP,
      peerId: bob.memberId,
      name: 'bob',
      ts: 1234,
    })
  })

  it("refuses a request that names another peer than its signer (mallory asking in bob's name)", async () => {
    const [mallory, bob] = await Promise.all([Identity.generate(), Identity.generate()])
    const forged = edited(encodeJoinRequest(mallory, GROUP, 'bob'), (p) => ({
      ...p,
      peer: bob.memberIdBytes,
    }))
    expect(() => decodeJoinRequest(forged)).toThrow(invalidSignature)
  })

  it('refuses a request whose name, group or time was changed after signing', async () => {
    const bob = await Identity.generate()
    const request = encodeJoinRequest(bob, GROUP, 'bob', 1234)
    for (const edit of [
      (p: Fields) => ({ ...p, name: 'alice' }),
      (p: Fields) => ({ ...p, group: CID.parse(OTHER_GROUP) }),
      (p: Fields) => ({ ...p, ts: 5678 }),
    ]) {
      expect(() => decodeJoinRequest(edited(request, edit))).toThrow(invalidSignature)
    }
  })

  it('refuses a request whose signature was changed', async () => {
    const bob = await Identity.generate()
    const request = withFlippedSignature(encodeJoinRequest(bob, GROUP, 'bob'))
    expect(() => decodeJoinRequest(request)).toThrow(invalidSignature)
  })

  it('refuses a signature the peer made for another purpose', async () => {
    const bob = await Identity.generate()
    // bob's genuine payload, signed under the domain of his messages instead of that of join requests
    const { payload } = dagCbor.decode(encodeJoinRequest(bob, GROUP, 'bob')) as { payload: Uint8Array }
    const request = dagCbor.encode({ payload, sig: bob.sign('envelope', payload) })
    expect(() => decodeJoinRequest(request)).toThrow(invalidSignature)
  })
})
