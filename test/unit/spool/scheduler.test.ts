import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DueQueue } from '../../../src/spool/scheduler.js';

describe(DueQueue.name, () => {
  it('takes due qids earliest first, up to max, leaving the rest', () => {
    const queue = new DueQueue();
    queue.schedule('c', 300);
    queue.schedule('a', 100);
    queue.schedule('d', 400);
    queue.schedule('b', 200);
    expect(queue.nextDueAt()).toBe(100);
    expect(queue.takeDue(250, 10)).toEqual(['a', 'b']);
    expect(queue.size).toBe(2);
    expect(queue.takeDue(1000, 1)).toEqual(['c']);
    expect(queue.has('c')).toBe(false);
    expect(queue.has('d')).toBe(true);
    expect(queue.nextDueAt()).toBe(400);
  });

  it('returns nothing before the first due time, and undefined when empty', () => {
    const queue = new DueQueue();
    expect(queue.nextDueAt()).toBeUndefined();
    expect(queue.takeDue(1e15, 10)).toEqual([]);
    queue.schedule('a', 100);
    expect(queue.takeDue(99, 10)).toEqual([]);
    expect(queue.takeDue(100, 10)).toEqual(['a']);
  });

  it('re-scheduling replaces the due time instead of adding a second copy', () => {
    const queue = new DueQueue();
    queue.schedule('a', 100);
    queue.schedule('b', 200);
    queue.schedule('a', 500);
    expect(queue.size).toBe(2);
    expect(queue.takeDue(1000, 10)).toEqual(['b', 'a']);
    queue.schedule('x', 900);
    queue.schedule('x', 10);
    expect(queue.nextDueAt()).toBe(10);
  });

  it('unschedule removes; equal due times come out in scheduling order', () => {
    const queue = new DueQueue();
    for (const qid of ['p', 'q', 'r', 's']) queue.schedule(qid, 50);
    expect(queue.unschedule('q')).toBe(true);
    expect(queue.unschedule('q')).toBe(false);
    expect(queue.takeDue(50, 10)).toEqual(['p', 'r', 's']);
  });

  it('agrees with a simple sorted model over random operations', () => {
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('schedule' as const), qid: fc.integer({ min: 0, max: 30 }), dueAtMs: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ kind: fc.constant('unschedule' as const), qid: fc.integer({ min: 0, max: 30 }) }),
      fc.record({ kind: fc.constant('take' as const), nowMs: fc.integer({ min: 0, max: 50 }), max: fc.integer({ min: 0, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 200 }), (operations) => {
        const queue = new DueQueue();
        let model: { qid: string; dueAtMs: number; sequence: number }[] = [];
        let sequence = 0;
        for (const op of operations) {
          if (op.kind === 'schedule') {
            const qid = `q${op.qid}`;
            model = model.filter((item) => item.qid !== qid);
            model.push({ qid, dueAtMs: op.dueAtMs, sequence: sequence++ });
            queue.schedule(qid, op.dueAtMs);
          } else if (op.kind === 'unschedule') {
            const qid = `q${op.qid}`;
            const had = model.some((item) => item.qid === qid);
            model = model.filter((item) => item.qid !== qid);
            expect(queue.unschedule(qid)).toBe(had);
          } else {
            model.sort((a, b) => a.dueAtMs - b.dueAtMs || a.sequence - b.sequence);
            const expected = model.filter((item) => item.dueAtMs <= op.nowMs).slice(0, op.max).map((item) => item.qid);
            model = model.filter((item) => !expected.includes(item.qid));
            expect(queue.takeDue(op.nowMs, op.max)).toEqual(expected);
          }
          expect(queue.size).toBe(model.length);
          const earliest = model.length === 0 ? undefined : Math.min(...model.map((item) => item.dueAtMs));
          expect(queue.nextDueAt()).toBe(earliest);
        }
      }),
    );
  });

  it('handles 100k entries (schedule, reschedule half, drain in order)', () => {
    const queue = new DueQueue();
    const count = 100_000;
    // A deterministic shuffle of due times.
    for (let index = 0; index < count; index += 1) queue.schedule(`m${index}`, (index * 7919) % count);
    for (let index = 0; index < count; index += 2) queue.schedule(`m${index}`, count + index);
    expect(queue.size).toBe(count);
    let previousDueAt = -1;
    let outOfOrder = 0;
    let drained = 0;
    // Bounded: each round takes at least one entry until the queue is empty.
    while (queue.size > 0) {
      const dueAt = queue.nextDueAt() ?? -1;
      if (dueAt < previousDueAt) outOfOrder += 1;
      previousDueAt = dueAt;
      drained += queue.takeDue(dueAt, 1000).length;
    }
    expect(outOfOrder).toBe(0);
    expect(drained).toBe(count);
    expect(previousDueAt).toBe(count + count - 2);
  });
});
