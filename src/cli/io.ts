import type { Readable } from 'node:stream'

/** Where the CLI reads and writes; tests pass their own. */
export interface CliIO {
  stdin: Readable
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** Whether stdout is a terminal (colours, prompt). */
  isTTY: boolean
  /** Registers a handler for SIGINT/SIGTERM; returns a function that removes it. */
  onSignal: (handler: (signal: 'SIGINT' | 'SIGTERM') => void) => () => void
  /**
   * Registers a handler for the failure of stdout, typically EPIPE because its reader went away
   * (`p2pchat start --json | head -1`); called at most once, at once if stdout has already failed.
   * Returns a function that removes it. Writes to a failed stdout are dropped, never thrown.
   */
  onStdoutError: (handler: (err: Error) => void) => () => void
  /** Raw output stream for readline. */
  output: NodeJS.WritableStream
}

/** A text output that never crashes the process when its reader goes away. See {@link guardOutput}. */
export interface GuardedOutput {
  /** Writes `text`; dropped once the stream has failed. */
  write: (text: string) => void
  /** Registers a handler for the stream's first error; see {@link CliIO.onStdoutError}. */
  onError: (handler: (err: Error) => void) => () => void
  /** The stream's first error, if it failed. */
  readonly failed: Error | undefined
}

/**
 * Wraps a writable stream so that its `'error'` event (EPIPE when the other end of a pipe is closed,
 * EBADF, ...) is always handled: without a listener Node.js turns it into an uncaught exception with a
 * stack trace. The first error is passed to the registered handlers, so a command can stop cleanly;
 * later writes are dropped.
 *
 * @example
 * ```ts
 * const out = guardOutput(process.stdout)
 * out.onError(() => shutdown('stdout closed'))
 * out.write('hello\n')
 * ```
 */
export function guardOutput(stream: NodeJS.WritableStream): GuardedOutput {
  const handlers = new Set<(err: Error) => void>()
  let failed: Error | undefined
  const fail = (err: Error): void => {
    if (failed !== undefined) return
    failed = err
    for (const handler of [...handlers]) handler(err)
  }
  stream.on('error', fail)
  return {
    write: (text) => {
      if (failed !== undefined) return
      try {
        stream.write(text)
      } catch (err) {
        fail(err as Error)
      }
    },
    onError: (handler) => {
      const error = failed
      if (error !== undefined) queueMicrotask(() => handler(error))
      else handlers.add(handler)
      return () => {
        handlers.delete(handler)
      }
    },
    get failed() {
      return failed
    },
  }
}

/** The real process streams and signals. */
export function processIO(): CliIO {
  const stdout = guardOutput(process.stdout)
  // nothing can be reported about a failed stderr; guarding it keeps that from crashing the process
  const stderr = guardOutput(process.stderr)
  return {
    stdin: process.stdin,
    stdout: stdout.write,
    stderr: stderr.write,
    isTTY: process.stdout.isTTY === true && process.stdin.isTTY === true,
    onSignal: (handler) => {
      const onInt = (): void => handler('SIGINT')
      const onTerm = (): void => handler('SIGTERM')
      process.on('SIGINT', onInt)
      process.on('SIGTERM', onTerm)
      return () => {
        process.off('SIGINT', onInt)
        process.off('SIGTERM', onTerm)
      }
    },
    onStdoutError: stdout.onError,
    output: process.stdout,
  }
}
