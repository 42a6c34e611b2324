import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { guardOutput } from '../../src/cli/io.js'

/** A stream whose writes succeed until `breakPipe()`, then fail like a pipe whose reader went away. */
function pipeLike(): { stream: Writable; written: string[]; breakPipe: () => void } {
  const written: string[] = []
  let broken = false
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      if (broken) {
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' }))
        return
      }
      written.push(String(chunk))
      callback()
    },
  })
  return { stream, written, breakPipe: () => (broken = true) }
}

/** Resolves once every pending callback (next ticks, microtasks, error events) has run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('guardOutput', () => {
  it('writes through while the stream works', async () => {
    const { stream, written } = pipeLike()
    const out = guardOutput(stream)
    out.write('a\n')
    out.write('b\n')
    await settle()
    expect(written).toEqual(['a\n', 'b\n'])
    expect(out.failed).toBeUndefined()
  })

  it('turns EPIPE into one call of the handler instead of an uncaught error, and drops later writes', async () => {
    const { stream, written, breakPipe } = pipeLike()
    const out = guardOutput(stream)
    const seen: Error[] = []
    out.onError((err) => seen.push(err))
    out.write('ready\n')
    breakPipe()
    out.write('lost\n')
    await settle()
    // without the guard the 'error' event would have no listener and would crash the process
    expect(seen.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EPIPE'])
    expect(out.failed?.message).toBe('write EPIPE')
    out.write('after\n')
    out.write('and more\n')
    await settle()
    expect(seen).toHaveLength(1)
    expect(written).toEqual(['ready\n'])
  })

  it('tells a handler registered after the failure at once', async () => {
    const { stream, breakPipe } = pipeLike()
    const out = guardOutput(stream)
    breakPipe()
    out.write('x')
    await settle()
    const late = await new Promise<Error>((resolve) => out.onError(resolve))
    expect(late.message).toBe('write EPIPE')
  })

  it('a removed handler is not called', async () => {
    const { stream, breakPipe } = pipeLike()
    const out = guardOutput(stream)
    const seen: Error[] = []
    const remove = out.onError((err) => seen.push(err))
    remove()
    breakPipe()
    out.write('x')
    await settle()
    expect(seen).toEqual([])
    expect(out.failed).toBeDefined()
  })
})
