import { clearLine, createInterface, cursorTo, type Interface } from 'node:readline'
import { type ChatMessage, type PeerRef, UnverifiedNameError } from '../node/index.js'
import {
  detectNoColour,
  type FormatOptions,
  formatBadEpochKey,
  formatEncryptedLine,
  formatForgedInvite,
  formatInvitedBy,
  formatMembershipChange,
  formatMessageLine,
  sanitizeName,
  shortId,
} from './format.js'
import { INTERACTIVE_HELP, parseInput } from './interactive-input.js'
import type { CliIO } from './io.js'
import type { ChatSession, StartMode } from './session.js'
import { runUntilShutdown } from './shutdown.js'
import { shownMessage } from './user-errors.js'

/** A line of output raised while the node starts: shown after the greeting, if still relevant. */
interface EarlyLine {
  /** The message it shows, so it is not shown twice when the greeting's history has it. */
  messageId?: string
  /** The text to print, worked out when printed; `undefined` to drop it (another group's). */
  render: () => string | undefined
}

/** How the terminal shows a node's state: names, colours, which group is on screen. */
interface TerminalView {
  groupName: () => string
  options: () => FormatOptions
  showMessage: (m: ChatMessage) => string
  inActiveGroup: (group: string) => boolean
}

function terminalView(session: ChatSession, noColour: boolean): TerminalView {
  const { node } = session
  const names = (): Map<string, string> => {
    const map = new Map<string, string>()
    const group = session.groupId
    if (group !== undefined) for (const m of node.members(group)) map.set(m.peerId, m.name)
    for (const p of node.peers()) if (p.name !== '') map.set(p.peerId, p.name)
    return map
  }
  const options = (): FormatOptions => ({ noColour, namesInUse: names() })
  return {
    groupName: () => session.status().group?.name ?? 'p2pchat',
    options,
    showMessage: (m) =>
      formatMessageLine(
        { ts: m.ts, name: m.name, peerId: m.from, text: m.text, self: m.from === node.peerId },
        options(),
      ),
    inActiveGroup: (group) => group === session.groupId,
  }
}

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

  /** Sets the group's prompt, shown at once unless a question is on the prompt line. */
  const setGroupPrompt = (text: string): void => {
    groupPrompt = text
    if (pendingAnswer === undefined) rl?.setPrompt(text)
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
    if (io.isTTY && rl !== undefined) {
      clearLine(io.output, 0)
      cursorTo(io.output, 0)
      io.stdout(`${text}\n`)
      rl.prompt(true)
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
      const { node } = session
      const view = terminalView(session, noColour)
      const ref = (p: PeerRef): { peerId: string; name: string } => ({ peerId: p.peerId, name: p.name })

      node.addEventListener('message:receive', ({ detail }) => {
        if (detail.from === node.peerId) return
        show({
          messageId: detail.id,
          render: () => (view.inActiveGroup(detail.group) ? view.showMessage(detail) : undefined),
        })
      })
      node.addEventListener('message:encrypted', ({ detail }) => {
        show({
          render: () =>
            view.inActiveGroup(detail.group)
              ? formatEncryptedLine(
                  {
                    bytes: detail.bytes,
                    // a peer that holds no log yet knows no sender's name
                    ...(detail.name === '' ? {} : { name: detail.name }),
                    peerId: detail.from,
                    preview: detail.preview,
                  },
                  view.options(),
                )
              : undefined,
        })
      })
      node.addEventListener('membership:change', ({ detail }) => {
        show({
          render: () => {
            if (!view.inActiveGroup(detail.group)) return undefined
            setGroupPrompt(`${view.groupName()}> `)
            const { change } = detail
            if (change === null) {
              return `* members are now: ${detail.members.map((m) => sanitizeName(m.name)).join(', ')}`
            }
            if (change.action === 'create') {
              return formatMembershipChange(
                { type: 'create', by: ref(change.by), groupName: view.groupName() },
                view.options(),
              )
            }
            if (change.action === 'rename') {
              return formatMembershipChange(
                { type: 'rename', member: change.member, from: change.from },
                view.options(),
              )
            }
            return formatMembershipChange(
              { type: change.action, by: ref(change.by), member: ref(change.member) },
              view.options(),
            )
          },
        })
      })
      node.addEventListener('epoch:bad-key', ({ detail }) => {
        show({ render: () => (view.inActiveGroup(detail.group) ? formatBadEpochKey(detail) : undefined) })
      })
      node.addEventListener('invite:forged', ({ detail }) => {
        show({ render: () => (view.inActiveGroup(detail.group) ? formatForgedInvite(detail) : undefined) })
      })
      node.addEventListener('join:request', ({ detail }) => {
        show({
          render: () =>
            view.inActiveGroup(detail.group)
              ? `* ${sanitizeName(detail.name)} (${shortId(detail.peerId)}) asks to join: /add ${detail.peerId}`
              : undefined,
        })
      })
    },

    run(session) {
      const view = terminalView(session, noColour)
      groupPrompt = `${view.groupName()}> `
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
        const text = line.render()
        if (text !== undefined) io.stdout(`${text}\n`)
      }
      io.stdout('Type /help for commands.\n')
      return converse(session, prompt, view, io, print, questions)
    },
  }
}

