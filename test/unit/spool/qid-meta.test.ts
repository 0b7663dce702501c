import { describe, expect, it } from 'vitest';
import { checkMeta, compareByReceivedAt } from '../../../src/spool/meta-check.js';
import { createQidSequence, isValidQid, makeQid, qidPrefix } from '../../../src/spool/qid.js';
import { ManualClock } from '../../../src/core/clock.js';
import { sampleMeta } from './spool-fixtures.js';

describe(makeQid.name, () => {
  it('makes short, filename-safe qids that sort by time and do not repeat', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const qids = Array.from({ length: 1000 }, () => makeQid(t0));
    for (const qid of qids) {
      expect(qid).toMatch(/^[0-9a-z]{16}$/);
      expect(isValidQid(qid)).toBe(true);
    }
    expect(new Set(qids).size).toBe(qids.length);
    const later = makeQid(t0 + 1);
    expect(qids.every((qid) => qid < later)).toBe(true);
    expect(makeQid(t0 + 86_400_000) > later).toBe(true);
  });
});

describe(isValidQid.name, () => {
  it('accepts only [A-Za-z0-9]+', () => {
    expect(isValidQid('Abc123')).toBe(true);
    for (const bad of ['', '../x', 'a/b', 'a.b', 'a b', 'a\0b', 'x'.repeat(65), 42]) expect(isValidQid(bad)).toBe(false);
  });
});

describe(checkMeta.name, () => {
  const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));
  it('accepts a sound meta', () => {
    const result = checkMeta(bytes(sampleMeta('q1')), 'q1');
    expect(result.ok).toBe(true);
  });
  it.each([
    ['garbage', Buffer.from('{not json'), 'not JSON'],
    ['an array', bytes([1]), 'not an object'],
    ['version 2', bytes({ ...sampleMeta('q1'), version: 2 }), 'version is not 1'],
    ['another qid', bytes(sampleMeta('q2')), 'qid does not match the file name'],
    ['no envelope', bytes({ ...sampleMeta('q1'), envelope: undefined }), 'no envelope'],
    ['bad recipients', bytes({ ...sampleMeta('q1'), envelope: { mailFrom: '', rcptTo: 'a@b' } }), 'envelope.rcptTo is not a list of addresses'],
    ['bad date', bytes({ ...sampleMeta('q1'), receivedAt: 'yesterday' }), 'receivedAt is not a date'],
  ])('refuses %s', (_name, input, problem) => {
    expect(checkMeta(input, 'q1')).toEqual({ ok: false, problem });
  });
});

describe(compareByReceivedAt.name, () => {
  it('orders oldest first, then by qid', () => {
    const metas = [
      sampleMeta('b', { receivedAt: '2026-01-02T00:00:00.000Z' }),
      sampleMeta('z', { receivedAt: '2026-01-01T00:00:00.000Z' }),
      sampleMeta('a', { receivedAt: '2026-01-02T00:00:00.000Z' }),
    ];
    expect(metas.sort(compareByReceivedAt).map((meta) => meta.qid)).toEqual(['z', 'a', 'b']);
  });
});

describe(createQidSequence.name, () => {
  it('never repeats a qid when the clock steps back, and keeps creation order', () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30, 7, 0, 0));
    const next = createQidSequence(clock, { drawPrefix: () => 'p0p' });
    const made = [next(), next()];
    clock.set(clock.now() - 5_000); // NTP steps the clock back
    made.push(next(), next());
    expect(new Set(made).size).toBe(4);
    expect([...made].sort()).toEqual(made);
  });

  it('draws again while the prefix is one the spool already holds', () => {
    const draws = ['abc', 'abc', 'xyz'];
    const next = createQidSequence(new ManualClock(0), { avoid: new Set(['abc']), drawPrefix: () => draws.shift() ?? 'zzz' });
    expect(qidPrefix(next())).toBe('xyz');
  });

  it('qidPrefix reads the per-start prefix of a 16-character qid only', () => {
    expect(qidPrefix('0mjv5q1c0k3f9x2a')).toBe('k3f');
    expect(qidPrefix('short')).toBeUndefined();
  });
});
