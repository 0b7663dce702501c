import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind real sockets and spawn child processes: run files in
    // parallel (2 cores) but keep each file's tests sequential.
    pool: 'forks',
    maxWorkers: 2,
  },
});
