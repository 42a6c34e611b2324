import type { CliIO } from './io.js'

/** Something that can be stopped cleanly. */
export interface Stoppable {
  stop(): Promise<void>
}

/**
 * Runs a foreground command until it asks to stop, stdin ends, or SIGINT/SIGTERM arrives, then stops
 * `node` cleanly and resolves 0. A second SIGINT during shutdown exits at once with 130.
 *
 * @param run - starts the command's I/O; gets `shutdown` and returns a cleanup to run before the node stops
 */
export function runUntilShutdown(
  node: Stoppable,
  io: CliIO,
  run: (shutdown: (reason: string) => void) => () => Promise<void> | void,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false
    let cleanup: () => Promise<void> | void = () => {}
    const shutdown = (_reason: string): void => {
      if (stopping) return
      stopping = true
      void (async () => {
        try {
          await cleanup()
        } finally {
          await node.stop()
          removeSignals()
          resolve(0)
        }
      })()
    }
    const removeSignals = io.onSignal((signal) => {
      if (stopping && signal === 'SIGINT') {
        io.stderr('p2pchat: forced exit\n')
        process.exit(130)
      }
      shutdown(signal)
    })
    cleanup = run(shutdown)
  })
}
