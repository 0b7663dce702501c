/**
 * The one poll helper for tests: wait for a condition that no event announces (a count on a fake
 * server, a file in the spool, a flag on the app), checking every few milliseconds, bounded in time.
 *
 * Does: call `check` until it returns a value other than undefined/false and return that value;
 *   throw `timed out waiting for: <what>` once `timeoutMs` has passed.
 * Never: stand in for "nothing happened" (a fixed sleep); where the code under test emits an event
 *   (a log line, a socket close, a recorded message), await the event instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(everyMs);
  }
}
