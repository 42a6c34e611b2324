import { describe, expect, it } from 'vitest'
import { codePointWidth, displayPos, displayWidth } from '../../src/cli/display-width.js'

describe('displayWidth', () => {
  it('counts CJK, Hangul, fullwidth forms and emoji as two columns; marks and joiners as none', () => {
    expect(displayWidth('abc')).toBe(3)
    expect(displayWidth('漢字')).toBe(4)
    expect(displayWidth('한국')).toBe(4)
    expect(displayWidth('ＡＢ')).toBe(4)
    expect(displayWidth('😀')).toBe(2)
    expect(displayWidth('e\u0301')).toBe(1)
    expect(codePointWidth('\u200d')).toBe(0)
    expect(codePointWidth('\ufe0f')).toBe(0)
    expect(codePointWidth('\u001b')).toBe(0)
  })
})

describe('displayPos', () => {
  it('wraps at the width, moving a wide character that does not fit to the next row', () => {
    expect(displayPos('x'.repeat(10), 10)).toEqual({ rows: 1, cols: 0 })
    expect(displayPos(`${'x'.repeat(9)}漢`, 10)).toEqual({ rows: 1, cols: 2 })
    expect(displayPos('漢'.repeat(5), 10)).toEqual({ rows: 1, cols: 0 })
    expect(displayPos('a\tb', 80)).toEqual({ rows: 0, cols: 9 })
  })
})
