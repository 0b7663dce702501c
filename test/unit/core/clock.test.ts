/**
 * The manual clock's timers, which every unit test of a timed policy drives (dispatcher waits
 * and retries, session lifetime, in-flight admission, flood summaries), and `every`.
 */
import { describe, expect, it } from 'vitest';
import { every, ManualClock, systemClock } from '../../../src/core/clock.js';

describe(ManualClock.name, () => {
  it('runs each timer when the clock reaches its due time, in due order, seeing its own due time as now', () => {
    const clock = new ManualClock(1_000);
    const ran: string[] = [];
    clock.after(300, () => ran.push(`c@${clock.now()}`));
    clock.after(100, () => ran.push(`a@${clock.now()}`));
    clock.after(100, () => ran.push(`b@${clock.now()}`)); // same due time: in the order set
    clock.advance(99);
    expect(ran).toEqual([]);
    clock.advance(250);
    expect(ran).toEqual(['a@1100', 'b@1100', 'c@1300']);
    expect(clock.now()).toBe(1_349);
    expect(clock.pendingTimers).toBe(0);
  });

  it('runs timers that a timer sets within the same advance; a cancelled timer never runs', () => {
    const clock = new ManualClock(0);
    const ran: number[] = [];
    clock.after(10, () => clock.after(10, () => ran.push(clock.now())));
    const cancelled = clock.after(15, () => ran.push(-1));
    cancelled.cancel();
    cancelled.cancel(); // idempotent
    clock.advance(30);
    expect(ran).toEqual([20]);
  });

  it('set() forward runs what falls due; set() backward runs nothing and later timers wait for their time', () => {
    const clock = new ManualClock(0);
    const ran: number[] = [];
    clock.after(50, () => ran.push(clock.now()));
    clock.set(-100);
    expect(ran).toEqual([]);
    clock.set(60);
    expect(ran).toEqual([50]);
    expect(clock.now()).toBe(60);
  });
});

describe(every.name, () => {
  it('repeats every interval until cancelled, and goes on when one run throws', () => {
    const clock = new ManualClock(0);
    const at: number[] = [];
    const timer = every(clock, 100, () => {
      at.push(clock.now());
      if (at.length === 2) throw new Error('one bad run');
    });
    expect(() => clock.advance(250)).toThrow('one bad run');
    clock.advance(100);
    expect(at).toEqual([100, 200, 300]);
    timer.cancel();
    clock.advance(1_000);
    expect(at).toEqual([100, 200, 300]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('systemClock', () => {
  it('runs a timer on the event loop and cancels one', async () => {
    const cancelled = systemClock.after(0, () => expect.unreachable('a cancelled timer ran'));
    cancelled.cancel();
    await new Promise<void>((resolve) => systemClock.after(1, resolve));
  });
});
