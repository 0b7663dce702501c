import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { InFlightBudget } from '../../../src/intake/in-flight-budget.js';

describe(InFlightBudget.name, () => {
  it('admits at once while under the limit, queues in order when full, admits as bytes are released', async () => {
    const full: number[] = [];
    const budget = new InFlightBudget(100, new ManualClock(), (used) => full.push(used));
    const a = await budget.admit(1000);
    a!.hold(150);
    expect(full).toEqual([150]);
    const order: string[] = [];
    const b = budget.admit(5000).then((l) => (order.push('b'), l));
    const c = budget.admit(5000).then((l) => (order.push('c'), l));
    expect(budget.waiting).toBe(2);
    a!.hold(90); // under the limit again: both waiters fit (nothing held by them yet)
    const [lb, lc] = await Promise.all([b, c]);
    expect(order).toEqual(['b', 'c']);
    lb!.hold(20);
    expect(full).toEqual([150, 110]);
    lb!.release();
    lb!.release(); // idempotent
    lc!.release();
    a!.release();
    expect(budget.usedBytes).toBe(0);
  });

  it('gives up after maxWaitMs (not before) and forgets the waiter; an admitted waiter leaves no timer', async () => {
    const clock = new ManualClock();
    const budget = new InFlightBudget(10, clock);
    const first = (await budget.admit(10))!;
    first.hold(10);
    const second = budget.admit(20_000);
    clock.advance(19_999);
    expect(budget.waiting).toBe(1);
    clock.advance(1);
    expect(await second).toBeUndefined();
    expect(budget.waiting).toBe(0);
    const third = budget.admit(20_000);
    first.release();
    expect(await third).toBeDefined();
    expect(clock.pendingTimers).toBe(0);
  });
});