/**
 * Prints who this peer is, its addresses, its group, and the last messages.
 *
 * @returns the ids of the messages printed
 */
function greet(session: ChatSession, view: TerminalView, io: CliIO): Set<string> {
  const { node } = session
  const shown = new Set<string>()
  const status = session.status()
  io.stdout(`p2pchat: you are ${sanitizeName(node.name)} (${node.peerId})\n`)
  for (const addr of status.addrs) io.stdout(`  listening on ${addr}\n`)
  if (status.group === null) {
    io.stdout('You are in no group yet: restart with --create <name> or --join <invite>.\n')
    return shown
  }
  io.stdout(`Group ${sanitizeName(status.group.name)} (${status.group.id})\n`)
  // names alone can be copied: the fingerprints tell this group's alice from a look-alike's
  if (status.group.inviter !== null)
    io.stdout(`${formatInvitedBy(status.group.founder, status.group.inviter)}\n`)
  if (status.member) {
    const members = node.members(status.group.id)
    io.stdout(`Members: ${members.map((m) => sanitizeName(m.name)).join(', ')}\n`)
    if (members.every((m) => m.peerId === node.peerId))
      io.stdout(`Invite others with: ${node.invite(status.group.id)}\n`)
  } else {
    io.stdout(
      `You are not a member of ${sanitizeName(status.group.name)} yet: a member must /add you. Until then you cannot read its messages.\n`,
    )
  }
  for (const m of node.history(status.group.id, 10)) {
    shown.add(m.id)
    io.stdout(`${view.showMessage(m)}\n`)
  }
  return shown
}

/**
 * Questions asked on the prompt line. While one is open it is the prompt, so a line printed above it
 * redraws it with what the user has typed so far, and the next line typed answers it.
 */
interface Questions {
  /** Shows `text` and resolves with the next line typed (`''` when the session ends first). */
  ask(text: string): Promise<string>
  /** Gives a typed line to the open question; `false` when none is open. */
  answer(line: string): boolean
}

/** Whether a reply to a `[y/N]` question is yes; anything else, an empty line included, is no. */
function isYes(reply: string): boolean {
  return /^y(es)?$/i.test(reply.trim())
}

