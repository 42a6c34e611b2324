import { describe, expect, it } from 'vitest'
import {
  colourFor,
  detectNoColour,
  displayName,
  formatDelivery,
  formatEncryptedLine,
  formatMessageLine,
  formatTime,
  formatWhen,
  PEER_COLOURS,
  sanitizeName,
  sanitizeText,
  shortId,
} from '../../src/cli/format.js'
import {
  forgetRelayNotice,
  formatBadEpochKey,
  formatForgedInvite,
  formatGroupList,
  formatInvitedBy,
  formatJoinUnanswered,
  formatMembershipChange,
  formatReachability,
  formatRemoval,
  formatUnreadNotice,
} from '../../src/cli/format-notices.js'

const ALICE = '12D3KooWRm3AETnJHPfMnTvBuQKiUfGnNdzkn7wp3xQk'
const BOB = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBob9Zz1'
const MALLORY = '12D3KooWMalMalMalMalMalMalMalMalMalMalMalMalM0ll'
/** 09:05 local time, whatever the machine's time zone. */
const NINE_OH_FIVE = new Date(2024, 0, 2, 9, 5, 59).getTime()
const plain = { noColour: true }

/** Any control character other than a newline: what must never reach the terminal. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

describe('sanitizeText', () => {
  it('strips colour, cursor, title, hyperlink and reset sequences', () => {
    expect(sanitizeText('\u001b[31mred\u001b[0m')).toBe('red')
    expect(sanitizeText('a\u001b[2J\u001b[1;1Hb')).toBe('ab')
    expect(sanitizeText('\u001b]0;pwned\u0007hi')).toBe('hi')
    expect(sanitizeText('\u001b]8;;https://evil.example\u001b\\click\u001b]8;;\u001b\\')).toBe('click')
    expect(sanitizeText('x\u001bcy')).toBe('xy')
    expect(sanitizeText('\u009b31mc1\u009b0m')).toBe('c1')
    expect(sanitizeText('\u001bP+q\u001b\\dcs')).toBe('dcs')
  })

  it('removes other control characters and invisible format characters', () => {
    expect(sanitizeText('be\u0007ll\u0000\u0008\u007f')).toBe('bell')
    expect(sanitizeText('adm\u202Enimda')).toBe('admnimda')
    expect(sanitizeText('al\u200Bice\uFEFF')).toBe('alice')
    // joiners are kept: emoji sequences need them
    expect(sanitizeText('👩\u200D💻')).toBe('👩\u200D💻')
  })

  it('leaves the harmless rest of an unterminated sequence visible', () => {
    const out = sanitizeText('ok\u001b]0;title without end')
    expect(out).toBe('ok0;title without end')
    expect(out).not.toMatch(CONTROL)
    expect(sanitizeText('trailing \u001b[')).toBe('trailing ')
  })

  it('cannot be tricked into building an escape sequence from pieces', () => {
    const out = sanitizeText('\u001b\u001b[31m[31mx\u001b\u0007[0m')
    expect(out).not.toContain('\u001b')
    expect(out).not.toMatch(CONTROL)
  })

  it('keeps line breaks only when asked, normalising \\r, \\r\\n and U+2028', () => {
    expect(sanitizeText('a\r\nb\rc\u2028d', { multiline: true })).toBe('a\nb\nc\nd')
    expect(sanitizeText('a\r\nb\rc')).toBe('a b c')
    expect(sanitizeText('a\tb')).toBe('a    b')
  })

  it('stays fast on hostile input', () => {
    const hostile = '\u001b]'.repeat(50_000) + '\u009d'.repeat(50_000) + '\u001b['.repeat(50_000)
    const start = performance.now()
    const out = sanitizeText(hostile)
    expect(performance.now() - start).toBeLessThan(1000)
    expect(out).not.toMatch(CONTROL)
  })
})

describe('sanitizeName', () => {
  it('puts a name on one line and trims it', () => {
    expect(sanitizeName('  alice\n  smith \r\n')).toBe('alice smith')
  })

  it('cuts very long names and names the nameless', () => {
    const long = sanitizeName('x'.repeat(500))
    expect([...long]).toHaveLength(64)
    expect(long.endsWith('…')).toBe(true)
    expect(sanitizeName('\u001b[0m\u0007 ')).toBe('(no name)')
  })
})

describe('formatTime', () => {
  it('shows local hours and minutes, zero-padded', () => {
    expect(formatTime(NINE_OH_FIVE)).toBe('09:05')
    expect(formatTime(new Date(2024, 0, 2, 23, 59))).toBe('23:59')
    expect(formatTime(new Date(2024, 0, 2, 0, 0))).toBe('00:00')
  })

  it('shows a placeholder for an invalid time', () => {
    expect(formatTime(Number.NaN)).toBe('--:--')
  })
})

describe('formatWhen', () => {
  const now = new Date(2024, 0, 2, 18, 30).getTime()

  it('shows only the time today, and the date on another day', () => {
    expect(formatWhen(NINE_OH_FIVE, now)).toBe('09:05')
    expect(formatWhen(new Date(2024, 0, 1, 23, 59).getTime(), now)).toBe('1 Jan 23:59')
    expect(formatWhen(new Date(2023, 11, 31, 8, 0).getTime(), now)).toBe('31 Dec 2023 08:00')
    // tomorrow (a sender's clock ahead of ours) is another day too
    expect(formatWhen(new Date(2024, 0, 3, 0, 1).getTime(), now)).toBe('3 Jan 00:01')
  })

  it('is the bare time without a clock to compare with, and a placeholder for an invalid time', () => {
    expect(formatWhen(new Date(2020, 5, 1, 7, 7).getTime())).toBe('07:07')
    expect(formatWhen(Number.NaN, now)).toBe('--:--')
  })
})

describe('formatDelivery', () => {
  it('counts the peers a message went to, or says nobody got it yet', () => {
    expect(formatDelivery(3, plain)).toBe('✓3')
    expect(formatDelivery(0, plain)).toBe('(not delivered yet: it is sent when a member connects)')
    expect(formatDelivery(1)).toBe('\u001b[2m✓1\u001b[22m')
  })
})

describe('shortId', () => {
  it('is the last four characters after an ellipsis', () => {
    expect(shortId(ALICE)).toBe('…3xQk')
    expect(shortId('ab')).toBe('…ab')
  })
})

describe('displayName', () => {
  const peers = new Map([
    [ALICE, 'alice'],
    [BOB, 'bob'],
  ])

  it('shows the bare name when it is unique', () => {
    expect(displayName('alice', ALICE, peers)).toBe('alice')
    expect(displayName('carol', MALLORY, peers)).toBe('carol')
    expect(displayName('alice', ALICE)).toBe('alice')
  })

  it('adds the short id when another peer has the same name', () => {
    const clash = new Map([...peers, [MALLORY, 'alice']])
    expect(displayName('alice', ALICE, clash)).toBe('alice (…3xQk)')
    expect(displayName('alice', MALLORY, clash)).toBe('alice (…M0ll)')
    expect(displayName('bob', BOB, clash)).toBe('bob')
  })

  it('treats look-alike names as the same name', () => {
    for (const lookalike of [
      'Alice',
      'ALICE',
      'ａｌｉｃｅ',
      'al\u200Bice',
      'al\u200Dice',
      ' alice\n',
      '\u001b[1malice',
    ]) {
      const clash = new Map([...peers, [MALLORY, lookalike]])
      expect(displayName(lookalike, MALLORY, clash), JSON.stringify(lookalike)).toMatch(/ \(…M0ll\)$/)
      expect(displayName('alice', ALICE, clash)).toBe('alice (…3xQk)')
    }
  })

  it('sanitises the name it shows', () => {
    expect(displayName('\u001b[31mevil\nname', MALLORY, peers)).toBe('evil name')
  })
})

describe('colourFor', () => {
  it('gives a peer the same colour every time', () => {
    expect(colourFor(ALICE)).toBe(colourFor(`${ALICE}`))
    expect(PEER_COLOURS).toContain(colourFor(ALICE))
  })

  it('spreads peers over the palette', () => {
    const used = new Set<number>()
    for (let i = 0; i < 200; i++) {
      used.add(colourFor(`12D3KooWpeer${i}`))
    }
    expect(used.size).toBe(PEER_COLOURS.length)
    expect(PEER_COLOURS.length).toBeGreaterThanOrEqual(6)
  })
})

describe('detectNoColour', () => {
  it('honours NO_COLOR, TERM=dumb and non-terminal output', () => {
    const tty = { isTTY: true }
    expect(detectNoColour(tty, {})).toBe(false)
    expect(detectNoColour(tty, { NO_COLOR: '1' })).toBe(true)
    expect(detectNoColour(tty, { NO_COLOR: '' })).toBe(false)
    expect(detectNoColour(tty, { TERM: 'dumb' })).toBe(true)
    expect(detectNoColour({ isTTY: false }, {})).toBe(true)
    // process.stdout.isTTY is undefined, not false, when output goes to a pipe
    expect(detectNoColour({ isTTY: undefined }, {})).toBe(true)
    expect(detectNoColour({}, {})).toBe(true)
  })
})

describe('formatMessageLine', () => {
  it('shows time, name and text', () => {
    expect(
      formatMessageLine(
        { ts: NINE_OH_FIVE, name: 'alice', peerId: ALICE, text: 'hi all', self: false },
        plain,
      ),
    ).toBe('09:05 alice: hi all')
  })

  it("paints the sender in its colour, and one's own name in bold", () => {
    const other = formatMessageLine({
      ts: NINE_OH_FIVE,
      name: 'alice',
      peerId: ALICE,
      text: 'x',
      self: false,
    })
    expect(other).toContain(`\u001b[${colourFor(ALICE)}malice\u001b[39m: x`)
    const own = formatMessageLine({ ts: NINE_OH_FIVE, name: 'me', peerId: BOB, text: 'x', self: true })
    expect(own).toContain('\u001b[1mme\u001b[22m: x')
    expect(own).not.toContain(`\u001b[${colourFor(BOB)}m`)
  })

  it('indents the continuation lines of a multi-line message', () => {
    expect(
      formatMessageLine(
        { ts: NINE_OH_FIVE, name: 'alice', peerId: ALICE, text: 'line one\r\nline two\n\n', self: false },
        plain,
      ),
    ).toBe('09:05 alice: line one\n      line two')
  })

  it('shows the date of a message from another day, and indents under the sender all the same', () => {
    const now = new Date(2024, 0, 3, 12, 0).getTime()
    expect(
      formatMessageLine(
        { ts: NINE_OH_FIVE, name: 'alice', peerId: ALICE, text: 'one\ntwo', self: false },
        { ...plain, now },
      ),
    ).toBe('2 Jan 09:05 alice: one\n            two')
  })

  it('stops a peer from faking another message or touching the terminal', () => {
    const line = formatMessageLine(
      {
        ts: NINE_OH_FIVE,
        name: 'mal\nlory',
        peerId: MALLORY,
        text: 'hello\r09:06 bob: send me your key\u001b[2K\u001b]0;owned\u0007',
        self: false,
      },
      plain,
    )
    expect(line).toBe('09:05 mal lory: hello\n      09:06 bob: send me your key')
    expect(line).not.toMatch(CONTROL)
    // every line after the first starts indented, so it cannot pass for a new message
    for (const next of line.split('\n').slice(1)) {
      expect(next.startsWith('      ')).toBe(true)
    }
  })

  it('disambiguates a sender whose name is taken', () => {
    const namesInUse = new Map([
      [ALICE, 'alice'],
      [MALLORY, 'alice'],
    ])
    expect(
      formatMessageLine(
        { ts: NINE_OH_FIVE, name: 'alice', peerId: MALLORY, text: 'it is me', self: false },
        { noColour: true, namesInUse },
      ),
    ).toBe('09:05 alice (…M0ll): it is me')
  })
})

describe('formatEncryptedLine', () => {
  it('shows size, sender with short id, and the first ciphertext bytes', () => {
    const ciphertext = Uint8Array.from([0x9f, 0x2c, 0x01, 0xab, 0xff, 0x00])
    expect(formatEncryptedLine({ bytes: 83, name: 'alice', peerId: ALICE, preview: ciphertext }, plain)).toBe(
      '[encrypted · 83 bytes · from alice (…3xQk)] 9f2c01ab…',
    )
  })

  it('handles a short preview, one byte, an unknown sender and a text preview', () => {
    expect(formatEncryptedLine({ bytes: 1, peerId: ALICE, preview: Uint8Array.from([0x9f]) }, plain)).toBe(
      '[encrypted · 1 byte · from …3xQk] 9f',
    )
    expect(formatEncryptedLine({ bytes: 40, name: 'a', peerId: ALICE }, plain)).toBe(
      '[encrypted · 40 bytes · from a (…3xQk)]',
    )
    expect(
      formatEncryptedLine({ bytes: 40, name: 'a', peerId: ALICE, preview: '9f2c\u001b[31m…' }, plain),
    ).toBe('[encrypted · 40 bytes · from a (…3xQk)] 9f2c…')
  })

  it('sanitises the sender name', () => {
    const line = formatEncryptedLine({ bytes: 9, name: 'a\u001b]0;x\u0007\nb', peerId: ALICE }, plain)
    expect(line).toBe('[encrypted · 9 bytes · from a b (…3xQk)]')
  })

  it('is dimmed when colours are on', () => {
    expect(formatEncryptedLine({ bytes: 2, peerId: ALICE })).toBe(
      '\u001b[2m[encrypted · 2 bytes · from …3xQk]\u001b[22m',
    )
  })
})

describe('formatBadEpochKey', () => {
  it('names who chose the unusable key, with a fingerprint, and says a new key went out', () => {
    const line = formatBadEpochKey({ author: { peerId: MALLORY, name: 'mallory' }, reason: 'does not open' })
    expect(line).toMatch(/^!! the group key mallory \(…\w{4}\) chose does not work for you/)
    expect(line).toContain('does not open')
  })
})

describe('formatMembershipChange', () => {
  const alice = { name: 'alice', peerId: ALICE }
  const bob = { name: 'bob', peerId: BOB }

  it('describes create, add, remove and leave', () => {
    expect(formatMembershipChange({ type: 'create', by: alice, groupName: 'team' }, plain)).toBe(
      '* alice created team',
    )
    expect(formatMembershipChange({ type: 'add', by: alice, member: bob }, plain)).toBe('* alice added bob')
    expect(formatMembershipChange({ type: 'remove', by: alice, member: bob }, plain)).toBe(
      '* alice removed bob',
    )
    expect(formatMembershipChange({ type: 'remove', by: bob, member: bob }, plain)).toBe('* bob left')
  })

  it('describes a rename by the old name and the new one', () => {
    expect(
      formatMembershipChange({ type: 'rename', member: { peerId: BOB, name: 'robert' }, from: 'bob' }, plain),
    ).toBe('* bob is now robert')
    expect(
      formatMembershipChange(
        { type: 'rename', member: { peerId: BOB, name: 'ro\u001b[2Jbert' }, from: 'bob' },
        plain,
      ),
    ).not.toContain('\u001b')
  })

  it('falls back to the short id for a member whose name is not known yet', () => {
    expect(formatMembershipChange({ type: 'add', by: alice, member: { peerId: BOB } }, plain)).toBe(
      '* alice added …9Zz1',
    )
  })

  it('disambiguates and sanitises names', () => {
    const namesInUse = new Map([
      [ALICE, 'alice'],
      [MALLORY, 'alice'],
    ])
    expect(
      formatMembershipChange(
        { type: 'add', by: { name: 'alice', peerId: MALLORY }, member: bob },
        { noColour: true, namesInUse },
      ),
    ).toBe('* alice (…M0ll) added bob')
    expect(formatMembershipChange({ type: 'create', by: alice, groupName: 'te\u001b[5mam\n' }, plain)).toBe(
      '* alice created team',
    )
  })

  it('paints each peer in its colour', () => {
    const line = formatMembershipChange({ type: 'add', by: alice, member: bob })
    expect(line).toBe(
      `* \u001b[${colourFor(ALICE)}malice\u001b[39m added \u001b[${colourFor(BOB)}mbob\u001b[39m`,
    )
  })
})

describe('invites: formatInvitedBy and formatForgedInvite', () => {
  it('shows founder and inviter as sanitised names with fingerprints', () => {
    expect(formatInvitedBy({ peerId: ALICE, name: 'alice' }, { peerId: BOB, name: 'b\u001b[2Job' })).toBe(
      'Founded by alice (…3xQk); invited by bob (…9Zz1)',
    )
    expect(formatInvitedBy(null, { peerId: BOB, name: 'bob' })).toBe('Invited by bob (…9Zz1)')
  })

  it('says what a forged invite claimed and what the group is, in one line of plain text', () => {
    const line = formatForgedInvite({
      inviter: { peerId: MALLORY, name: 'alice' },
      claimed: { groupName: 'team', founder: { peerId: ALICE, name: 'alice' } },
      actual: {
        groupName: 'team\nfake line',
        founder: { peerId: MALLORY, name: '\u001b]0;title\u0007alice' },
      },
    })
    expect(line).toBe(
      '!! FORGED INVITE: alice (…M0ll) said this group is team, founded by alice (…3xQk), but it is team fake line, founded by alice (…M0ll). It is not the group the invite claimed: do not trust it; /quit to leave.',
    )
    expect(line).not.toMatch(CONTROL)
    expect(line).not.toContain('\n')
  })
})

describe('groups, removals and notices from other groups', () => {
  const self = '12D3KooWJPsRuxqpgyxDLE5Gcs8PqbWjr1Mzyb4wJQU2QrcCVHng'
  const alice = { peerId: '12D3KooWG7gB6Ptt5NRToWDBa19Mawd8whnrNmDzxqLvgDCFCfXZ', name: 'alice' }
  const at = new Date(2025, 0, 2, 14, 2).getTime()

  it('tells a removed member who removed it and when, not that it is no member yet', () => {
    expect(formatRemoval({ groupName: 'team', by: alice, at, self }, { noColour: true })).toBe(
      'you were removed from team by alice at 14:02',
    )
    expect(formatRemoval({ groupName: 'team', by: { peerId: self, name: 'me' }, at, self })).toBe(
      'you left team at 14:02',
    )
    expect(formatRemoval({ groupName: 'te\u001b[2Jam', by: alice, at: null, self }, { noColour: true })).toBe(
      'you were removed from team by alice',
    )
    // seen the next day, the removal says which day it was
    const nextDay = new Date(2025, 0, 3, 9, 0).getTime()
    expect(formatRemoval({ groupName: 'team', by: alice, at, self }, { noColour: true, now: nextDay })).toBe(
      'you were removed from team by alice at 2 Jan 14:02',
    )
  })

  it('lists groups with the one on screen marked, unread counts and standing', () => {
    const base = { member: true, removed: null, unread: 0, active: false }
    const list = formatGroupList(
      [
        { ...base, id: 'bafyteam0001', name: 'team', active: true },
        { ...base, id: 'bafyclub0002', name: 'club', unread: 2 },
        { ...base, id: 'bafyjoin0003', name: 'pending', member: false },
        {
          ...base,
          id: 'bafyold00004',
          name: 'old',
          member: false,
          removed: { by: alice, at, rejoining: true },
        },
      ],
      self,
      { noColour: true },
    )
    expect(list.split('\n')).toEqual([
      'Groups:',
      '> team (…0001)',
      '  club (…0002)  2 unread',
      '  pending (…0003)  waiting for a member to add you',
      '  old (…0004)  you were removed from old by alice at 14:02; asking to be added again',
    ])
    expect(formatGroupList([], self)).toMatch(/no group/)
  })

  it('a message in another group is one line naming the group and how to go there', () => {
    expect(formatUnreadNotice({ groupName: 'club', from: alice, unread: 3 }, { noColour: true })).toBe(
      '* [club] new message from alice (3 unread: /switch club)',
    )
    // a sender whose name is not known here is shown by its short id
    expect(
      formatUnreadNotice(
        { groupName: 'club', from: { peerId: alice.peerId }, unread: 1 },
        { noColour: true },
      ),
    ).toBe('* [club] new message from …CfXZ (1 unread: /switch club)')
  })
})

describe('formatReachability', () => {
  const bob = '12D3KooWGRUVh8Fm6vW1L6y4xT6s7m2p6cA1GmYbHqN5TmbbXzAa'
  it('says when no peer is reachable, what is retried, and who is back', () => {
    const o = { noColour: true }
    expect(formatReachability({ reachable: false, peer: null, retrying: 2 }, o)).toBe(
      '* no peer is reachable now; trying 2 known peers again. What you send waits here, and goes when one connects.',
    )
    expect(formatReachability({ reachable: false, peer: null, retrying: 0 }, o)).toBe(
      '* no peer is reachable, and none is known to try again: /connect <multiaddr>, or give someone an /invite. What you send waits here.',
    )
    expect(formatReachability({ reachable: true, peer: { peerId: bob, name: 'bob' }, retrying: 1 }, o)).toBe(
      '* connected again: bob is reachable',
    )
    // a relay has no name: its fingerprint; a name from the network is sanitised
    expect(formatReachability({ reachable: true, peer: { peerId: bob, name: '' }, retrying: 1 }, o)).toBe(
      '* connected again: …XzAa is reachable',
    )
    expect(
      formatReachability({ reachable: true, peer: { peerId: bob, name: 'b\u001b[2Job' }, retrying: 1 }, o),
    ).toBe('* connected again: bob is reachable')
    // a name only claimed (a join request's, an invite's) is marked so, with the fingerprint
    expect(
      formatReachability(
        { reachable: true, peer: { peerId: bob, name: 'bob', unverified: true }, retrying: 1 },
        o,
      ),
    ).toBe('* connected again: bob (…XzAa, name not verified) is reachable')
  })
})

describe('forgetRelayNotice', () => {
  it('names what --forget-relay did not find, with the relays remembered, and says nothing when all matched', () => {
    expect(forgetRelayNotice([], ['/ip4/127.0.0.1/tcp/1'])).toBeUndefined()
    expect(forgetRelayNotice(['nobody'], [])).toBe(
      '--forget-relay: no remembered relay is nobody; relays remembered: none',
    )
    expect(forgetRelayNotice(['a\u001b[2J', 'b'], ['/ip4/127.0.0.1/tcp/1'])).toBe(
      '--forget-relay: no remembered relay is a, b; relays remembered: /ip4/127.0.0.1/tcp/1',
    )
  })
})

describe('formatJoinUnanswered', () => {
  const me = '12D3KooWGRUVh8Fm6vW1L6y4xT6s7m2p6cA1GmYbHqN5TmbbXzAa'
  const alice = { peerId: '12D3KooWAliceAliceAliceAliceAliceAliceAliceVHng', name: 'alice' }
  it('says nobody admitted this peer, what may be wrong and what to do', () => {
    expect(formatJoinUnanswered({ waitedMs: 60_000, admits: true, inviter: alice }, me)).toBe(
      `* nobody has admitted you yet (1 min since your request reached the group): your invite may have expired or been used. Ask alice (…VHng) for a new invite, or a member to /add ${me}`,
    )
    expect(formatJoinUnanswered({ waitedMs: 60_000, admits: false, inviter: null }, me)).toBe(
      `* nobody has added you yet (1 min since your request reached the group): ask a member to /add ${me}`,
    )
  })
})
