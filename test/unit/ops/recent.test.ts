import { describe, expect, it } from 'vitest';
import { RecentDeliveries } from '../../../src/ops/recent.js';

const item = (n: number) => ({ at: `2026-01-01T00:00:0${n}.000Z`, qid: `Q${n}`, recipients: ['a@b.test'], relay: 'r', outcome: 'sent', dsn: '2.0.0', response: '250 ok', sender: 's@x.test', originalSender: undefined });

describe(RecentDeliveries.name, () => {
  it('keeps the newest tries first and never more than its capacity', () => {
    const recent = new RecentDeliveries(3);
    for (let n = 1; n <= 5; n += 1) recent.add(item(n));
    expect(recent.list().map((r) => r.qid)).toEqual(['Q5', 'Q4', 'Q3']);
  });
});
