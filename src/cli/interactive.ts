import { clearScreenDown, createInterface, cursorTo, type Interface, moveCursor } from 'node:readline'
import { detectNoColour } from './format.js'
import { lineHandler, type Questions } from './interactive-commands.js'
import {
  type Continuation,
  continuationPrompt,
  continueMessage,
  parseInput,
  pastedMessage,
  typedRows,
} from './interactive-input.js'
import { attachNotices, type EarlyLine } from './interactive-notices.js'
import type { CliIO } from './io.js'
import { followResizes, printAbovePrompt, trackPaste } from './prompt-screen.js'
import type { ChatSession, StartMode } from './session.js'
import { runUntilShutdown } from './shutdown.js'
import { greet, type TerminalView, terminalView } from './terminal-view.js'

/**
 * The terminal chat: a readline prompt that incoming lines never garble (each is printed above the
 * prompt, which is then redrawn with what the user had typed).
 *
 * Events raised while the node starts ("* alice created team", what sync delivers early) are held and
 * printed after the greeting. When stdout fails (its reader went away) the node stops cleanly.
 *
 * @example
 * ```ts
 * const mode = createInteractiveMode(io)
 * const session = await openSession(command, (opened) => mode.attach(opened))
 * return mode.run(session)
 * ```
 */
export function createInteractiveMode(io: CliIO): StartMode {
  const noColour = detectNoColour({ isTTY: io.isTTY })
  let rl: Interface | undefined
  /** Lines held until the greeting has been printed; `undefined` once it has. */
  let held: EarlyLine[] | undefined = []
  /** The prompt with the group's name; a question takes its place while it is open. */
  let groupPrompt = 'p2pchat> '
  /** Answers the question open on the prompt line, if any. */
  let pendingAnswer: ((line: string) => void) | undefined

  /** The lines of a message continued with `\` (or pasted) so far, and those still on screen above the prompt. */
  const continued: Continued = { lines: [], typed: [], pasted: false, groupPrompt: () => groupPrompt }

  /** Sets the group's prompt, shown at once unless a question or a continued message has the prompt line. */
  const setGroupPrompt = (text: string): void => {
    groupPrompt = text
    if (pendingAnswer === undefined && continued.lines.length === 0) rl?.setPrompt(text)
  }

  const questions: Questions = {
    ask: (text) =>
      new Promise((resolve) => {
        pendingAnswer = (line) => {
          pendingAnswer = undefined
          rl?.setPrompt(groupPrompt)
          resolve(line)
        }
        if (io.isTTY && rl !== undefined) {
          // as the prompt, the question is redrawn below every line printed while it is open
          rl.setPrompt(text)
          rl.prompt(true)
        } else {
          // without a terminal nothing redraws it, so it gets a line of its own
          io.stdout(`${text}\n`)
        }
      }),
    answer: (line) => {
      if (pendingAnswer === undefined) return false
      pendingAnswer(line)
      return true
    },
  }

  /** Prints a line above the prompt without disturbing what the user is typing. */
  const print = (text: string): void => {
    // the continued lines typed so far are now above this text: the echo can no longer take their place
    continued.typed = []
    if (io.isTTY && rl !== undefined) {
      printAbovePrompt(rl, io, text)
    } else {
      io.stdout(`${text}\n`)
    }
  }

  /** Prints now, or after the greeting while the session is still starting. */
  const show = (line: EarlyLine): void => {
    if (held !== undefined) {
      held.push(line)
      return
    }
    const text = line.render()
    if (text !== undefined) print(text)
  }

  return {
    attach(session) {
      attachNotices(session, terminalView(session, noColour), show, setGroupPrompt)
    },

    run(session) {
      const view = terminalView(session, noColour)
      groupPrompt = view.prompt()
      const prompt = createInterface({
        input: io.stdin,
        output: io.output,
        terminal: io.isTTY,
        prompt: groupPrompt,
      })
      rl = prompt
      // a command still running when the input ends prints without a prompt to redraw
      prompt.on('close', () => {
        rl = undefined
      })
      const shown = greet(session, view, io)
      const early = held ?? []
      held = undefined
      for (const line of early) {
        if (line.messageId !== undefined && shown.has(line.messageId)) continue
        // the greeting said how many arrived in each other group
        if (line.unreadNotice === true) continue
        const text = line.render()
        if (text !== undefined) io.stdout(`${text}\n`)
      }
      io.stdout('Type /help for commands.\n')
      return converse(session, prompt, view, io, print, questions, setGroupPrompt, continued)
    },
  }
}

