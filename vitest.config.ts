import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * Files that take far longer than the rest start first, so that the two workers finish together
 * even without vitest's duration cache (a clean CI clone, where vitest orders by file size): the
 * production install (npm pack + npm install -g, ~18 s) started last would leave one worker
 * running it alone at the end. With a cache vitest already runs the longest first.
 * --sequence.shuffle still shuffles the files: a custom sequencer replaces vitest's random one,
 * so this one shuffles them itself, from the seed vitest prints (--sequence.seed=N repeats it).
 */
const HEAVIEST_FIRST = ['test/integration/ops/install.test.ts'];

/** Fisher-Yates with mulberry32 seeded by `seed`: the same order for the same seed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

class HeaviestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { shuffle, seed } = this.ctx.config.sequence;
    if (shuffle !== false && shuffle !== undefined) return shuffled(files, seed);
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification): number => HEAVIEST_FIRST.findIndex((path) => file.moduleId.endsWith(path));
    const heavy = sorted.filter((file) => rank(file) >= 0).sort((a, b) => rank(a) - rank(b));
    return [...heavy, ...sorted.filter((file) => rank(file) < 0)];
  }
}

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
    sequence: { sequencer: HeaviestFirst },
  },
});
