/**
 * The CLI session over a fake node: which group a request means, what arrived in the groups not on
 * screen, and what forgetting the group on screen shows next.
 */
import { TypedEventEmitter } from 'main-event'
import { describe, expect, it } from 'vitest'
import { GroupChoiceError } from '../../src/cli/errors.js'
import { ChatSession } from '../../src/cli/session.js'
import {
  type ChatNode,
  type ChatNodeEvents,
  type GroupSummary,
  NotInGroupError,
} from '../../src/node/index.js'

const SELF = '12D3KooWJPsRuxqpgyxDLE5Gcs8PqbWjr1Mzyb4wJQU2QrcCVHng'
const BOB = '12D3KooWG7gB6Ptt5NRToWDBa19Mawd8whnrNmDzxqLvgDCFCfXZ'
const TEAM = { id: 'bafyteam', name: 'team' }
const CLUB = { id: 'bafyclub', name: 'club' }
const HOME = { id: 'bafyhome', name: 'home' }

/** The part of a ChatNode the session uses: groups, standing, the meta table, messages. */
class FakeNode extends TypedEventEmitter<ChatNodeEvents> {
  readonly peerId = SELF
  readonly meta = new Map<string, string>()
  readonly store = {
    getMeta: (key: string) => this.meta.get(key),
    setMeta: (key: string, value: string) => this.meta.set(key, value),
  }
  constructor(public list: GroupSummary[]) {
    super()
  }
  groups(): GroupSummary[] {
    return this.list
  }
  findGroup(ref: string): GroupSummary {
    const match = this.list.find((g) => g.id === ref || g.name === ref)
    if (match === undefined) throw new NotInGroupError(`no group "${ref}" here`)
    return match
  }
  standing(id: string) {
    return { member: id !== HOME.id, removed: null }
  }
  forget(id: string): void {
    this.list = this.list.filter((g) => g.id !== id)
  }
  message(group: string, from = BOB): void {
    const detail = { group, id: `m${Math.random()}`, from, name: 'bob', text: 'hi', ts: 1 }
    this.safeDispatchEvent('message:receive', { detail })
  }
}

function session(groups: GroupSummary[]): { node: FakeNode; session: ChatSession } {
  const node = new FakeNode(groups)
  return { node, session: new ChatSession(node as unknown as ChatNode) }
}

describe('ChatSession', () => {
  it('counts what others said in the groups not on screen, and /switch reads them', () => {
    const { node, session: s } = session([TEAM, CLUB, HOME])
    s.select('team')
    node.message(CLUB.id)
    node.message(CLUB.id)
    node.message(TEAM.id) // on screen: read as it arrives
    node.message(HOME.id, SELF) // its own, from another device or an echo: nothing to read
    expect([s.unread(TEAM.id), s.unread(CLUB.id), s.unread(HOME.id)]).toEqual([0, 2, 0])
    expect(s.groups().map((g) => [g.name, g.unread, g.active, g.member])).toEqual([
      ['team', 0, true, true],
      ['club', 2, false, true],
      ['home', 0, false, false],
    ])

    expect(s.select('club')).toEqual({ ...CLUB, missed: 2 })
    expect(s.unread(CLUB.id)).toBe(0)
    expect(node.meta.get('activeGroup')).toBe(CLUB.id)
    node.message(TEAM.id)
    expect(s.select(TEAM.id)).toEqual({ ...TEAM, missed: 1 })
  })

  it('picks the only group for a request that names none; with several, the error names them', () => {
    expect(() => session([]).session.pick()).toThrow(expect.objectContaining({ name: NotInGroupError.name }))
    expect(session([TEAM]).session.pick()).toEqual(TEAM)

    const { session: s } = session([TEAM, CLUB])
    s.select('team') // the group on screen is the terminal's; a request without a group stays ambiguous
    const ambiguous = (() => {
      try {
        s.pick()
      } catch (err) {
        return err as Error
      }
    })()
    expect(ambiguous?.name).toBe(GroupChoiceError.name)
    expect(ambiguous?.message).toContain(`team (${TEAM.id})`)
    expect(ambiguous?.message).toContain(`club (${CLUB.id})`)
    expect(s.pick('club')).toEqual(CLUB)
    expect(s.pick(TEAM.id)).toEqual(TEAM)
    expect(() => s.pick('nowhere')).toThrow(
      expect.objectContaining({ name: GroupChoiceError.name, message: expect.stringContaining('club') }),
    )
    const twins = session([TEAM, { id: 'bafyteam2', name: 'team' }]).session
    expect(() => twins.pick('team')).toThrow(expect.objectContaining({ name: GroupChoiceError.name }))
  })

  it('forgetting the group on screen shows the newest one left, and drops its unread count', () => {
    const { node, session: s } = session([TEAM, CLUB, HOME])
    s.select('club')
    node.message(HOME.id)
    expect(s.forget('home')).toEqual(HOME)
    expect(s.unread(HOME.id)).toBe(0)
    expect(s.groupId).toBe(CLUB.id)
    expect(s.forget('club')).toEqual(CLUB)
    expect(s.groupId).toBe(TEAM.id)
    expect(node.meta.get('activeGroup')).toBe(TEAM.id)
    s.forget('team')
    expect(s.groupId).toBeUndefined()
  })
})
