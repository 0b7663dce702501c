/**
 * Rate-limited logging for events a flood repeats (refused connections, sessions cut off), for
 * both listeners (intake's SMTP and ops' HTTP), so it lives in core/.
 *
 * Does: log the first occurrence of an event at once (`count: 1`), then count further
 *   occurrences for `intervalMs` and log one line with their `count` when the interval ends;
 *   a flood that goes on yields one line per interval, a quiet event one line.
 * Never: log one line per occurrence under a flood; keep the process alive (the clock's timers do not).
 * Assumes: `fields` carry no secrets (client addresses, reasons, limits).
 */
import type { Clock, Timer } from './clock.js';
import type { Logger } from './ports.js';

interface Window {
  suppressed: number;
  last: Record<string, unknown>;
  readonly timer: Timer;
}

export class IntervalLog {
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
    private readonly clock: Clock,
  ) {}

  /** Records one occurrence of `event` (keyed by `event` and `fields.reason`). */
  note(event: string, fields: Record<string, unknown>): void {
    const key = `${event}\0${String(fields['reason'] ?? '')}`;
    const open = this.#windows.get(key);
    if (open !== undefined) {
      open.suppressed += 1;
      open.last = fields;
      return;
    }
    this.logger.warn({ ...fields, count: 1 }, event);
    this.#open(key, event);
  }

  #open(key: string, event: string): void {
    const timer = this.clock.after(this.intervalMs, () => {
      const window = this.#windows.get(key);
      this.#windows.delete(key);
      if (window === undefined || window.suppressed === 0) return;
      this.logger.warn({ ...window.last, count: window.suppressed, intervalSeconds: this.intervalMs / 1000 }, event);
      this.#open(key, event); // a flood that goes on is summarised once per interval
    });
    this.#windows.set(key, { suppressed: 0, last: {}, timer });
  }

  /** Logs what is still counted and clears the timers (shutdown). */
  flush(): void {
    for (const [key, window] of this.#windows) {
      window.timer.cancel();
      const event = key.slice(0, key.indexOf('\0'));
      if (window.suppressed > 0) this.logger.warn({ ...window.last, count: window.suppressed, intervalSeconds: this.intervalMs / 1000 }, event);
    }
    this.#windows.clear();
  }
}
