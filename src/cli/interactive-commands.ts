/**
 * What the interactive prompt does with a typed line: sends a message, or runs a `/command`. Commands
 * that need the user's confirmation ask on the prompt line ({@link Questions}).
 *
 * @packageDocumentation
 */

import { InvalidArgumentError } from '../membership/index.js'
import { UnverifiedNameError } from '../node/index.js'
import { sanitizeName, sanitizeText, shortId } from './format.js'
import { formatGroupList, nameWithId } from './format-notices.js'
import { INTERACTIVE_HELP, parseInput, unknownCommand } from './interactive-input.js'
import type { ChatSession } from './session.js'
import { showGroup, type TerminalView } from './terminal-view.js'
import { shownMessage } from './user-errors.js'

/** The commands that take an argument, and what it is. */
const ARGUMENT_NEEDED: Readonly<Record<string, string>> = {
  add: '<name or peer id>',
  remove: '<name or peer id>',
  switch: '<group name or id>',
  create: '<group name>',
  join: '<invite>',
  forget: '<group name or id>',
  connect: '<multiaddr>',
  'forget-relay': '<multiaddr or peer id> (/relays lists them)',
}

/** How many missed messages `/switch` shows at most; `/history` shows more. */
const MAX_MISSED_SHOWN = 50

/**
 * Questions asked on the prompt line. While one is open it is the prompt, so a line printed above it
 * redraws it with what the user has typed so far, and the next line typed answers it.
 */
export interface Questions {
  /** Shows `text` and resolves with the next line typed (`''` when the session ends first). */
  ask(text: string): Promise<string>
  /** Gives a typed line to the open question; `false` when none is open. */
  answer(line: string): boolean
}

/** Whether a reply to a `[y/N]` question is yes; anything else, an empty line included, is no. */
function isYes(reply: string): boolean {
  return /^y(es)?$/i.test(reply.trim())
}

/**
 * The handler of lines typed at the prompt: each resolves once its work is done, with `'quit'` when the
 * user leaves. Errors are printed (`! ...`), not thrown.
 */
export function lineHandler(
  session: ChatSession,
  view: TerminalView,
  print: (text: string) => void,
  questions: Questions,
  setGroupPrompt: (text: string) => void,
): (line: string) => Promise<'quit' | undefined> {
  const { node } = session
  /**
   * Shows the group `ref` names: its header, then what arrived there while another group was on screen
   * (at most {@link MAX_MISSED_SHOWN}; `/history` has the rest).
   */
  const switchTo = (ref: string): void => {
    const { missed } = session.select(ref)
    setGroupPrompt(view.prompt())
    const lines: string[] = []
    showGroup(session, view, (text) => lines.push(text), 0)
    const group = session.group()
    if (missed > 0) {
      const shown = Math.min(missed, MAX_MISSED_SHOWN)
      lines.push(
        missed > shown
          ? `${missed} messages while you were away; the last ${shown} (/history ${missed} for all):`
          : `${missed} ${missed === 1 ? 'message' : 'messages'} while you were away:`,
      )
      for (const m of node.history(group, shown)) lines.push(view.showMessage(m))
    }
    print(lines.join('\n'))
  }

  /** `/leave`: asks first, since only a member can add this peer back. */
  const leave = async (): Promise<void> => {
    const group = session.group()
    const name = sanitizeName(view.groupNameOf(group))
    const reply = await questions.ask(
      `Leave ${name}? You will read nothing sent there after this; only a member can add you back. [y/N] `,
    )
    if (!isYes(reply)) {
      print('Still in the group.')
      return
    }
    // the membership notice prints "* you left team at 14:02"
    await node.leave(group)
    print(`/forget ${name} deletes it and its history from this device.`)
  }

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
        const list = candidates.map((c) => `  ${nameWithId(c)} ${c.peerId}`)
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

  /** `/relays` lists the remembered relays; `/forget-relay` forgets one. */
  const relayCommand = (name: string, arg: string): string => {
    const list = (relays: string[]): string =>
      relays.length === 0
        ? 'No relays remembered.'
        : `Relays remembered:\n${relays.map((r) => `  ${r}`).join('\n')}`
    if (name === 'relays') return list(node.connections.relays())
    const forgotten = node.connections.forgetRelay(arg)
    if (forgotten.length === 0)
      return `No remembered relay is ${sanitizeText(arg)}. ${list(node.connections.relays())}`
    return `Forgot ${forgotten.map((r) => sanitizeText(r)).join(', ')}: not dialled any more.`
  }

  const handleLine = async (line: string): Promise<'quit' | undefined> => {
    const input = parseInput(line)
    try {
      switch (input.kind) {
        case 'empty':
          return undefined
        case 'text': {
          // the typed line was taken off the screen; this echo with its time and delivery replaces it
          let sent: { ts: number; recipients: number }
          try {
            sent = await node.send(session.group(), input.text)
          } catch (err) {
            // the text is shown again, so a message that could not be sent is not lost with its line
            print(`! Not sent: ${shownMessage(err)}\n  ${sanitizeText(input.text)}`)
            return undefined
          }
          print(view.showSent({ ...sent, text: input.text }))
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
    const needed = Object.hasOwn(ARGUMENT_NEEDED, name) ? ARGUMENT_NEEDED[name] : undefined
    if (arg === '' && needed !== undefined) {
      print(`usage: /${name} ${needed}`)
      return undefined
    }
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
            .map((m) => nameWithId(m))
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
      case 'connect': {
        const peer = await node.connect(arg)
        print(`Connected to ${sanitizeName(peer.name || '?')} (${peer.peerId}).`)
        break
      }
      case 'relays':
      case 'forget-relay':
        print(relayCommand(name, arg))
        break
      case 'invite': {
        if (arg !== '' && arg !== '--ask') throw new InvalidArgumentError('/invite takes only --ask')
        const ask = arg === '--ask'
        print(node.invite(session.group(), { ask }))
        print(
          ask
            ? 'They run: p2pchat start --name <them> --join <invite>; then a member adds them with /add.'
            : 'They run: p2pchat start --name <them> --join <invite>. Any member online admits them, once, within 7 days.',
        )
        break
      }
      case 'add':
      case 'remove': {
        // the membership notice prints "* you added bob"
        await (name === 'add' ? add(arg) : node.remove(session.group(), arg))
        break
      }
      case 'groups':
        print(formatGroupList(session.groups(), node.peerId, view.options()))
        break
      case 'switch':
        switchTo(arg)
        break
      case 'create':
        switchTo((await node.createGroup(arg)).id)
        print(`* you created ${sanitizeName(arg)}`)
        break
      case 'join':
        switchTo((await node.joinGroup(arg)).id)
        break
      case 'leave':
        await leave()
        break
      case 'rejoin': {
        const group = arg === '' ? session.group() : node.findGroup(arg).id
        node.rejoin(group)
        print(`Asking the members of ${sanitizeName(view.groupNameOf(group))} to add you again.`)
        break
      }
      case 'forget': {
        const forgotten = session.forget(arg)
        setGroupPrompt(view.prompt())
        const now = session.groupId === undefined ? '' : ` Now in ${sanitizeName(view.groupName())}.`
        print(
          `Forgot ${sanitizeName(forgotten.name)}: it and its history are deleted from this device.${now}`,
        )
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
        print(unknownCommand(name))
    }
    return undefined
  }

  return handleLine
}
