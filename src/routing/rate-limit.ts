/**
 * Per-upstream send rate: a sliding one-minute window.
 *
 * Protects: Exchange Online's 30 messages per minute per mailbox (over it, Exchange delays or
 * refuses submissions). A message over the rate is not rejected and does not fail over: it
 * waits in the spool until `retryAtMs`.
 */
import type { Clock } from '../core/clock.js';

const WINDOW_MS = 60_000;

export class RateLimiter {
  private readonly sent = new Map<string, number[]>();

  constructor(private readonly clock: Clock) {}

  /** Takes a slot for one message, or tells when the next slot opens. */
  tryTake(upstream: string, maxPerMinute: number | undefined): { ok: true } | { ok: false; retryAtMs: number } {
    if (maxPerMinute === undefined) return { ok: true };
    const now = this.clock.now();
    const times = (this.sent.get(upstream) ?? []).filter((t) => t > now - WINDOW_MS);
    this.sent.set(upstream, times);
    if (times.length >= maxPerMinute) return { ok: false, retryAtMs: times[0]! + WINDOW_MS };
    times.push(now);
    return { ok: true };
  }
}
