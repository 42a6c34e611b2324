/**
 * Building the page without HTML: every string becomes a text node, so names and message bodies from
 * the network are shown as text and never parsed as markup.
 */

type Child = Node | string | null | undefined | false

/**
 * Bidi embeddings, overrides and isolates, and the invisible direction marks: a peer could make
 * `invoice\u202Egpj.exe` read as `invoiceexe.jpg`. Removed from everything shown, as the terminal does.
 */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g

/** `text` without {@link BIDI_CONTROLS}. */
export function visible(text: string): string {
  return text.replace(BIDI_CONTROLS, '')
}

/** Attributes set with `setAttribute` (never `on*` handlers: those are added with `on`). */
export interface Props {
  class?: string
  [attribute: string]: string | undefined
}

/**
 * An element with attributes and children; strings are added as text nodes.
 *
 * @example
 * ```ts
 * h('li', { class: 'msg' }, h('b', {}, name), text)
 * ```
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue
    if (/^on/i.test(key)) throw new Error(`use on() for ${key}`)
    element.setAttribute(key, value)
  }
  append(element, ...children)
  return element
}

/** Appends children, strings as text nodes. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === 'string' ? document.createTextNode(visible(child)) : child)
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren()
  append(parent, ...children)
}

/** Adds an event listener; returns the element. */
export function on<E extends HTMLElement>(element: E, type: string, listener: (event: Event) => void): E {
  element.addEventListener(type, listener)
  return element
}

/** The last 4 characters of a peer id, as the terminal shows them: `…abcd`. */
export function shortId(peerId: string): string {
  return `…${peerId.slice(-4)}`
}

/** A time as `HH:MM`, with the full date in the title. */
export function timeOf(ts: number): HTMLTimeElement {
  const date = new Date(ts)
  const text = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
  return h('time', { datetime: date.toISOString(), title: date.toLocaleString() }, text)
}
