/**
 * The screen around readline's prompt line in a terminal: printing above a prompt line that wraps over
 * several rows, redrawing it after a resize, and bracketed paste.
 *
 * readline redraws its line by first moving up the rows its cursor was below the prompt's first row, as
 * it counted them when it last drew (`prevRows`, which node does not type). Both a line printed above
 * the prompt and a resize that re-wraps the rows change that count, so both set it before readline
 * redraws.
 *
 * @packageDocumentation
 */

import { clearScreenDown, cursorTo, type Interface, moveCursor } from 'node:readline'
import type { CliIO } from './io.js'

/** Asks the terminal to wrap what is pasted in `ESC [200~` … `ESC [201~` (xterm's bracketed paste). */
const PASTE_ON = '\u001b[?2004h'
const PASTE_OFF = '\u001b[?2004l'

/** Tells readline how many rows its cursor is below the prompt's first row now. */
function setPromptRows(rl: Interface, rows: number): void {
  ;(rl as unknown as { prevRows: number }).prevRows = rows
}

/**
 * Prints `text` above the prompt line, which may wrap over several rows, then redraws it with what the
 * user had typed: every row it took is erased first, so no part of it is left above the text.
 */
export function printAbovePrompt(rl: Interface, io: CliIO, text: string): void {
  // the rows of the prompt line above the cursor, counted at the terminal's width now
  moveCursor(io.output, 0, -rl.getCursorPos().rows)
  cursorTo(io.output, 0)
  clearScreenDown(io.output)
  io.stdout(`${text}\n`)
  setPromptRows(rl, 0)
  rl.prompt(true)
}

/**
 * Keeps the prompt line whole when the terminal is resized (SIGWINCH, which node reports as the output's
 * `resize`): the terminal re-wraps the rows of a long line, so the cursor is as many rows below the
 * line's start as the line at the new width puts it, not as many as readline counted at the old one.
 * Runs before readline's own redraw on `resize`.
 *
 * @returns a function that stops following resizes
 */
export function followResizes(rl: Interface, io: CliIO): () => void {
  const output = io.output as NodeJS.WritableStream & {
    prependListener?: (event: 'resize', listener: () => void) => unknown
  }
  const onResize = (): void => setPromptRows(rl, rl.getCursorPos().rows)
  if (typeof output.prependListener !== 'function') return () => {}
  output.prependListener('resize', onResize)
  return () => {
    output.removeListener('resize', onResize)
  }
}

/** Bracketed paste, and whether a paste is arriving now. */
export interface PasteTracker {
  /** Whether the keys arriving now are pasted. */
  readonly pasting: boolean
  /** Turns bracketed paste off again and stops listening. */
  stop(): void
}

/**
 * Turns on bracketed paste and follows it: `onEnd` is called when a pasted block has arrived. node's
 * keypress decoder reports the markers as the keys `paste-start` and `paste-end`, which readline
 * ignores, so the line breaks of a paste still reach readline as Enter: `pasting` tells them apart.
 * Bracketed paste is turned off on stop and when the process exits, so the shell does not get the
 * markers afterwards.
 */
export function trackPaste(io: CliIO, onEnd: () => void): PasteTracker {
  let pasting = false
  const onKey = (_text: string | undefined, key: { name?: string } | undefined): void => {
    if (key?.name === 'paste-start') pasting = true
    else if (key?.name === 'paste-end' && pasting) {
      pasting = false
      onEnd()
    }
  }
  const off = (): void => {
    io.stdout(PASTE_OFF)
  }
  io.stdin.on('keypress', onKey)
  process.once('exit', off)
  io.stdout(PASTE_ON)
  return {
    get pasting() {
      return pasting
    },
    stop() {
      io.stdin.off('keypress', onKey)
      process.off('exit', off)
      off()
    },
  }
}
