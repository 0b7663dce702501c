/**
 * Upstream health: the one feedback loop of the pipeline, kept as state.
 *
 * Does: remember which upstream failed and when; an upstream that failed is "down" for
 * `downSeconds`, after which it is probed again by real traffic (it is no longer skipped);
 * a success marks it up at once, and so does a reload that changes its settings (clearDown).
 * Never: probes by itself or decides order (routing/route.ts does).
 */
import type { Clock } from '../core/clock.js';

export interface UpstreamState {
  readonly name: string;
  readonly up: boolean;
  readonly downUntil: string | undefined;
  readonly lastError: string | undefined;
  readonly lastErrorAt: string | undefined;
  readonly lastSuccessAt: string | undefined;
  readonly consecutiveFailures: number;
}

interface MutableState {
  downUntilMs: number;
  lastError: string | undefined;
  lastErrorAtMs: number | undefined;
  lastSuccessAtMs: number | undefined;
  consecutiveFailures: number;
}

export class UpstreamHealth {
  private readonly states = new Map<string, MutableState>();

  constructor(
    private readonly clock: Clock,
    private readonly downSeconds: () => number,
  ) {}

  private state(name: string): MutableState {
    let s = this.states.get(name);
    if (s === undefined) {
      s = { downUntilMs: 0, lastError: undefined, lastErrorAtMs: undefined, lastSuccessAtMs: undefined, consecutiveFailures: 0 };
      this.states.set(name, s);
    }
    return s;
  }

  isDown(name: string): boolean {
    return this.state(name).downUntilMs > this.clock.now();
  }

  markFailure(name: string, reason: string, markDown: boolean): void {
    const s = this.state(name);
    const now = this.clock.now();
    s.lastError = reason;
    s.lastErrorAtMs = now;
    s.consecutiveFailures += 1;
    if (markDown) s.downUntilMs = now + this.downSeconds() * 1000;
  }

  /**
   * Forgets a down mark (its settings were changed by a reload: the fixed upstream is tried at
   * once). Keeps lastError and lastErrorAt for /status. Returns whether it was down.
   */
  clearDown(name: string): boolean {
    const s = this.state(name);
    const wasDown = this.isDown(name);
    s.downUntilMs = 0;
    s.consecutiveFailures = 0;
    return wasDown;
  }

  markSuccess(name: string): void {
    const s = this.state(name);
    s.downUntilMs = 0;
    s.consecutiveFailures = 0;
    s.lastSuccessAtMs = this.clock.now();
  }

  snapshot(names: readonly string[]): UpstreamState[] {
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    return names.map((name) => {
      const s = this.state(name);
      const down = this.isDown(name);
      return {
        name,
        up: !down,
        downUntil: down ? iso(s.downUntilMs) : undefined,
        lastError: s.lastError,
        lastErrorAt: iso(s.lastErrorAtMs),
        lastSuccessAt: iso(s.lastSuccessAtMs),
        consecutiveFailures: s.consecutiveFailures,
      };
    });
  }
}
