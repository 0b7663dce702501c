/**
 * Time comes from here, never from Date.now() or setTimeout directly, so tests can move it.
 *
 * Does: tell the time (`now`) and run a callback once after a delay (`after`). The system
 *   clock's timers never keep the process alive (open sockets and servers do); the manual
 *   clock runs its timers when a test advances it past their due time, in due order.
 * Never: fire a manual timer early, or twice; overflow (a delay above setTimeout's 2^31-1 ms
 *   limit would otherwise fire at once: it is clamped).
 * Assumes: socket-level timeouts of I/O helpers (a connect, a reply) stay real timers: they
 *   bound waiting on the network, not a policy a test needs to drive.
 */

/** A pending `after` callback; `cancel` is idempotent and a no-op once it ran. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number; // epoch milliseconds
  /** Runs `fn` once, `ms` from now (0 or less: on the next turn). */
  after(ms: number, fn: () => void): Timer;
}

/** Runs `fn` every `ms` (the first time `ms` from now) until the returned timer is cancelled. */
export function every(clock: Clock, ms: number, fn: () => void): Timer {
  let current: Timer;
  let cancelled = false;
  const arm = (): void => {
    current = clock.after(ms, () => {
      if (cancelled) return;
      arm(); // before fn, so a throwing fn does not stop the repetition
      fn();
    });
  };
  arm();
  return {
    cancel: () => {
      cancelled = true;
      current.cancel();
    },
  };
}

/** setTimeout's largest delay; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const handle = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

interface ManualTimer {
  readonly atMs: number;
  /** creation order: timers due at the same time run in the order they were set */
  readonly seq: number;
  readonly fn: () => void;
}

/** A clock tests can set and advance; its timers run inside `advance`/`set`, synchronously. */
export class ManualClock implements Clock {
  readonly #timers = new Set<ManualTimer>();
  #seq = 0;

  constructor(private ms = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.ms;
  }

  after(ms: number, fn: () => void): Timer {
    const timer: ManualTimer = { atMs: this.ms + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.add(timer);
    return { cancel: () => void this.#timers.delete(timer) };
  }

  /** Timers set and not yet run or cancelled. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves to `ms`; going forward runs the timers due on the way (going back runs none). */
  set(ms: number): void {
    if (ms > this.ms) this.#runUntil(ms);
    this.ms = ms;
  }

  /** Moves `ms` forward, running every timer due on the way at its own time (including ones they set). */
  advance(ms: number): void {
    this.#runUntil(this.ms + ms);
  }

  #runUntil(targetMs: number): void {
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (t.atMs <= targetMs && (next === undefined || t.atMs < next.atMs || (t.atMs === next.atMs && t.seq < next.seq))) next = t;
      }
      if (next === undefined) break;
      this.#timers.delete(next);
      this.ms = Math.max(this.ms, next.atMs);
      next.fn();
    }
    this.ms = targetMs;
  }
}
