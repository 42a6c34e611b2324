import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Network tests start real libp2p nodes; two cores are shared, so keep file-level parallelism modest.
    maxWorkers: 2,
  },
})
