import { clearLine, createInterface, cursorTo, type Interface } from 'node:readline'
import {
  type ChatMessage,
  type GroupStanding,
  type MembershipNotice,
  type PeerRef,
  type Removal,
  UnverifiedNameError,
} from '../node/index.js'
import {
  detectNoColour,
  type FormatOptions,
  formatEncryptedLine,
  formatMessageLine,
  sanitizeName,
  shortId,
} from './format.js'
import {
  formatBadEpochKey,
  formatForgedInvite,
  formatGroupList,
  formatInvitedBy,
  formatMembershipChange,
  formatRemoval,
  formatUnreadNotice,
} from './format-notices.js'
import { INTERACTIVE_HELP, parseInput } from './interactive-input.js'
import type { CliIO } from './io.js'
import type { ChatSession, StartMode } from './session.js'
import { runUntilShutdown } from './shutdown.js'
import { shownMessage } from './user-errors.js'

/** A line of output raised while the node starts: shown after the greeting, if still relevant. */
interface EarlyLine {
  /** The message it shows, so it is not shown twice when the greeting's history has it. */
  messageId?: string
  /** The text to print, worked out when printed; `undefined` to drop it. */
  render: () => string | undefined
  /** A notice of a message in another group: the greeting's unread counts stand for it at start-up. */
  unreadNotice?: boolean
}

/** The commands that take an argument, and what it is. */
const ARGUMENT_NEEDED: Readonly<Record<string, string>> = {
  add: '<name or peer id>',
  remove: '<name or peer id>',
  switch: '<group name or id>',
  create: '<group name>',
  join: '<invite>',
  forget: '<group name or id>',
}

/** How many missed messages `/switch` shows at most; `/history` shows more. */
const MAX_MISSED_SHOWN = 50

