import { clearLine, createInterface, cursorTo, type Interface } from 'node:readline'
import type { ChatMessage, ChatNode, PeerRef } from '../node/index.js'
import {
  detectNoColour,
  type FormatOptions,
  formatEncryptedLine,
  formatMembershipChange,
  formatMessageLine,
  sanitizeName,
  shortId,
} from './format.js'
import type { CliIO } from './io.js'
import { runUntilShutdown } from './shutdown.js'

/** Help shown by `/help` and for unknown commands. */
export const INTERACTIVE_HELP = `Commands:
  /help              this help
  /members           who is in the group
  /peers             peers connected now
  /invite            an invite to give to someone (they run: p2pchat start --name <them> --join <invite>)
  /add <name|id>     add a member (a name works when exactly one known peer has it)
  /remove <name|id>  remove a member
  /history [n]       the last n messages (default 20)
  /quit              leave (Ctrl-D and Ctrl-C work too)
Anything else is sent to the group.`

/** One parsed line of interactive input. */
export type InteractiveInput =
  | { kind: 'empty' }
  | { kind: 'text'; text: string }
  | { kind: 'command'; name: string; arg: string }

/** Splits a line typed at the prompt into a message or a command. `//x` sends `/x`. */
export function parseInput(line: string): InteractiveInput {
  const trimmed = line.trim()
  if (trimmed.length === 0) return { kind: 'empty' }
  if (trimmed.startsWith('//')) return { kind: 'text', text: line.trimEnd().replace(/^\s*\//, '') }
  if (!trimmed.startsWith('/')) return { kind: 'text', text: line.trimEnd() }
  const space = trimmed.indexOf(' ')
  const name = (space < 0 ? trimmed.slice(1) : trimmed.slice(1, space)).toLowerCase()
  return { kind: 'command', name, arg: space < 0 ? '' : trimmed.slice(space + 1).trim() }
}

/**
 * The terminal chat: a readline prompt that incoming lines never garble (each is printed above the
 * prompt, which is then redrawn with what the user had typed).
 */
export async function runInteractive(node: ChatNode, io: CliIO): Promise<number> {
  const noColour = detectNoColour({ isTTY: io.isTTY })
  const groupName = (): string => node.status().group?.name ?? 'p2pchat'
  const rl: Interface = createInterface({
    input: io.stdin,
    output: io.output,
    terminal: io.isTTY,
    prompt: `${groupName()}> `,
  })

  const names = (): Map<string, string> => {
    const map = new Map<string, string>()
    try {
      for (const m of node.members()) map.set(m.peerId, m.name)
    } catch {
      // no group yet
    }
    for (const p of node.peers()) if (p.name !== '') map.set(p.peerId, p.name)
    return map
  }
  const options = (): FormatOptions => ({ noColour, namesInUse: names() })

  /** Prints a line above the prompt without disturbing what the user is typing. */
  const print = (text: string): void => {
    if (io.isTTY) {
      clearLine(io.output, 0)
      cursorTo(io.output, 0)
      io.stdout(`${text}\n`)
      rl.prompt(true)
    } else {
      io.stdout(`${text}\n`)
    }
  }
  const ref = (p: PeerRef): { peerId: string; name: string } => ({ peerId: p.peerId, name: p.name })
  const showMessage = (m: ChatMessage): string =>
    formatMessageLine(
      { ts: m.ts, name: m.name, peerId: m.from, text: m.text, self: m.from === node.peerId },
      options(),
    )

  node.addEventListener('message:receive', ({ detail }) => {
    if (detail.group === node.status().group?.id && detail.from !== node.peerId) print(showMessage(detail))
  })
  node.addEventListener('message:encrypted', ({ detail }) => {
    if (detail.group !== node.status().group?.id) return
    print(
      formatEncryptedLine(
        { bytes: detail.bytes, name: detail.name, peerId: detail.from, preview: detail.preview },
        options(),
      ),
    )
  })
  node.addEventListener('membership:change', ({ detail }) => {
    if (detail.group !== node.status().group?.id) return
    const { change } = detail
    if (change === null) {
      print(`* members are now: ${detail.members.map((m) => sanitizeName(m.name)).join(', ')}`)
    } else if (change.action === 'create') {
      print(formatMembershipChange({ type: 'create', by: ref(change.by), groupName: groupName() }, options()))
    } else {
      print(
        formatMembershipChange(
          { type: change.action, by: ref(change.by), member: ref(change.member) },
          options(),
        ),
      )
    }
    rl.setPrompt(`${groupName()}> `)
  })
  node.addEventListener('join:request', ({ detail }) => {
    if (detail.group !== node.status().group?.id) return
    print(`* ${sanitizeName(detail.name)} (${shortId(detail.peerId)}) asks to join: /add ${detail.peerId}`)
  })

  const status = node.status()
  io.stdout(`p2pchat: you are ${sanitizeName(node.name)} (${node.peerId})\n`)
  for (const addr of status.addrs) io.stdout(`  listening on ${addr}\n`)
  if (status.group === null) {
    io.stdout('You are in no group yet: restart with --create <name> or --join <invite>.\n')
  } else {
    io.stdout(`Group ${sanitizeName(status.group.name)} (${status.group.id})\n`)
    if (status.member) {
      const others = node.members().filter((m) => m.peerId !== node.peerId)
      io.stdout(
        `Members: ${node
          .members()
          .map((m) => sanitizeName(m.name))
          .join(', ')}\n`,
      )
      if (others.length === 0) io.stdout(`Invite others with: ${node.invite()}\n`)
    } else {
      io.stdout(
        `You are not a member of ${sanitizeName(status.group.name)} yet: a member must /add you. Until then you see only ciphertext.\n`,
      )
    }
    for (const m of node.history(10)) io.stdout(`${showMessage(m)}\n`)
  }
  io.stdout('Type /help for commands.\n')

  const run = async (line: string): Promise<'quit' | undefined> => {
    const input = parseInput(line)
    try {
      switch (input.kind) {
        case 'empty':
          return undefined
        case 'text': {
          const result = await node.send(input.text)
          if (result.recipients === 0) {
            print('  (nobody is listening yet: the message is kept and delivered when a member connects)')
          }
          return undefined
        }
        case 'command':
          return await command(input.name, input.arg)
      }
    } catch (err) {
      print(`! ${(err as Error).message}`)
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
            .members()
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
        print(node.invite())
        break
      case 'add':
      case 'remove': {
        if (arg === '') {
          print(`usage: /${name} <name or peer id>`)
          break
        }
        // the membership notice prints "* you added bob"
        await (name === 'add' ? node.add(arg) : node.remove(arg))
        break
      }
      case 'history': {
        const n = arg === '' ? 20 : Number(arg)
        if (!Number.isSafeInteger(n) || n < 1) {
          print('usage: /history [n], n a positive number')
          break
        }
        const messages = node.history(n)
        print(messages.length === 0 ? 'No messages yet.' : messages.map(showMessage).join('\n'))
        break
      }
      default:
        print(`Unknown command /${name}.\n${INTERACTIVE_HELP}`)
    }
    return undefined
  }

  return runUntilShutdown(node, io, (shutdown) => {
    let queue = Promise.resolve()
    rl.on('line', (line) => {
      // one command at a time, in order
      queue = queue.then(async () => {
        if ((await run(line)) === 'quit') shutdown('quit')
        else rl.prompt()
      })
    })
    rl.on('SIGINT', () => shutdown('SIGINT'))
    rl.on('close', () => shutdown('closed'))
    rl.prompt()
    return async () => {
      await queue
      rl.close()
      if (io.isTTY) io.stdout('\n')
    }
  })
}
