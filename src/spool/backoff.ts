/**
 * Retry timing for queued messages.
 *
 * Does: give the delay before the next delivery attempt (the minimum doubling with
 * each attempt, capped at the maximum, with ±20% jitter so retries of many messages
 * spread out). Expiry (`maxLifetimeHours`) is decided where the attempt is recorded
 * (outcome/record.ts).
 * Never: return a delay below 80% of the minimum or above the maximum; read the clock
 * or Math.random (time and randomness are parameters).
 * Assumes: `random()` returns a number in [0, 1), like Math.random.
 */

export interface RetryTiming {
  readonly minBackoffSeconds: number;
  readonly maxBackoffSeconds: number;
}

const JITTER_FRACTION = 0.2;
/** 2^40 times any positive minimum is already past any sensible maximum */
const MAX_DOUBLINGS = 40;

/** `attempts`: delivery attempts made so far (1 after the first failure). */
export function nextAttemptDelayMs(attempts: number, retry: RetryTiming, random: () => number): number {
  const minMs = retry.minBackoffSeconds * 1000;
  const maxMs = Math.max(minMs, retry.maxBackoffSeconds * 1000);
  const doublings = Math.min(MAX_DOUBLINGS, Math.max(0, Math.floor(attempts) - 1));
  const baseMs = Math.min(maxMs, minMs * 2 ** doublings);
  const unit = Math.min(1, Math.max(0, random()));
  const jitteredMs = baseMs * (1 - JITTER_FRACTION + 2 * JITTER_FRACTION * unit);
  return Math.round(Math.min(maxMs, Math.max(minMs * (1 - JITTER_FRACTION), jitteredMs)));
}
