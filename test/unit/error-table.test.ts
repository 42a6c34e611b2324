/**
 * The CLI's one error table (src/cli/user-errors.ts) against the error classes src exports: every class
 * in it is a real one, named as its instances are, and no exported error class is forgotten, so a new
 * error is either given a presentation or marked internal on purpose.
 */
import { readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ERROR_TABLE, type ErrorClass, INTERNAL_ERRORS } from '../../src/cli/user-errors.js'

const SRC = join(import.meta.dirname, '..', '..', 'src')

/** The web page's code: it runs in the browser, where the CLI's errors never reach. */
const BROWSER_CODE = join(SRC, 'web', 'client')

/** Every `.ts` file under `dir` that node runs. */
async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.parentPath.startsWith(BROWSER_CODE))
    .map((e) => join(e.parentPath, e.name))
}

/** Each error class exported by a module of src, with the first module that exports it. */
async function exportedErrorClasses(): Promise<Map<ErrorClass, string>> {
  const found = new Map<ErrorClass, string>()
  for (const file of await sourceFiles(SRC)) {
    const module = (await import(file)) as Record<string, unknown>
    for (const value of Object.values(module)) {
      if (
        typeof value === 'function' &&
        value.prototype instanceof Error &&
        !found.has(value as ErrorClass)
      ) {
        found.set(value as ErrorClass, relative(SRC, file))
      }
    }
  }
  return found
}

/** An instance of `errorClass`, whatever its constructor takes. */
function instanceOf(errorClass: ErrorClass): Error {
  const construct = errorClass as unknown as new (...args: unknown[]) => Error
  try {
    return new construct()
  } catch {
    return new construct('x', [])
  }
}

describe('the CLI error table', () => {
  it('lists each class once, under the name its instances carry', () => {
    const listed = [...ERROR_TABLE.keys(), ...INTERNAL_ERRORS]
    expect(new Set(listed).size).toBe(listed.length)
    for (const errorClass of listed) {
      expect(Object.hasOwn(errorClass, 'name'), `${errorClass.name} has its own static name`).toBe(true)
      expect(instanceOf(errorClass).name).toBe(errorClass.name)
    }
  })

  it('covers every exported error class of src, and lists only exported ones', async () => {
    const exported = await exportedErrorClasses()
    expect(exported.size).toBeGreaterThan(20)
    const listed = new Set<ErrorClass>([...ERROR_TABLE.keys(), ...INTERNAL_ERRORS])
    const missing = [...exported].filter(([c]) => !listed.has(c)).map(([c, file]) => `${c.name} (${file})`)
    expect(missing, 'exported error classes neither in ERROR_TABLE nor in INTERNAL_ERRORS').toEqual([])
    const unknown = [...listed].filter((c) => !exported.has(c)).map((c) => c.name)
    expect(unknown, 'listed classes that src does not export').toEqual([])
  })

  it('gives each class its own name: no two classes of src share one', async () => {
    const names = [...(await exportedErrorClasses()).keys()].map((c) => c.name)
    expect(names.length).toBe(new Set(names).size)
  })
})
