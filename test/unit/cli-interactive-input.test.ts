import { describe, expect, it } from 'vitest'
import { parseInput, typedRows, unknownCommand } from '../../src/cli/interactive-input.js'

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
})