/** Reads commands and messages at the prompt until the user leaves, stdin ends, or stdout fails. */
function converse(
  session: ChatSession,
  rl: Interface,
  view: TerminalView,
  io: CliIO,
  print: (text: string) => void,
  questions: Questions,
  setGroupPrompt: (text: string) => void,
  continued: Continued,
): Promise<number> {
  const handleLine = lineHandler(session, view, print, questions, setGroupPrompt)
  return runUntilShutdown(session.node, io, (shutdown) => {
    let queue = Promise.resolve()
    let closed = false
    const paste = io.isTTY ? trackPaste(io, () => pullBackPastedLine()) : undefined
    const stopResizes = io.isTTY ? followResizes(rl, io) : () => {}
    rl.on('line', (line) => {
      // the answer to the question on the prompt line, which the command waiting in the queue reads
      if (questions.answer(line)) return
      const typed = { prompt: rl.getPrompt(), line }
      const next: Continuation =
        paste?.pasting === true
          ? { complete: false, lines: [...continued.lines, line] } // a pasted line break: one block
          : continueMessage(continued.lines, line)
      if (!next.complete) {
        continued.lines = next.lines
        continued.typed.push(typed)
        if (paste?.pasting === true) continued.pasted = true
        rl.setPrompt(continuationPrompt(continued.groupPrompt()))
        rl.prompt()
        return
      }
      const text = continued.pasted ? pastedMessage(next.line) : next.line
      if (io.isTTY && parseInput(text).kind === 'text') {
        eraseTypedRows(io, rowsOf([...continued.typed, typed], columnsOf(io)))
      }
      endContinuation()
      // one command at a time, in order
      queue = queue.then(async () => {
        if ((await handleLine(text)) === 'quit') shutdown('quit')
        else if (!closed) rl.prompt()
      })
    })
    /** Back to the group's prompt, with no continued lines pending. */
    const endContinuation = (): void => {
      continued.pasted = false
      if (continued.lines.length === 0) return
      continued.lines = []
      continued.typed = []
      rl.setPrompt(continued.groupPrompt())
    }
    /**
     * A pasted block that ended with a line break: its last line goes back on the prompt line, so it can
     * be edited, and Enter sends the whole block.
     */
    const pullBackPastedLine = (): void => {
      const last = continued.typed.at(-1)
      if (rl.line !== '' || !continued.pasted || last === undefined || last.line !== continued.lines.at(-1)) {
        return
      }
      continued.typed.pop()
      continued.lines.pop()
      eraseTypedRows(io, typedRows(last.prompt, last.line, columnsOf(io)))
      if (continued.lines.length === 0) continued.pasted = false
      rl.setPrompt(last.prompt)
      rl.prompt(true)
      rl.write(last.line)
    }
    rl.on('SIGINT', () => {
      // as in a shell: Ctrl-C drops what is typed (a continued message too), and quits only from an
      // empty line
      if (rl.line === '' && continued.lines.length === 0) {
        shutdown('SIGINT')
        return
      }
      rl.write(null, { ctrl: true, name: 'e' })
      rl.write(null, { ctrl: true, name: 'u' })
      if (continued.lines.length > 0) {
        endContinuation()
        rl.prompt(true)
      }
    })
    rl.on('close', () => {
      closed = true
      shutdown('closed')
    })
    // nobody can see the chat any more
    const removeStdoutError = io.onStdoutError(() => shutdown('stdout closed'))
    rl.prompt()
    return async () => {
      removeStdoutError()
      stopResizes()
      paste?.stop()
      // a question nobody will answer now is a no, so the command waiting for it can finish
      questions.answer('')
      await queue
      rl.close()
      if (io.isTTY) io.stdout('\n')
    }
  })
}

/** The lines of a message continued with `\` (or pasted) so far, and what the prompt goes back to after it. */
interface Continued {
  lines: string[]
  /** Those lines as typed after their prompts, while directly above the prompt; none once something was printed under them. */
  typed: Array<{ prompt: string; line: string }>
  /** Some of the lines were pasted: the block is a message, whatever its first line starts with. */
  pasted: boolean
  groupPrompt: () => string
}

/** The rows `typed` lines took, at the terminal's width now, and the row readline moved down to. */
function rowsOf(typed: ReadonlyArray<{ prompt: string; line: string }>, columns: number): number {
  return typed.reduce((sum, { prompt, line }) => sum + typedRows(prompt, line, columns), 0)
}

/** The terminal's width, 80 when it does not say. */
function columnsOf(io: CliIO): number {
  return (io.output as { columns?: number }).columns ?? 80
}

/**
 * Takes a message the user just typed off the screen (readline has moved the cursor below it), so its
 * echo, with the time and to how many peers it went, takes its place rather than repeating it.
 */
function eraseTypedRows(io: CliIO, rows: number): void {
  moveCursor(io.output, 0, -rows)
  cursorTo(io.output, 0)
  clearScreenDown(io.output)
}
