/**
 * A retry through an upstream with `from` (a per-upstream sender) never reads the spooled
 * message's body: the spool reads the end of the message file (footer, meta, header: one read
 * of at most 8 KiB), the From rewrite swaps the header, and the transport gets the body range
 * of the file, unread.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { readRaw } from '../../../src/core/raw-source.js';
import { storeMessage } from '../../../src/core/store-message.js';
import type { RawSource } from '../../../src/core/types.js';
import { attemptDelivery } from '../../../src/delivery/attempt.js';
import { RateLimiter } from '../../../src/routing/rate-limit.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { createRealSpoolFs } from '../../../src/spool/spool-fs.js';
import { fakeTransport, upstreamSet } from '../../helpers/fake-transport.js';
import { FaultFs } from './fault-fs.js';
import { sampleMeta } from './spool-fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('a retry through an upstream with a required sender', () => {
  it('reads the message file\'s end once (at most 8 KiB of 2 MB), and hands the transport the rewritten header + the untouched body range', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spool-retry-'));
    dirs.push(dir);
    const fs = new FaultFs(createRealSpoolFs());
    const tailReads: number[] = [];
    const spied = Object.assign(Object.create(fs) as FaultFs, {
      readTail: (path: string, maxBytes: number) => {
        if (path.endsWith('.msg')) tailReads.push(maxBytes);
        return fs.readTail(path, maxBytes);
      },
    });
    const clock = new ManualClock();
    const spool = new FsSpool({ dir, fsync: false, clock, fs: spied });
    await spool.recover();
    const header = Buffer.from('From: "Billing" <billing@legacy.test>\r\nTo: a@example.org\r\nSubject: invoice\r\n');
    const body = Buffer.alloc(2_000_000, 'invoice line\r\n'); // spilled: the draft went to a file
    await storeMessage(spool, { header, body: [Buffer.from('\r\n'), body], meta: sampleMeta('Q1') });

    const before = fs.events.length;
    const entry = (await spool.read('Q1'))!; // what the dispatcher does for a queued retry
    expect(tailReads).toEqual([8 * 1024]); // footer, meta and header fit: one bounded read
    expect(fs.events.slice(before).filter((e) => e.phase === 'start' && e.path.endsWith('.msg')).map((e) => e.op)).toEqual(['readTail']);

    const mailer = fakeTransport('mailer');
    const report = await attemptDelivery(
      { upstreams: upstreamSet([mailer, { from: 'mailer@corp.test' }]), health: { isDown: () => false }, rate: new RateLimiter(clock), clock, routes: [] },
      { qid: 'Q1', envelope: { mailFrom: 'billing@legacy.test', rcptTo: ['a@example.org'] }, facts: entry.meta.facts, raw: entry.source },
    );
    expect([...report.results.values()].map((r) => r.outcome)).toEqual(['sent']);
    expect(fs.events.slice(before).filter((e) => e.path.endsWith('.msg')).map((e) => e.op)).toEqual(['readTail', 'readTail']); // start + end: nothing else
    const sent = mailer.sent[0]!;
    expect(sent.envelope.mailFrom).toBe('mailer@corp.test');
    const raw = sent.raw as Exclude<RawSource, Buffer>;
    expect(raw.header.toString()).toBe('From: Billing <mailer@corp.test>\r\nTo: a@example.org\r\nSubject: invoice\r\n');
    expect({ path: raw.path, bodyStart: raw.bodyStart, bodyEnd: raw.bodyEnd }).toEqual({ path: join(dir, 'queue', 'Q1.msg'), bodyStart: 0, bodyEnd: 2 + body.length });
    // and the bytes that go out are the new header and the spooled body
    expect((await readRaw(raw)).equals(Buffer.concat([raw.header, Buffer.from('\r\n'), body]))).toBe(true);
  });
});
