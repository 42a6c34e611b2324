import { describe, expect, it } from 'vitest'
import {
  continuationPrompt,
  continueMessage,
  parseInput,
  pastedMessage,
  typedRows,
  unknownCommand,
} from '../../src/cli/interactive-input.js'

describe('parseInput', () => {
  it('tells messages from commands; // sends a line starting with /', () => {
    expect(parseInput('  ')).toEqual({ kind: 'empty' })
    expect(parseInput('hello ')).toEqual({ kind: 'text', text: 'hello' })
    expect(parseInput('//help')).toEqual({ kind: 'text', text: '/help' })
    expect(parseInput('/Add bob ')).toEqual({ kind: 'command', name: 'add', arg: 'bob' })
  })
})

describe('unknownCommand', () => {
  it('is one line pointing to /help, not the help itself', () => {
    const line = unknownCommand('frobnicate')
    expect(line.split('\n')).toHaveLength(1)
    expect(line).toBe(
      'Unknown command /frobnicate: /help lists the commands (// sends a line starting with /).',
    )
  })

  it('shows a pasted escape sequence as harmless text', () => {
    expect(unknownCommand('x\u001b[2Jy')).toBe(unknownCommand('xy'))
  })
})

describe('typedRows', () => {
  it('counts the rows a wrapped line took, and the row readline moved down to', () => {
    expect(typedRows('team> ', 'hi', 80)).toBe(1)
    expect(typedRows('team> ', 'x'.repeat(73), 80)).toBe(1)
    // the line fills the row exactly: readline puts the cursor on a row of its own
    expect(typedRows('team> ', 'x'.repeat(74), 80)).toBe(2)
    expect(typedRows('team> ', 'x'.repeat(200), 80)).toBe(3)
    expect(typedRows('team> ', '😀'.repeat(74), 80)).toBe(2)
  })

  it('counts double-width characters as two columns, and a wide one at the edge wraps whole', () => {
    // 6 + 2×40 = 86 columns: two rows, where counting characters says one
    expect(typedRows('team> ', '漢'.repeat(40), 80)).toBe(2)
    expect(typedRows('team> ', '😀'.repeat(36), 80)).toBe(1)
    expect(typedRows('team> ', '😀'.repeat(37), 80)).toBe(2)
    // 79 columns used: the next wide character does not fit in the last one
    expect(typedRows('team> ', `${'x'.repeat(73)}漢`, 80)).toBe(2)
    // combining marks and joiners take no column
    expect(typedRows('team> ', 'e\u0301'.repeat(74), 80)).toBe(2)
    expect(typedRows('team> ', 'e\u0301'.repeat(73), 80)).toBe(1)
  })
})

describe('continueMessage', () => {
  it('continues a message line ending in \\ and joins the lines with line breaks', () => {
    const first = continueMessage([], 'first line\\')
    expect(first).toEqual({ complete: false, lines: ['first line'] })
    const second = continueMessage(['first line'], 'second\\')
    expect(second).toEqual({ complete: false, lines: ['first line', 'second'] })
    expect(continueMessage(['first line', 'second'], 'last')).toEqual({
      complete: true,
      line: 'first line\nsecond\nlast',
    })
    expect(continueMessage([], 'just one')).toEqual({ complete: true, line: 'just one' })
  })

  it('never continues a command, and keeps a continued message a message', () => {
    expect(continueMessage([], '/history 5\\')).toEqual({ complete: true, line: '/history 5\\' })
    const joined = continueMessage(['hi'], '/help')
    expect(joined.complete && parseInput(joined.line)).toEqual({ kind: 'text', text: 'hi\n/help' })
    const escaped = continueMessage(['//etc is a path'], 'ok')
    expect(escaped.complete && parseInput(escaped.line)).toEqual({ kind: 'text', text: '/etc is a path\nok' })
  })
})

describe('continuationPrompt', () => {
  it('is as wide as the prompt', () => {
    expect(continuationPrompt('team> ')).toBe('....> ')
    expect(continuationPrompt('> ')).toBe('> ')
  })
})

describe('pastedMessage', () => {
  it('keeps a pasted block a message even when it starts with /', () => {
    expect(pastedMessage('hello\nworld')).toBe('hello\nworld')
    expect(parseInput(pastedMessage('/help\nsee above'))).toEqual({ kind: 'text', text: '/help\nsee above' })
    expect(parseInput(pastedMessage('  /x\ny'))).toEqual({ kind: 'text', text: '/x\ny' })
  })
})
