import { describe, expect, it } from 'vitest'
import { perMember } from '../../src/crypto/member-cache.js'

const id = (n: number): Uint8Array => new Uint8Array([n >> 16, (n >> 8) & 0xff, n & 0xff])

describe('perMember', () => {
  it('keeps the key of a member in use through a flood of new ids, and derives each once', () => {
    let derived = 0
    const keyOf = perMember((memberId) => {
      derived++
      return { memberId }
    })
    const member = keyOf(id(0))
    // 10,000 new ids, the member used between them: with a cache emptied when full it is derived again
    for (let n = 1; n <= 10_000; n++) {
      keyOf(id(n))
      expect(keyOf(id(0))).toBe(member)
    }
    expect(derived).toBe(10_001)
  })

  it('does not remember a failure', () => {
    let calls = 0
    const keyOf = perMember((): object => {
      calls++
      if (calls === 1) throw new Error('not a key')
      return {}
    })
    expect(() => keyOf(id(1))).toThrow('not a key')
    expect(keyOf(id(1))).toEqual({})
  })
})
