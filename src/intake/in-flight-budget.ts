/**
 * The global in-flight budget: how much message data all sessions together may hold in memory.
 *
 * Does: admit a new DATA transaction while the bytes held by the transactions already in
 *   flight are under the limit; otherwise queue it (first come, first served) until enough is
 *   released or `maxWaitMs` passes, when admission fails (the caller answers 452 4.3.1).
 *   Each admitted transaction reports what it holds through its lease (`hold`), and gives it
 *   all back with `release`.
 * Never: stop a transaction that was admitted (it may grow past the limit: its own bytes are
 *   bounded by the header-block and spill limits); admit out of order.
 * Assumes: one budget per relay process (the receive conductor owns it).
 */
import type { Clock } from '../core/clock.js';

export interface InFlightLease {
  /** the bytes this transaction holds in memory now (replaces the previous figure) */
  hold(bytes: number): void;
  /** gives everything back; idempotent */
  release(): void;
}

interface Waiter {
  readonly admit: () => void;
}

export class InFlightBudget {
  #used = 0;
  readonly #waiters: Waiter[] = [];

  /** `onFull` is called each time the bytes held cross the limit from below. */
  constructor(
    readonly limitBytes: number,
    private readonly clock: Clock,
    private readonly onFull: (usedBytes: number) => void = () => undefined,
  ) {}

  get usedBytes(): number {
    return this.#used;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Resolves with a lease once admitted, or undefined when `maxWaitMs` passed first. */
  admit(maxWaitMs: number): Promise<InFlightLease | undefined> {
    if (this.#waiters.length === 0 && this.#used < this.limitBytes) return Promise.resolve(this.#lease());
    return new Promise((resolve) => {
      const waiter: Waiter = {
        admit: () => {
          timer.cancel();
          resolve(this.#lease());
        },
      };
      const timer = this.clock.after(maxWaitMs, () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        resolve(undefined);
      });
      this.#waiters.push(waiter);
    });
  }

  #lease(): InFlightLease {
    let held = 0;
    let released = false;
    return {
      hold: (bytes) => {
        if (released) return;
        const before = this.#used;
        this.#used += bytes - held;
        held = bytes;
        if (before < this.limitBytes && this.#used >= this.limitBytes) this.onFull(this.#used);
        this.#wake();
      },
      release: () => {
        if (released) return;
        released = true;
        this.#used -= held;
        held = 0;
        this.#wake();
      },
    };
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#used < this.limitBytes) this.#waiters.shift()!.admit();
  }
}
