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
  /** Raw output stream for readline. */
  output: NodeJS.WritableStream
}

/** The real process streams and signals. */
export function processIO(): CliIO {
  return {
    stdin: process.stdin,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
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
    output: process.stdout,
  }
}
