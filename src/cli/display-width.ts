/**
 * How many terminal columns text takes, and where text wraps: double-width characters (CJK, emoji)
 * take two columns, combining marks and joiners none. Pure, so it is tested without a terminal.
 *
 * Counted per code point, as node's readline counts when it draws the prompt line: erasing the rows the
 * prompt line took must agree with how readline laid them out.
 *
 * @packageDocumentation
 */

/**
 * East Asian Wide and Fullwidth code points (Unicode's EastAsianWidth.txt, W and F), in ranges. Emoji
 * shown as pictures are found by `\p{Emoji_Presentation}` instead.
 */
const WIDE: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f],
  [0x2329, 0x232a],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1b000, 0x1b2ff],
  [0x1f200, 0x1f251],
  [0x20000, 0x3fffd],
]

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}]$/u
const EMOJI = /^\p{Emoji_Presentation}$/u

/** Columns one code point takes: 0, 1 or 2. */
export function codePointWidth(char: string): number {
  if (ZERO_WIDTH.test(char)) return 0
  if (EMOJI.test(char)) return 2
  const code = char.codePointAt(0) ?? 0
  return WIDE.some(([from, to]) => code >= from && code <= to) ? 2 : 1
}

/** Columns `text` takes on one row. */
export function displayWidth(text: string): number {
  let width = 0
  for (const char of text) width += codePointWidth(char)
  return width
}

/**
 * Where the cursor ends after writing `text` from the start of a row in a terminal `columns` wide:
 * `rows` below the first row, at column `cols`. A double-width character that does not fit in the last
 * column of a row goes to the next row; a tab goes to the next multiple of 8.
 */
export function displayPos(text: string, columns: number): { rows: number; cols: number } {
  const width = Math.max(1, columns)
  let offset = 0
  for (const char of text) {
    if (char === '\t') {
      offset += 8 - (offset % 8)
      continue
    }
    const w = codePointWidth(char)
    if (w === 2 && (offset + 1) % width === 0) offset++
    offset += w
  }
  const cols = offset % width
  return { rows: (offset - cols) / width, cols }
}