/** How the terminal shows a node's state: names, colours, which group is on screen. */
interface TerminalView {
  groupName: () => string
  /** The name of any of the node's groups (the end of its id once forgotten). */
  groupNameOf: (group: string) => string
  /** The prompt: the name of the group on screen. */
  prompt: () => string
  options: () => FormatOptions
  showMessage: (m: ChatMessage) => string
  inActiveGroup: (group: string) => boolean
  /** Where this peer stands in a group; undefined once the group is forgotten. */
  standing: (group: string) => GroupStanding | undefined
  /** "you were removed from team by alice at 14:02", "you left team at 14:02". */
  removal: (group: string, removal: Pick<Removal, 'by' | 'at'>) => string
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
  const groupNameOf = (group: string): string =>
    node.groups().find((g) => g.id === group)?.name ?? group.slice(-8)
  const groupName = (): string => session.status().group?.name ?? 'p2pchat'
  return {
    groupName,
    groupNameOf,
    prompt: () => `${sanitizeName(groupName())}> `,
    options,
    showMessage: (m) =>
      formatMessageLine(
        { ts: m.ts, name: m.name, peerId: m.from, text: m.text, self: m.from === node.peerId },
        options(),
      ),
    inActiveGroup: (group) => group === session.groupId,
    standing: (group) => {
      try {
        return node.standing(group)
      } catch {
        return undefined
      }
    },
    removal: (group, removal) =>
      formatRemoval({ groupName: groupNameOf(group), ...removal, self: node.peerId }, options()),
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

      /** `[club] ` before a line about a group not on screen; '' for the group on screen. */
      const where = (group: string): string =>
        view.inActiveGroup(group) ? '' : `[${sanitizeName(view.groupNameOf(group))}] `

      node.addEventListener('message:receive', ({ detail }) => {
        if (detail.from === node.peerId) return
        show({
          messageId: detail.id,
          unreadNotice: !view.inActiveGroup(detail.group),
          render: () => {
            if (view.inActiveGroup(detail.group)) return view.showMessage(detail)
            // read meanwhile: the user switched there and saw it
            const unread = session.unread(detail.group)
            if (unread === 0) return undefined
            return formatUnreadNotice(
              {
                groupName: view.groupNameOf(detail.group),
                from: { peerId: detail.from, name: detail.name || undefined },
                unread,
              },
              view.options(),
            )
          },
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
            const active = view.inActiveGroup(detail.group)
            if (active) setGroupPrompt(view.prompt())
            const { change } = detail
            if (change?.action === 'remove' && change.member.peerId === node.peerId) {
              // in any group: where this peer stands is news wherever the user is looking
              const at = view.standing(detail.group)?.removed?.at ?? Date.now()
              return `* ${view.removal(detail.group, { by: ref(change.by), at })}`
            }
            // this peer's own changes in another group (a /create, say) were said where it made them
            if (!active && (change === null || change.by.peerId === node.peerId)) return undefined
            const line = membershipLine(detail.members, change)
            return active ? line : `* ${where(detail.group)}${line.slice(2)}`
          },
        })
      })
      const membershipLine = (members: PeerRef[], change: MembershipNotice['change']): string => {
        if (change === null) {
          return `* members are now: ${members.map((m) => sanitizeName(m.name)).join(', ')}`
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
      }
      node.addEventListener('epoch:bad-key', ({ detail }) => {
        show({ render: () => `${where(detail.group)}${formatBadEpochKey(detail)}` })
      })
      node.addEventListener('invite:forged', ({ detail }) => {
        show({ render: () => `${where(detail.group)}${formatForgedInvite(detail)}` })
      })
      node.addEventListener('join:request', ({ detail }) => {
        show({
          render: () => {
            const asks = `${sanitizeName(detail.name)} (${shortId(detail.peerId)}) asks to join`
            if (view.inActiveGroup(detail.group)) return `* ${asks}: /add ${detail.peerId}`
            const group = sanitizeName(view.groupNameOf(detail.group))
            return `* [${group}] ${asks}: /switch ${group}, then /add ${detail.peerId}`
          },
        })
      })
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
      return converse(session, prompt, view, io, print, questions, setGroupPrompt)
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
  const status = session.status()
  io.stdout(`p2pchat: you are ${sanitizeName(node.name)} (${node.peerId})\n`)
  for (const addr of status.addrs) io.stdout(`  listening on ${addr}\n`)
  if (status.group === null) {
    io.stdout('You are in no group yet: /create <name> or /join <invite>.\n')
    return new Set()
  }
  const shown = showGroup(session, view, (text) => io.stdout(`${text}\n`), 10)
  const others = session.groups().filter((g) => !g.active)
  if (others.length > 0) {
    const list = others.map((g) => `${sanitizeName(g.name)}${g.unread > 0 ? ` (${g.unread} unread)` : ''}`)
    io.stdout(`Your other groups: ${list.join(', ')}. /switch <name> shows one.\n`)
  }
  return shown
}

/**
 * Prints the group on screen: its name and id, who invited this peer, where it stands, and its last
 * `messages` messages.
 *
 * @returns the ids of the messages printed
 */
function showGroup(
  session: ChatSession,
  view: TerminalView,
  out: (text: string) => void,
  messages: number,
): Set<string> {
  const { node } = session
  const shown = new Set<string>()
  const status = session.status()
  if (status.group === null) return shown
  const { group } = status
  const name = sanitizeName(group.name)
  out(`Group ${name} (${group.id})`)
  // names alone can be copied: the fingerprints tell this group's alice from a look-alike's
  if (group.inviter !== null) out(formatInvitedBy(group.founder, group.inviter))
  if (status.member) {
    const members = node.members(group.id)
    out(`Members: ${members.map((m) => sanitizeName(m.name)).join(', ')}`)
    if (members.every((m) => m.peerId === node.peerId)) out(`Invite others with: ${node.invite(group.id)}`)
  } else if (status.removed !== null) {
    const removal = view.removal(group.id, status.removed)
    out(
      status.removed.rejoining
        ? `${capitalise(removal)}; you asked to be added again: a member must /add you.`
        : `${capitalise(removal)}. /rejoin asks to be added again; /forget ${name} deletes it from this device.`,
    )
  } else {
    out(
      `You are not a member of ${name} yet: a member must /add you. Until then you cannot read its messages.`,
    )
  }
  for (const m of messages > 0 ? node.history(group.id, messages) : []) {
    shown.add(m.id)
    out(view.showMessage(m))
  }
  return shown
}

function capitalise(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}`
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
  setGroupPrompt: (text: string) => void,
): Promise<number> {
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
