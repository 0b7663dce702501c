import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextAttemptDelayMs } from '../../../src/spool/backoff.js';

const retry = { minBackoffSeconds: 60, maxBackoffSeconds: 3600 };
const noJitter = () => 0.5;

describe(nextAttemptDelayMs.name, () => {
  it('starts at the minimum and doubles per attempt up to the maximum', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 30, 5000].map((attempts) => nextAttemptDelayMs(attempts, retry, noJitter))).toEqual([
      60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000, 3_600_000,
    ]);
  });

  it('treats 0 attempts like the first', () => {
    expect(nextAttemptDelayMs(0, retry, noJitter)).toBe(60_000);
  });

  it('jitters by ±20%', () => {
    expect(nextAttemptDelayMs(2, retry, () => 0)).toBe(96_000);
    expect(nextAttemptDelayMs(2, retry, () => 0.999999)).toBeCloseTo(144_000, -1);
  });

  it('never goes below 80% of the minimum nor above the maximum', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        (attempts, unit, minSeconds, extraSeconds) => {
          const timing = { minBackoffSeconds: minSeconds, maxBackoffSeconds: minSeconds + extraSeconds };
          const delayMs = nextAttemptDelayMs(attempts, timing, () => unit);
          expect(delayMs).toBeGreaterThanOrEqual(Math.floor(minSeconds * 1000 * 0.8));
          expect(delayMs).toBeLessThanOrEqual(timing.maxBackoffSeconds * 1000);
        },
      ),
    );
  });

  it('spreads delays with the random source', () => {
    const delays = new Set([0, 0.25, 0.5, 0.75].map((unit) => nextAttemptDelayMs(3, retry, () => unit)));
    expect(delays.size).toBe(4);
  });
});
