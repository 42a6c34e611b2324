/**
 * The help text of `p2pchat` and of each command. Plain text with no dependency on the core or on
 * libp2p, so `p2pchat --help` answers at once.
 *
 * @packageDocumentation
 */

import { DEFAULT_LISTEN } from '../node/defaults.js'
import { DEFAULT_RELAY_LISTEN } from '../relay/defaults.js'
import type { UsageTopic } from './errors.js'

/**
 * The membership core's `MAX_NAME_BYTES`, restated so that help does not load the core;
 * test/unit/cli-args.test.ts checks that the start usage states the core's value.
 */
const MAX_NAME_BYTES = 64

const PROGRAM_USAGE = `p2pchat - serverless, end-to-end encrypted group chat on libp2p

Usage:
  p2pchat start --name <name> [options]   Chat as <name> in a group
  p2pchat relay [options]                 Run a relay for peers mDNS cannot reach
  p2pchat help [command]                  Show help for a command
  p2pchat --version                       Print the version

Options:
  -h, --help       Show help (also after a command: p2pchat start --help)
  -v, --version    Print the version

Examples:
  p2pchat start --name alice --create team
  p2pchat start --name bob --join <invite>
  p2pchat relay --listen /ip4/0.0.0.0/tcp/4001

Run 'p2pchat help <command>' for the options of a command.`

const START_USAGE = `Usage: p2pchat start --name <name> [--create <group> | --join <invite>] [options]

Start a chat peer. Peers on the same network find each other by mDNS; use --bootstrap to
reach a relay elsewhere. Without --create or --join, opens a group you already belong to.

Options:
  --name <name>           Your display name (required): at most ${MAX_NAME_BYTES} bytes of UTF-8,
                          i.e. ${MAX_NAME_BYTES} ASCII characters, fewer accented or non-Latin ones
  --create <group>        Create a new group with this name (same limit); you become its
                          first member
  --join <invite>         Join the group this invite (from a member) is for
  --group <id-or-name>    Which of your groups to open, if you belong to several
  --data-dir <dir>        Where to keep your identity and keys
                          (default: <user data dir>/p2pchat/<name>, e.g.
                          ~/.local/share/p2pchat/<name> on Linux)
  --listen <multiaddr>    Address to listen on; repeatable (default: ${DEFAULT_LISTEN.join(', ')})
  --bootstrap <multiaddr> Peer or relay to connect to at start; repeatable (default: none);
                          remembered for later starts
  --forget-relay <multiaddr-or-id>
                          Forget a remembered --bootstrap relay before starting; repeatable
                          (in the chat: /relays lists them, /forget-relay forgets one)
  --no-mdns               Do not discover peers on the local network
  --json                  Speak JSON-RPC 2.0 over stdin/stdout instead of the terminal UI
  --web [host:port]       Also open the chat in a browser: prints the address to open
                          (default: 127.0.0.1, the port of the last run or a free one);
                          another host than 127.0.0.1 or localhost is reachable from the network
  -h, --help              Show this help

Examples:
  p2pchat start --name alice --create team
  p2pchat start --name alice --create team --web
  p2pchat start --name bob --join <invite>
  p2pchat start --name carol --no-mdns \\
    --bootstrap /dns4/relay.example.com/tcp/4001/p2p/12D3KooW...`

const RELAY_USAGE = `Usage: p2pchat relay [options]

Run a relay: it relays connections between peers that cannot reach each other directly and
keeps encrypted messages for members who are offline. It cannot read them, but it sees each
group's name, its members' peer ids and names, and who is online.

Options:
  --listen <multiaddr>    Address to listen on; repeatable (default: ${DEFAULT_RELAY_LISTEN.join(', ')})
  --bootstrap <multiaddr> Other relay or peer to connect to at start; repeatable (default: none)
  --data-dir <dir>        Where to keep the relay's identity and stored messages
                          (default: <user data dir>/p2pchat-relay)
  --max-storage <size>    Most stored ciphertext to keep, e.g. 512MiB, 1GB or a number of
                          bytes (default: 1GiB)
  --retention <duration>  How long to keep stored ciphertext, e.g. 7d, 12h, 30m (default: 30d);
                          a group with no member activity for this long is dropped
  --max-groups <n>        Most groups to keep; a quarter are kept free for new groups
                          (default: 1000)
  --max-memory <size>     Memory for group data, pending buffers included (default: 256MiB)
  --json                  Log JSON lines instead of human-readable text
  -h, --help              Show this help

Examples:
  p2pchat relay
  p2pchat relay --listen /ip4/0.0.0.0/tcp/4001 --max-storage 512MiB --retention 7d`

/**
 * Help text for the program (no argument) or for one command: synopsis, options with their defaults,
 * and examples. No trailing newline.
 *
 * @example
 * ```ts
 * console.log(usage('start'))
 * ```
 */
export function usage(command?: UsageTopic): string {
  switch (command) {
    case 'start':
      return START_USAGE
    case 'relay':
      return RELAY_USAGE
    default:
      return PROGRAM_USAGE
  }
}
