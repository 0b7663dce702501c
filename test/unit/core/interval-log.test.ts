/** IntervalLog on the manual clock: one line at once, then one summary per interval while a flood goes on. */
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { IntervalLog } from '../../../src/core/interval-log.js';

function setup() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }));
  const clock = new ManualClock(0);
  return { lines, clock, log: new IntervalLog(logger, 60_000, clock) };
}

const summary = (l: Record<string, unknown>) => ({ msg: l['msg'], reason: l['reason'], count: l['count'], intervalSeconds: l['intervalSeconds'] });

describe(IntervalLog.name, () => {
  it('logs the first occurrence at once, then one line with the count per interval while the flood goes on', () => {
    const { lines, clock, log } = setup();
    for (let i = 0; i < 5; i++) log.note('refused', { reason: 'max-clients' });
    expect(lines.map(summary)).toEqual([{ msg: 'refused', reason: 'max-clients', count: 1, intervalSeconds: undefined }]);
    clock.advance(59_999);
    expect(lines).toHaveLength(1);
    clock.advance(1);
    expect(lines.map(summary).at(-1)).toEqual({ msg: 'refused', reason: 'max-clients', count: 4, intervalSeconds: 60 });
    log.note('refused', { reason: 'max-clients' });
    clock.advance(60_000);
    expect(lines.map(summary).at(-1)).toEqual({ msg: 'refused', reason: 'max-clients', count: 1, intervalSeconds: 60 });
    clock.advance(60_000); // a quiet interval: no line, and the window closes
    expect(lines).toHaveLength(3);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps reasons apart, and flush() logs what is still counted and clears the timers', () => {
    const { lines, clock, log } = setup();
    log.note('refused', { reason: 'a' });
    log.note('refused', { reason: 'b' });
    log.note('refused', { reason: 'b' });
    log.flush();
    expect(lines.map(summary)).toEqual([
      { msg: 'refused', reason: 'a', count: 1, intervalSeconds: undefined },
      { msg: 'refused', reason: 'b', count: 1, intervalSeconds: undefined },
      { msg: 'refused', reason: 'b', count: 1, intervalSeconds: 60 },
    ]);
    expect(clock.pendingTimers).toBe(0);
  });
});