/** Reads commands and messages at the prompt until the user leaves, stdin ends, or stdout fails. */
function converse(
  session: ChatSession,
  rl: Interface,
  view: TerminalView,
  io: CliIO,
  print: (text: string) => void,
  questions: Questions,
): Promise<number> {
  const { node } = session
  /**
   * `/add`. A peer id, or a name the group's signed events give one peer, adds at once. A name only
   * claimed in join requests could be anyone's: the user checks the peer id and confirms, or, when
   * several peers claimed it, picks one by peer id.
   */
  const add = async (ref: string): Promise<void> => {
    try {
      await node.add(session.group(), ref)
    } catch (err) {
      if ((err as Error).name !== UnverifiedNameError.name) throw err
      const { displayName, candidates } = err as UnverifiedNameError
      const name = sanitizeName(displayName)
      const [only] = candidates
      if (only === undefined || candidates.length > 1) {
        const list = candidates.map((c) => `  ${sanitizeName(c.name)} (${shortId(c.peerId)}) ${c.peerId}`)
        print(
          `${candidates.length} peers asked to join as ${name}, and anyone can claim a name: ask them which peer id is theirs, then /add <peer id>\n${list.join('\n')}`,
        )
        return
      }
      print(
        `${name} is only the name a peer asked to join with, and anyone can claim it: check the peer id with them.`,
      )
      const reply = await questions.ask(`Add ${name} (${shortId(only.peerId)}, ${only.peerId})? [y/N] `)
      if (isYes(reply)) await node.add(session.group(), only.peerId)
      else print('Not added.')
    }
  }

  const handleLine = async (line: string): Promise<'quit' | undefined> => {
    const input = parseInput(line)
    try {
      switch (input.kind) {
        case 'empty':
          return undefined
        case 'text': {
          const result = await node.send(session.group(), input.text)
          if (result.recipients === 0) {
            print('  (nobody is listening yet: the message is kept and delivered when a member connects)')
          }
          return undefined
        }
        case 'command':
          return await command(input.name, input.arg)
      }
    } catch (err) {
      print(`! ${shownMessage(err)}`)
    }
    return undefined
  }

  const command = async (name: string, arg: string): Promise<'quit' | undefined> => {
    switch (name) {
      case 'help':
        print(INTERACTIVE_HELP)
        break
      case 'quit':
      case 'exit':
        return 'quit'
      case 'members':
        print(
          `Members: ${node
            .members(session.group())
            .map((m) => `${sanitizeName(m.name)} (${shortId(m.peerId)})`)
            .join(', ')}`,
        )
        break
      case 'peers': {
        const peers = node.peers()
        print(
          peers.length === 0
            ? 'No peers connected.'
            : `Connected: ${peers.map((p) => `${sanitizeName(p.name || '?')} (${p.peerId})`).join(', ')}`,
        )
        break
      }
      case 'invite':
        print(node.invite(session.group()))
        break
      case 'add':
      case 'remove': {
        if (arg === '') {
          print(`usage: /${name} <name or peer id>`)
          break
        }
        // the membership notice prints "* you added bob"
        await (name === 'add' ? add(arg) : node.remove(session.group(), arg))
        break
      }
      case 'history': {
        const n = arg === '' ? 20 : Number(arg)
        if (!Number.isSafeInteger(n) || n < 1) {
          print('usage: /history [n], n a positive number')
          break
        }
        const messages = node.history(session.group(), n)
        print(messages.length === 0 ? 'No messages yet.' : messages.map(view.showMessage).join('\n'))
        break
      }
      default:
        print(`Unknown command /${name}.\n${INTERACTIVE_HELP}`)
    }
    return undefined
  }

  return runUntilShutdown(node, io, (shutdown) => {
    let queue = Promise.resolve()
    let closed = false
    rl.on('line', (line) => {
      // the answer to the question on the prompt line, which the command waiting in the queue reads
      if (questions.answer(line)) return
      // one command at a time, in order
      queue = queue.then(async () => {
        if ((await handleLine(line)) === 'quit') shutdown('quit')
        else if (!closed) rl.prompt()
      })
    })
    rl.on('SIGINT', () => shutdown('SIGINT'))
    rl.on('close', () => {
      closed = true
      shutdown('closed')
    })
    // nobody can see the chat any more
    const removeStdoutError = io.onStdoutError(() => shutdown('stdout closed'))
    rl.prompt()
    return async () => {
      removeStdoutError()
      // a question nobody will answer now is a no, so the command waiting for it can finish
      questions.answer('')
      await queue
      rl.close()
      if (io.isTTY) io.stdout('\n')
    }
  })
}
