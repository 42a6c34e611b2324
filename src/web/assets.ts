/**
 * The page and the headers every response carries. The page is a static shell; `app.js` (the client,
 * bundled by esbuild from `src/web/client/` at build time) draws everything in it.
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The Content-Security-Policy of every response: scripts, styles, images and connections from this
 * origin only, never inline; no frames, no forms, no `<base>`. Even a message that somehow reached the
 * DOM as HTML could run no script and send nothing anywhere.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** Headers on every response, refusals included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // the token is in the path: never send it on
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
}

/** The directory of the built client: `assets/` next to this module in `dist`. */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('./assets/', import.meta.url))

/** The files a page may load, by name under the token path, with their content types. */
const FILES: Readonly<Record<string, string>> = {
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
}

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2b6cb0"/><path d="M4 5h8v5H7l-3 2z" fill="#fff"/></svg>`

/** The page: a static shell, no inline script or style. */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>p2pchat</title>
<link rel="icon" href="icon.svg">
<link rel="stylesheet" href="style.css">
<script type="module" src="app.js"></script>
</head>
<body>
<noscript>p2pchat needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`

/** One file to send. */
export interface Asset {
  type: string
  body: Buffer
}

/**
 * Reads the page's files once and serves them from memory.
 *
 * @param dir - where `app.js` and `style.css` are (the build puts them in {@link DEFAULT_ASSETS_DIR})
 */
export function createAssets(dir: string): (name: string) => Promise<Asset | undefined> {
  const cache = new Map<string, Promise<Asset | undefined>>()
  const load = async (name: string): Promise<Asset | undefined> => {
    if (name === '' || name === 'index.html') {
      return { type: 'text/html; charset=utf-8', body: Buffer.from(INDEX_HTML) }
    }
    if (name === 'icon.svg') return { type: FILES[name] as string, body: Buffer.from(ICON) }
    const type = FILES[name]
    if (type === undefined) return undefined
    try {
      return { type, body: await readFile(join(dir, name)) }
    } catch {
      return undefined
    }
  }
  return (name) => {
    if (!Object.hasOwn(FILES, name) && name !== '' && name !== 'index.html') return Promise.resolve(undefined)
    let asset = cache.get(name)
    if (asset === undefined) {
      asset = load(name)
      cache.set(name, asset)
    }
    return asset
  }
}
