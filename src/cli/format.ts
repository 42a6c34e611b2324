/**
 * Pure formatting for the interactive terminal: sanitising, names and colours, message lines and
 * ciphertext placeholders. The notices about groups and membership are in `format-notices.ts`.
 *
 * Names and message text arrive from remote peers, so everything shown is sanitised first: escape
 * sequences, control characters and bidi/zero-width format characters are removed, so a peer
 * cannot recolour the terminal, move the cursor, set the window title, rewrite a line with `\r`, or
 * make one name look like another.
 *
 * @packageDocumentation
 */

/** Foreground colours (SGR codes) peers are painted in; readable on dark and light backgrounds. */
export const PEER_COLOURS = [32, 33, 35, 36, 92, 93, 95, 96] as const

/** One of {@link PEER_COLOURS}. */
export type PeerColour = (typeof PEER_COLOURS)[number]

/** Presentation options shared by the formatters. */
export interface FormatOptions {
  /** Emit plain text without ANSI colours; see {@link detectNoColour}. Default `false`. */
  noColour?: boolean
  /**
   * Every known peer as `[peerId, name]` (a `Map<peerId, name>` works), so that a name two peers
   * share is shown with a short peer id. See {@link displayName}.
   */
  namesInUse?: Iterable<readonly [peerId: string, name: string]>
  /**
   * The time now, in milliseconds since the epoch: a timestamp from another day then shows its date
   * (see {@link formatWhen}). Without it, timestamps are `HH:MM` only.
   */
  now?: number
}

/** The longest name shown, in code points; longer names from the network are cut with `…`. */
export const MAX_DISPLAY_NAME_LENGTH = 64

const ESC = '\u001b'
const SGR_RESET_FG = `${ESC}[39m`
const SGR_BOLD = `${ESC}[1m`
const SGR_DIM = `${ESC}[2m`
const SGR_RESET_INTENSITY = `${ESC}[22m`

/*
 * Escape sequences, longest forms first:
 * - string commands (OSC, DCS, SOS, PM, APC), 7-bit or 8-bit introducer, up to BEL or ST, e.g. the
 *   window title `ESC ] 0 ; title BEL` or an OSC 8 hyperlink;
 * - CSI (`ESC [` or 0x9B), parameters, intermediates, final byte: colours, cursor movement, erase;
 * - any other escape: ESC, intermediates, one final byte (`ESC c` resets the terminal).
 * An unterminated string command is cut down to its introducer by the last pattern; the rest shows
 * as harmless text.
 */
const ESCAPE_SEQUENCE = new RegExp(
  [
    // The body stops at any ESC or introducer, which keeps matching linear on hostile input.
    '(?:\\u001b[\\]PX^_]|[\\u0090\\u0098\\u009d-\\u009f])[^\\u0007\\u001b\\u0090\\u0098\\u009c-\\u009f]*(?:\\u0007|\\u001b\\\\|\\u009c)',
    '(?:\\u001b\\[|\\u009b)[\\u0030-\\u003f]*[\\u0020-\\u002f]*[\\u0040-\\u007e]',
    '\\u001b[\\u0020-\\u002f]*[\\u0030-\\u007e]',
  ].join('|'),
  'g',
)

/**
 * Characters removed outright: C0 and C1 controls and DEL (newline and tab are handled before),
 * lone surrogates, and format characters (bidi overrides and isolates, zero-width space, BOM, soft
 * hyphen), except the zero-width (non-)joiners that emoji sequences and some scripts need.
 */
const UNSAFE_CHARACTERS = /[\p{Cc}\p{Cs}]|(?![\u200C\u200D])\p{Cf}/gu

/**
 * Make untrusted text safe to print: escape sequences and control characters removed, `\r\n`,
 * `\r`, U+2028 and U+2029 turned into `\n`, tabs into four spaces.
 *
 * @param text - text received from the network
 * @param options - `multiline: false` (the default) also turns each line break into a space
 */
export function sanitizeText(text: string, options: { multiline?: boolean } = {}): string {
  const clean = text
    .replace(ESCAPE_SEQUENCE, '')
    .replace(/\r\n?|[\u2028\u2029\u0085]/g, '\n')
    .replace(/\t/g, '    ')
    // Removing every remaining control character (ESC included) also means no new escape sequence
    // can be formed out of what the steps above left behind.
    .replace(UNSAFE_CHARACTERS, (char) => (char === '\n' ? char : ''))
  return options.multiline === true ? clean : clean.replace(/\n/g, ' ')
}

/**
 * Make a name from the network safe and compact to print: sanitised, line breaks and runs of
 * whitespace collapsed to one space, trimmed, cut to {@link MAX_DISPLAY_NAME_LENGTH} code points.
 * An empty result becomes `(no name)`.
 */
