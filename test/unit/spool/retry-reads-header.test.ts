/**
 * A retry through an upstream with `from` (a per-upstream sender) reads the spooled message's
 * header, never its body: the spool reads the header block alone (its length is in the entry),
 * the From rewrite swaps that header, and the transport gets the same body range of the file.
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
  it('reads only the header block from the spool, and hands the transport the rewritten header + the untouched body range', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spool-retry-'));
    dirs.push(dir);
    const fs = new FaultFs(createRealSpoolFs());
    const headReads: number[] = [];
    const spied = Object.assign(Object.create(fs) as FaultFs, {
      readHead: (path: string, maxBytes: number) => {
        if (path.endsWith('.eml')) headReads.push(maxBytes);
        return fs.readHead(path, maxBytes);
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
    expect(headReads).toEqual([header.length]); // the header's length, from the entry: not one body byte
    expect(fs.events.slice(before).filter((e) => e.phase === 'start' && e.path.endsWith('.eml')).map((e) => e.op)).toEqual(['readHead']);

    const mailer = fakeTransport('mailer');
    const report = await attemptDelivery(
      { upstreams: upstreamSet([mailer, { from: 'mailer@corp.test' }]), health: { isDown: () => false }, rate: new RateLimiter(clock), clock, routes: [] },
      { qid: 'Q1', envelope: { mailFrom: 'billing@legacy.test', rcptTo: ['a@example.org'] }, facts: entry.meta.facts, sizeBytes: entry.meta.sizeBytes, raw: entry.source },
    );
    expect([...report.results.values()].map((r) => r.outcome)).toEqual(['sent']);
    expect(fs.events.slice(before).filter((e) => e.path.endsWith('.eml')).map((e) => e.op)).toEqual(['readHead', 'readHead']); // start + end: nothing else
    const sent = mailer.sent[0]!;
    expect(sent.envelope.mailFrom).toBe('mailer@corp.test');
    const raw = sent.raw as Exclude<RawSource, Buffer>;
    expect(raw.header.toString()).toBe('From: Billing <mailer@corp.test>\r\nTo: a@example.org\r\nSubject: invoice\r\n');
    expect({ path: raw.path, bodyStart: raw.bodyStart, bodyEnd: raw.bodyEnd }).toEqual({ path: join(dir, 'queue', 'Q1.eml'), bodyStart: header.length, bodyEnd: header.length + 2 + body.length });
    // and the bytes that go out are the new header and the spooled body
    expect((await readRaw(raw)).equals(Buffer.concat([raw.header, Buffer.from('\r\n'), body]))).toBe(true);
  });
});
