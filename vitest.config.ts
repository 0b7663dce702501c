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
    // A worker imports src/ and the helpers once for all the files it runs, instead of once
    // per file: importing was a third of the suite's time (0.3 s per file). It is safe because
    // src/ keeps no module-level state (dependencies are parameters) and every test file
    // closes what it opens: test/setup/leaks.ts fails a file that leaves a socket, server,
    // timer-less handle or child process behind, so nothing carries over to the next file.
    isolate: false,
    setupFiles: ['test/setup/leaks.ts'],
  },
});