export function sanitizeName(name: string): string {
  const clean = sanitizeText(name).replace(/\s+/gu, ' ').trim()
  if (clean === '') {
    return '(no name)'
  }
  const chars = [...clean]
  return chars.length > MAX_DISPLAY_NAME_LENGTH
    ? `${chars.slice(0, MAX_DISPLAY_NAME_LENGTH - 1).join('')}…`
    : clean
}

/**
 * What two names must share to be confusable: the sanitised name without joiners, compatibility-
 * normalised (fullwidth `ａ` is `a`) and case-folded.
 */
function nameKey(name: string): string {
  return sanitizeName(name)
    .replace(/[\u200C\u200D]/g, '')
    .normalize('NFKC')
    .toLowerCase()
}

/**
 * Local wall-clock time as `HH:MM`, 24-hour.
 *
 * @param ts - milliseconds since the epoch, or a Date
 */
export function formatTime(ts: number | Date): string {
  const date = typeof ts === 'number' ? new Date(ts) : ts
  if (Number.isNaN(date.getTime())) {
    return '--:--'
  }
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/**
 * A local timestamp that says which day when it is not today: `14:02` today, `30 Nov 14:02` on another
 * day of this year, `30 Nov 2025 14:02` in another year. Without `now`, {@link formatTime}.
 *
 * @param ts - milliseconds since the epoch
 * @param now - the time now, in milliseconds since the epoch
 *
 * @example
 * ```ts
 * formatWhen(new Date(2026, 10, 30, 14, 2).getTime(), new Date(2026, 11, 1, 9, 0).getTime()) // → '30 Nov 14:02'
 * ```
 */
export function formatWhen(ts: number, now?: number): string {
  const time = formatTime(ts)
  if (now === undefined || Number.isNaN(ts)) return time
  const date = new Date(ts)
  const today = new Date(now)
  if (date.toDateString() === today.toDateString()) return time
  const year = date.getFullYear() === today.getFullYear() ? '' : ` ${date.getFullYear()}`
  return `${date.getDate()} ${MONTHS[date.getMonth()]}${year} ${time}`
}

/**
 * A short, recognisable form of a peer id: its last four characters after an ellipsis.
 *
 * @example
 * ```ts
 * shortId('12D3KooWRm3AETnJHPfMnTvBuQKiUfGnNdzkn7wp3xQk') // → '…3xQk'
 * ```
 */
export function shortId(peerId: string): string {
  return `…${[...sanitizeText(peerId).trim()].slice(-4).join('')}`
}

/**
 * The name to show for a peer: its sanitised name, followed by its {@link shortId} when another
 * known peer's name looks the same (ignoring case, width and invisible joiners), so nobody can pass
 * as someone else by taking their name.
 *
 * @param name - the name the peer claims
 * @param peerId - the peer's id
 * @param namesInUse - every known peer as `[peerId, name]`, e.g. a `Map<peerId, name>`
 *
 * @example
 * ```ts
 * const peers = new Map([['12D3…aaaa', 'alice'], ['12D3…bbbb', 'Alice']])
 * displayName('alice', '12D3…aaaa', peers) // → 'alice (…aaaa)'
 * displayName('bob', '12D3…cccc', peers)   // → 'bob'
 * ```
 */
export function displayName(
  name: string,
  peerId: string,
  namesInUse: Iterable<readonly [peerId: string, name: string]> = [],
): string {
  const shown = sanitizeName(name)
  const key = nameKey(name)
  for (const [otherId, otherName] of namesInUse) {
    if (otherId !== peerId && nameKey(otherName) === key) {
      return `${shown} (${shortId(peerId)})`
    }
  }
  return shown
}

/**
 * The colour a peer is always shown in, picked from {@link PEER_COLOURS} by a hash (FNV-1a) of its
 * id, so it is the same in every session and on every machine.
 */
export function colourFor(peerId: string): PeerColour {
  let hash = 0x811c9dc5
  for (let i = 0; i < peerId.length; i++) {
    hash ^= peerId.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return PEER_COLOURS[(hash >>> 0) % PEER_COLOURS.length] ?? PEER_COLOURS[0]
}

/**
 * Whether to print without colours: when `NO_COLOR` is set to anything but the empty string
 * (https://no-color.org), when `TERM` is `dumb`, or when the output is not a terminal.
 *
 * @param stream - the output stream, or anything with its `isTTY` (`undefined` for a pipe or file)
 * @param env - environment variables to read
 *
 * @example
 * ```ts
 * const options = { noColour: detectNoColour(process.stdout) }
 * ```
 */
export function detectNoColour(
  stream: { isTTY?: boolean | undefined },
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return (env.NO_COLOR !== undefined && env.NO_COLOR !== '') || env.TERM === 'dumb' || stream.isTTY !== true
}

function paint(text: string, colour: PeerColour, options: FormatOptions): string {
  return options.noColour === true ? text : `${ESC}[${colour}m${text}${SGR_RESET_FG}`
}

function style(text: string, sgr: string, options: FormatOptions): string {
  return options.noColour === true ? text : `${sgr}${text}${SGR_RESET_INTENSITY}`
}

/** A peer as the formatters need it. A missing name is shown as the peer's short id. */
export interface PeerRef {
  peerId: string
  name?: string | undefined
}

/** A peer's name as a notice shows it: painted in its colour, disambiguated; its short id when unnamed. */
export function peerLabel(peer: PeerRef, options: FormatOptions): string {
  const label =
    peer.name === undefined ? shortId(peer.peerId) : displayName(peer.name, peer.peerId, options.namesInUse)
  return paint(label, colourFor(peer.peerId), options)
}

/** A decrypted chat message, as {@link formatMessageLine} shows it. */
export interface ChatLine {
  /** When it was sent, in milliseconds since the epoch. */
  ts: number
  /** The sender's claimed name. */
  name: string
  /** The sender's peer id. */
  peerId: string
  /** The message text; may contain line breaks. */
  text: string
  /** Whether this peer sent it. */
  self: boolean
}

/**
 * One chat message for the terminal: `HH:MM name: text`. The sender's name is painted in its
 * {@link colourFor} colour (your own in bold instead) and disambiguated with
 * {@link FormatOptions.namesInUse}. Further lines of a multi-line message are indented under the
 * name, so they cannot pass for a message from someone else.
 *
 * @example
 * ```ts
 * formatMessageLine({ ts, name: 'alice', peerId, text: 'hi\nall', self: false }, { noColour: true })
 * // → '09:05 alice: hi\n      all'
 * ```
 */
export function formatMessageLine(message: ChatLine, options: FormatOptions = {}): string {
  const name = displayName(message.name, message.peerId, options.namesInUse)
  const label = message.self
    ? style(name, SGR_BOLD, options)
    : paint(name, colourFor(message.peerId), options)
  const lines = sanitizeText(message.text, { multiline: true }).replace(/\n+$/, '').split('\n')
  const when = formatWhen(message.ts, options.now)
  // continuation lines start under the sender's name, whatever the width of the timestamp
  const indent = ' '.repeat(when.length + 1)
  return `${style(when, SGR_DIM, options)} ${label}: ${lines.join(`\n${indent}`)}`
}

/**
 * What happened to a message this peer sent, as the echo of its own line ends: `✓3` for the number of
 * peers it was handed to, or that nobody got it yet. A message nobody got is stored, and sync gives it
 * to the members that connect later.
 */
export function formatDelivery(recipients: number, options: FormatOptions = {}): string {
  return recipients > 0
    ? style(`✓${recipients}`, SGR_DIM, options)
    : style('(not delivered yet: it is sent when a member connects)', SGR_DIM, options)
}

/** A message this peer could not decrypt, as {@link formatEncryptedLine} shows it. */
export interface EncryptedLine {
  /** Size of the ciphertext. */
  bytes: number
  /** The sender's claimed name, if known. */
  name?: string | undefined
  /** The sender's peer id. */
  peerId: string
  /** The ciphertext (its first bytes are shown in hex) or an already-made preview string. */
  preview?: Uint8Array | string | undefined
}

/** How many ciphertext bytes {@link formatEncryptedLine} shows. */
export const PREVIEW_BYTES = 4
/** How many characters of a preview string {@link formatEncryptedLine} shows. */
const PREVIEW_TEXT_LENGTH = 16

/**
 * A placeholder for a message that could not be decrypted (sent before we joined, or to an epoch
 * we have no key for), dimmed, with the start of the ciphertext.
 *
 * @example
 * ```ts
 * formatEncryptedLine({ bytes: 83, name: 'alice', peerId, preview: ciphertext }, { noColour: true })
 * // → '[encrypted · 83 bytes · from alice (…3xQk)] 9f2c01ab…'
 * ```
 */
export function formatEncryptedLine(line: EncryptedLine, options: FormatOptions = {}): string {
  const size = `${line.bytes} ${line.bytes === 1 ? 'byte' : 'bytes'}`
  const from =
    line.name === undefined ? shortId(line.peerId) : `${sanitizeName(line.name)} (${shortId(line.peerId)})`
  let preview = ''
  if (line.preview instanceof Uint8Array) {
    const shown = line.preview.subarray(0, PREVIEW_BYTES)
    const hex = Array.from(shown, (byte) => byte.toString(16).padStart(2, '0')).join('')
    preview = hex === '' ? '' : ` ${hex}${line.preview.length > shown.length ? '…' : ''}`
  } else if (line.preview !== undefined) {
    const text = [...sanitizeText(line.preview).trim()]
    preview =
      text.length === 0
        ? ''
        : ` ${text.length > PREVIEW_TEXT_LENGTH ? `${text.slice(0, PREVIEW_TEXT_LENGTH).join('')}…` : text.join('')}`
  }
  return style(`[encrypted · ${size} · from ${from}]${preview}`, SGR_DIM, options)
}
