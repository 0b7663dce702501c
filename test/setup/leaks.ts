/**
 * Leak check, run around every test file (vitest `setupFiles`): a file that leaves a socket, a
 * listening server, a child process or a pipe open fails, naming what is left.
 *
 * Does: count this worker's active handles by type (`process.getActiveResourcesInfo()`) before
 *   the file's first test and after its last hook; a handle that closes asynchronously (a
 *   destroyed socket, a killed child being reaped) gets up to 2 s to go, polled every 10 ms.
 * Never: close anything itself, or count timers and pending requests (file system, DNS): vitest
 *   itself holds a varying number of timers (a count taken before and after a file cannot tell
 *   them from a leaked one; measured: a leaked setInterval hid behind a vitest timer that ended).
 * Assumes: the files of one worker run one after another (vitest runs a worker's files in
 *   sequence), so the baseline holds only what vitest itself holds (its IPC pipe) and whatever
 *   an earlier file leaked (which that file's own check has already reported).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll } from 'vitest';

/** Handle types a test opens and must close: TCP sockets and servers, TLS, UDP, pipes, child processes, watchers. */
const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'TLSWrap', 'UDPWrap', 'PipeWrap', 'PipeServerWrap', 'ProcessWrap', 'FSEventWrap', 'StatWatcher', 'ConnectWrap']);
const GRACE_MS = 2000;

function counts(): Map<string, number> {
  const out = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (WATCHED.has(type)) out.set(type, (out.get(type) ?? 0) + 1);
  }
  return out;
}

function excess(baseline: Map<string, number>): string[] {
  const over: string[] = [];
  for (const [type, n] of counts()) {
    const before = baseline.get(type) ?? 0;
    if (n > before) over.push(`${n - before} ${type}`);
  }
  return over;
}

let baseline = new Map<string, number>();

beforeAll(() => {
  baseline = counts();
});

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let left = excess(baseline);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(10);
    left = excess(baseline);
  }
  if (left.length > 0) {
    throw new Error(`this test file left open: ${left.join(', ')} (close every socket, server and child process it starts, in afterEach/afterAll)`);
  }
});
