/**
 * FsSpool on a real directory: one file per message (queue/<qid>.msg = body | header | meta |
 * footer), a .state only once an entry changes, failed/ and requeue through the API, recovery
 * (quarantine, orphan .state files) and the upgrade from the previous layout (.eml + .json
 * pairs), crash-safely.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { readRaw } from '../../../src/core/raw-source.js';
import { storeMessage } from '../../../src/core/store-message.js';
import type { SpoolMeta } from '../../../src/core/types.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { encodeFooter, FOOTER_BYTES } from '../../../src/spool/msg-format.js';
import { createRealSpoolFs, type SpoolFs } from '../../../src/spool/spool-fs.js';
import { HEADER, memoryBody, sampleMeta } from '../../unit/spool/spool-fixtures.js';

/** The real fs, counting directory fsyncs. */
function countingFs(): { fs: SpoolFs; dirSyncs: string[] } {
  const real = createRealSpoolFs();
  const dirSyncs: string[] = [];
  return {
    dirSyncs,
    fs: {
      ...real,
      async syncDir(path) {
        dirSyncs.push(path);
        await real.syncDir(path);
      },
    },
  };
}

const compact = (meta: SpoolMeta): string => `${JSON.stringify(meta)}\n`;
const REASON = { reason: 'rejected by upstream', recipients: [{ address: 'a@example.org', response: '550 5.1.1 no such user' }], failedAt: '2026-01-03T00:00:00.000Z' };

describe(`${FsSpool.name} on a real directory`, () => {
  let dir = '';
  let spool: FsSpool;
  let dirSyncs: string[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-it-'));
    const counting = countingFs();
    dirSyncs = counting.dirSyncs;
    spool = new FsSpool({ dir: join(dir, 'spool'), fsync: true, clock: new ManualClock(), fs: counting.fs });
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const spoolDir = (...parts: string[]) => join(dir, 'spool', ...parts);
  const listing = async (subdir: string) => (await readdir(spoolDir(subdir))).sort();
  const fresh = () => new FsSpool({ dir: spoolDir(), fsync: true, clock: new ManualClock() });

  it('recover() creates tmp/, queue/, failed/ and quarantine/ in a fresh directory', async () => {
    const report = await spool.recover();
    expect(report).toEqual({ removedTmp: 0, quarantined: [], entries: [] });
    expect((await readdir(spoolDir())).sort()).toEqual(['failed', 'quarantine', 'queue', 'tmp']);
  });

  it('store() writes one file: body, header, meta, footer; read() gives the header and the body range', async () => {
    await spool.recover();
    const qid = spool.newQid();
    const meta = sampleMeta(qid);
    const entry = await storeMessage(spool, { header: HEADER, body: memoryBody('\r\nHello\r\nworld\r\n'), meta });
    // the body was in memory: the entry hands the first attempt the bytes without a read
    expect(entry.source).toEqual(Buffer.from(`${HEADER.toString()}\r\nHello\r\nworld\r\n`));
    expect(await listing('queue')).toEqual([`${qid}.msg`]);
    expect(await listing('tmp')).toEqual([]);
    const file = await readFile(spoolDir('queue', `${qid}.msg`));
    const body = '\r\nHello\r\nworld\r\n';
    expect(file.toString()).toBe(`${body}${HEADER.toString()}${compact(meta)}${encodeFooter(body.length, HEADER.length, Buffer.byteLength(compact(meta))).toString()}`);
    expect(file.subarray(-FOOTER_BYTES).toString()).toMatch(/^smtp-sidecar spool v1 \d{16} \d{10} \d{10} +\n$/);
    expect(dirSyncs).toContain(spoolDir('queue'));
    const read = await spool.read(qid);
    expect(read?.meta).toEqual(meta);
    expect(read?.source).toEqual({ path: spoolDir('queue', `${qid}.msg`), header: HEADER, bodyStart: 0, bodyEnd: body.length });
    expect((await readRaw(read!.source)).toString()).toBe(`${HEADER.toString()}${body}`);
  });

  it('a draft past the spill threshold is written from its first body byte and becomes the message file by rename (same inode, no copy)', async () => {
    await spool.recover();
    const qid = spool.newQid();
    const draft = spool.draft(qid);
    const chunk = Buffer.alloc(100_000, 'abcdefghij\r\n');
    for (let i = 0; i < 7; i += 1) await draft.write(chunk);
    expect(draft.length).toBe(700_000);
    expect(draft.bytesInMemory).toBe(0);
    expect(await listing('tmp')).toEqual([`${qid}.msg`]);
    const draftInode = (await stat(spoolDir('tmp', `${qid}.msg`))).ino;
    expect((await readFile(spoolDir('tmp', `${qid}.msg`))).length).toBe(700_000);
    const entry = await spool.store({ draft, header: HEADER, meta: sampleMeta(qid) });
    expect(await listing('tmp')).toEqual([]);
    expect(await listing('queue')).toEqual([`${qid}.msg`]);
    expect((await stat(spoolDir('queue', `${qid}.msg`))).ino).toBe(draftInode);
    const whole = Buffer.concat([HEADER, ...Array.from({ length: 7 }, () => chunk)]);
    expect(entry.source).toEqual({ path: spoolDir('queue', `${qid}.msg`), header: HEADER, bodyStart: 0, bodyEnd: 700_000 });
    expect((await readRaw(entry.source)).equals(whole)).toBe(true);
    await draft.discard(); // after store: nothing left to remove, no error
    expect(await listing('queue')).toEqual([`${qid}.msg`]);
  });

  it('a draft below the threshold stays in memory; discard() leaves nothing, and a discarded spilled draft removes its file', async () => {
    await spool.recover();
    const small = spool.draft('small');
    await small.write(Buffer.from('tiny\r\n'));
    expect(small.bytesInMemory).toBe(6);
    await small.discard();
    const big = spool.draft('big');
    await big.write(Buffer.alloc(300_000, 'x'));
    expect(await listing('tmp')).toEqual(['big.msg']);
    await big.discard();
    await big.discard(); // twice: still fine
    expect(await listing('tmp')).toEqual([]);
    await expect(big.write(Buffer.from('late'))).rejects.toThrow(/write after/);
    expect(await listing('queue')).toEqual([]);
  });

  it('update() writes a .state that read()/list() return; remove() takes both files', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    const updated = sampleMeta('q1', {
      attempts: 2,
      nextAttemptAt: '2026-01-01T00:10:00.000Z',
      lastError: '451 4.4.1 try later',
      recipients: [
        { address: 'a@example.org', status: 'delivered', relay: 'primary', response: '250 OK' },
        { address: 'b@example.org', status: 'pending' },
      ],
    });
    await spool.update(updated);
    expect(await listing('queue')).toEqual(['q1.msg', 'q1.state']);
    expect(JSON.parse(await readFile(spoolDir('queue', 'q1.state'), 'utf8'))).toEqual(updated);
    expect((await spool.read('q1'))?.meta).toEqual(updated);
    expect((await spool.list()).map((entry) => entry.meta)).toEqual([updated]);
    expect((await fresh().list()).map((entry) => entry.meta)).toEqual([updated]); // from the files alone
    expect(await listing('tmp')).toEqual([]);
    await spool.remove('q1');
    expect(await listing('queue')).toEqual([]);
  });

  it('remove() removes the entry (and is idempotent)', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q2') });
    await spool.remove('q1');
    await spool.remove('q1');
    expect(await listing('queue')).toEqual(['q2.msg']);
    expect(await spool.read('q1')).toBeUndefined();
    expect((await spool.list()).map((entry) => entry.meta.qid)).toEqual(['q2']);
  });

  it('fail() moves the message and its .state to failed/ with the reason; readFailed() and requeue() go through the API', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('\r\nbody'), meta: sampleMeta('q1') });
    const failedMeta = sampleMeta('q1', { attempts: 1, recipients: [{ address: 'a@example.org', status: 'failed', response: '550 5.1.1 no such user' }, { address: 'b@example.org', status: 'pending' }] });
    await spool.update(failedMeta);
    await spool.fail('q1', REASON);
    expect(await listing('queue')).toEqual([]);
    expect(await listing('failed')).toEqual(['q1.msg', 'q1.reason.json', 'q1.state']);
    expect(dirSyncs).toContain(spoolDir('failed'));
    expect(await spool.read('q1')).toBeUndefined();
    expect(await spool.failedQids()).toEqual(['q1']);
    const failed = await spool.readFailed('q1');
    expect(failed?.meta).toEqual(failedMeta);
    expect(failed?.reason).toEqual(REASON);
    expect(failed?.source).toMatchObject({ path: spoolDir('failed', 'q1.msg'), header: HEADER });
    expect((await readRaw(failed!.source)).toString()).toBe(`${HEADER.toString()}\r\nbody`);

    const requeued = sampleMeta('q1', { firstReceivedAt: '2026-01-01T00:00:00.000Z', receivedAt: '2026-01-04T00:00:00.000Z' });
    const entry = await spool.requeue(requeued);
    expect(entry.source).toMatchObject({ path: spoolDir('queue', 'q1.msg'), header: HEADER });
    expect(await listing('failed')).toEqual([]);
    expect(await listing('queue')).toEqual(['q1.msg', 'q1.state']);
    expect((await fresh().read('q1'))?.meta).toEqual(requeued);
    await spool.fail('q1', REASON);
    await spool.removeFailed('q1');
    expect(await listing('failed')).toEqual([]);
  });

  it('list() skips an unreadable .msg instead of failing, read() reports it as E_SPOOL_CORRUPT', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    await writeFile(spoolDir('queue', 'bad.msg'), 'garbage without a footer');
    expect((await spool.list()).map((entry) => entry.meta.qid)).toEqual(['q1']);
    await expect(spool.read('bad')).rejects.toMatchObject({ code: 'E_SPOOL_CORRUPT' });
  });

  it('recover() empties tmp/, quarantines what it cannot read (an unknown format version too), removes an orphan .state and lists the rest oldest first', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('one'), meta: sampleMeta('newer', { receivedAt: '2026-01-02T00:00:00.000Z' }) });
    await storeMessage(spool, { header: HEADER, body: memoryBody('two'), meta: sampleMeta('older', { receivedAt: '2026-01-01T00:00:00.000Z' }) });
    await writeFile(spoolDir('tmp', 'abc.msg'), 'half written');
    await writeFile(spoolDir('tmp', 'abc.1.state'), '{}');
    await writeFile(spoolDir('queue', 'garbage.msg'), 'no footer at all');
    const meta = Buffer.from(compact(sampleMeta('future')));
    await writeFile(spoolDir('queue', 'future.msg'), Buffer.concat([Buffer.from('b'), HEADER, meta, Buffer.from(encodeFooter(1, HEADER.length, meta.length).toString().replace('spool v1 ', 'spool v2 '))]));
    const wrongQid = Buffer.from(compact(sampleMeta('other')));
    await writeFile(spoolDir('queue', 'wrongqid.msg'), Buffer.concat([HEADER, wrongQid, encodeFooter(0, HEADER.length, wrongQid.length)]));
    await writeFile(spoolDir('queue', 'gone.state'), compact(sampleMeta('gone')));
    await writeFile(spoolDir('queue', 'notes.txt'), 'what is this');

    const report = await fresh().recover();

    expect(report.removedTmp).toBe(2);
    expect(await listing('tmp')).toEqual([]);
    expect([...report.quarantined].sort()).toEqual(['future.msg', 'garbage.msg', 'notes.txt', 'wrongqid.msg']);
    expect(await listing('quarantine')).toEqual(['future.msg', 'garbage.msg', 'notes.txt', 'wrongqid.msg']);
    expect(await readFile(spoolDir('quarantine', 'garbage.msg'), 'utf8')).toBe('no footer at all'); // moved, never deleted
    expect(await listing('queue')).toEqual(['newer.msg', 'older.msg']); // gone.state removed
    expect(report.entries.map((entry) => entry.meta.qid)).toEqual(['older', 'newer']);
  });

  it('recover() finishes a fail() a crash cut short: a .state left in queue/ follows its .msg into failed/', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    const updated = sampleMeta('q1', { attempts: 4 });
    await spool.update(updated);
    await spool.fail('q1', REASON);
    // the crash: the .msg had moved, its .state had not
    await copyFile(spoolDir('failed', 'q1.state'), spoolDir('queue', 'q1.state'));
    await rm(spoolDir('failed', 'q1.state'));
    const report = await fresh().recover();
    expect(report.entries).toEqual([]);
    expect(await listing('queue')).toEqual([]);
    expect(await listing('failed')).toEqual(['q1.msg', 'q1.reason.json', 'q1.state']);
    expect((await fresh().readFailed('q1'))?.meta).toEqual(updated);
  });

  it('recover() removes what a requeue() a crash cut short leaves in failed/ (.state, reason), so a later failure never reads the old state', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    const firstFailure = sampleMeta('q1', { attempts: 9, recipients: [{ address: 'a@example.org', status: 'failed', response: '550 5.1.1 no such user' }] });
    await spool.update(firstFailure);
    await spool.fail('q1', REASON);
    await copyFile(spoolDir('failed', 'q1.state'), join(dir, 'q1.state'));
    await copyFile(spoolDir('failed', 'q1.reason.json'), join(dir, 'q1.reason.json'));
    await spool.requeue(sampleMeta('q1'));
    // the crash: the .msg had moved back to queue/, its new .state had not; failed/ kept the old ones
    await rm(spoolDir('queue', 'q1.state'));
    await copyFile(join(dir, 'q1.state'), spoolDir('failed', 'q1.state'));
    await copyFile(join(dir, 'q1.reason.json'), spoolDir('failed', 'q1.reason.json'));

    const restarted = fresh();
    const report = await restarted.recover();
    expect(report.entries.map((entry) => entry.meta)).toEqual([sampleMeta('q1')]);
    expect(await listing('failed')).toEqual([]);
    // it fails again at once (no deferral wrote a .state): failed/ shows this failure, not the old one
    await restarted.fail('q1', REASON);
    expect((await restarted.readFailed('q1'))?.meta).toEqual(sampleMeta('q1'));
  });

  it('recover() never overwrites a file already in quarantine/', async () => {
    await mkdir(spoolDir('quarantine'), { recursive: true });
    await mkdir(spoolDir('queue'), { recursive: true });
    await writeFile(spoolDir('quarantine', 'x.msg'), 'first');
    await writeFile(spoolDir('queue', 'x.msg'), 'second');
    const report = await spool.recover();
    expect(report.quarantined).toEqual(['x.msg']);
    const names = await listing('quarantine');
    expect(names).toHaveLength(2);
    const contents = await Promise.all(names.map((name) => readFile(spoolDir('quarantine', name), 'utf8')));
    expect(contents.sort()).toEqual(['first', 'second']);
  });

  it('probeWritable() is true on a writable spool and leaves nothing behind', async () => {
    await spool.recover();
    expect(await spool.probeWritable()).toBe(true);
    expect(await listing('tmp')).toEqual([]);
  });

  it('probeWritable() is false (and does not throw) when tmp/ is missing', async () => {
    expect(await spool.probeWritable()).toBe(false);
  });

  it('200 concurrent stores all land (one file each), are all listed, and share fewer queue/ fsyncs than stores', async () => {
    await spool.recover();
    const storeCount = 200;
    const qids = Array.from({ length: storeCount }, () => spool.newQid());
    expect(new Set(qids).size).toBe(storeCount);
    const body = Buffer.alloc(10_000, 'x');
    await Promise.all(qids.map((qid) => storeMessage(spool, { header: HEADER, body: [body], meta: sampleMeta(qid) })));
    const listed = await spool.list();
    expect(listed.map((entry) => entry.meta.qid).sort()).toEqual([...qids].sort());
    expect(await listing('queue')).toHaveLength(storeCount);
    const queueSyncs = dirSyncs.filter((path) => path === spoolDir('queue')).length;
    expect(queueSyncs).toBeGreaterThan(0);
    expect(queueSyncs).toBeLessThan(storeCount);
    const recovered = await fresh().recover();
    expect(recovered.entries).toHaveLength(storeCount);
    expect(recovered.quarantined).toEqual([]);
  });
});

describe('upgrade: a spool written by the previous version (.eml + .json pairs)', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-upgrade-'));
    for (const sub of ['tmp', 'queue', 'failed', 'quarantine']) await mkdir(join(dir, sub), { recursive: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const listing = async (subdir: string) => (await readdir(join(dir, subdir))).sort();
  const BODY_A = Buffer.from(`\r\n${'line of the first message\r\n'.repeat(20_000)}`); // ~540 KB: the copy loop runs more than once
  const BODY_B = Buffer.from('\r\nsecond body\r\n.\r\n');
  const BODY_C = Buffer.from('\r\nfailed body\r\n');

  /** The previous layout, as its FsSpool wrote it: <qid>.eml = header + body, <qid>.json = meta (headerBytes only since the version before this one). */
  async function oldLayout(): Promise<void> {
    await writeFile(join(dir, 'queue', 'A.eml'), Buffer.concat([HEADER, BODY_A]));
    await writeFile(join(dir, 'queue', 'A.json'), compact(sampleMeta('A', { receivedAt: '2026-01-01T00:00:00.000Z', attempts: 3, lastError: '451 later' })));
    await writeFile(join(dir, 'queue', 'B.eml'), Buffer.concat([HEADER, BODY_B]));
    await writeFile(join(dir, 'queue', 'B.json'), JSON.stringify({ ...sampleMeta('B', { receivedAt: '2026-01-02T00:00:00.000Z' }), headerBytes: HEADER.length }));
    await writeFile(join(dir, 'queue', 'D.eml'), 'never acknowledged');
    await writeFile(join(dir, 'failed', 'C.eml'), Buffer.concat([HEADER, BODY_C]));
    await writeFile(join(dir, 'failed', 'C.json'), compact(sampleMeta('C')));
    await writeFile(join(dir, 'failed', 'C.reason.json'), JSON.stringify(REASON));
  }

  it('recover() converts every pair to one .msg (queue/ and failed/), byte for byte, and the old files go', async () => {
    await oldLayout();
    const spool = new FsSpool({ dir, fsync: true, clock: new ManualClock() });
    const report = await spool.recover();
    expect(report.entries.map((e) => e.meta.qid)).toEqual(['A', 'B']);
    expect(report.quarantined).toEqual(['D.eml']); // an .eml without .json was never acknowledged, as before
    expect(await listing('queue')).toEqual(['A.msg', 'B.msg']);
    expect(await listing('failed')).toEqual(['C.msg', 'C.reason.json']);
    expect(await listing('tmp')).toEqual([]);
    const a = await spool.read('A');
    expect(a?.meta).toEqual(sampleMeta('A', { receivedAt: '2026-01-01T00:00:00.000Z', attempts: 3, lastError: '451 later' }));
    expect((await readRaw(a!.source)).equals(Buffer.concat([HEADER, BODY_A]))).toBe(true);
    const b = await spool.read('B');
    expect(b?.meta).toEqual(sampleMeta('B', { receivedAt: '2026-01-02T00:00:00.000Z' })); // headerBytes is the footer's now
    expect(b?.source).toMatchObject({ header: HEADER, bodyStart: 0, bodyEnd: BODY_B.length });
    expect((await readRaw(b!.source)).equals(Buffer.concat([HEADER, BODY_B]))).toBe(true);
    const c = await spool.readFailed('C');
    expect(c?.reason).toEqual(REASON);
    expect((await readRaw(c!.source)).equals(Buffer.concat([HEADER, BODY_C]))).toBe(true);
    // a second start finds nothing to do
    const again = await new FsSpool({ dir, fsync: true, clock: new ManualClock() }).recover();
    expect(again.entries.map((e) => e.meta.qid)).toEqual(['A', 'B']);
    expect(again.quarantined).toEqual([]);
  });

  it('a crash in the middle of a conversion loses nothing: a half-written tmp file is dropped and the pair converted again; a finished .msg next to the old pair wins', async () => {
    await oldLayout();
    // crash 1: the new file was still being written in tmp/
    await writeFile(join(dir, 'tmp', 'A.msg'), BODY_A.subarray(0, 1000));
    // crash 2: B's new file was renamed into place, the old pair not removed yet
    const converted = await mkdtemp(join(tmpdir(), 'spool-upgrade-b-'));
    try {
      for (const sub of ['tmp', 'queue', 'failed', 'quarantine']) await mkdir(join(converted, sub), { recursive: true });
      await copyFile(join(dir, 'queue', 'B.eml'), join(converted, 'queue', 'B.eml'));
      await copyFile(join(dir, 'queue', 'B.json'), join(converted, 'queue', 'B.json'));
      await new FsSpool({ dir: converted, fsync: false, clock: new ManualClock() }).recover();
      await copyFile(join(converted, 'queue', 'B.msg'), join(dir, 'queue', 'B.msg'));
    } finally {
      await rm(converted, { recursive: true, force: true });
    }
    expect(await listing('queue')).toEqual(['A.eml', 'A.json', 'B.eml', 'B.json', 'B.msg', 'D.eml']);

    const spool = new FsSpool({ dir, fsync: true, clock: new ManualClock() });
    const report = await spool.recover();
    expect(report.entries.map((e) => e.meta.qid)).toEqual(['A', 'B']);
    expect(await listing('queue')).toEqual(['A.msg', 'B.msg']);
    expect((await readRaw((await spool.read('A'))!.source)).equals(Buffer.concat([HEADER, BODY_A]))).toBe(true);
    expect((await readRaw((await spool.read('B'))!.source)).equals(Buffer.concat([HEADER, BODY_B]))).toBe(true);
  });
});

describe('qids after a restart with the clock set back', () => {
  it('a new relay never draws the qid of a message already queued (its rename would replace that file)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spool-qid-'));
    try {
      const at = Date.UTC(2026, 10, 30, 7, 0, 0);
      const first = new FsSpool({ dir, fsync: false, clock: new ManualClock(at), drawQidPrefix: () => 'aaa' });
      await first.recover();
      const qid = first.newQid();
      await storeMessage(first, { header: HEADER, body: memoryBody('\r\nthe queued one\r\n'), meta: sampleMeta(qid) });
      // the next start: same clock reading (stepped back by NTP), and the random prefix repeats
      const draws = ['aaa', 'aaa', 'bbb'];
      const second = new FsSpool({ dir, fsync: false, clock: new ManualClock(at), drawQidPrefix: () => draws.shift() ?? 'ccc' });
      await second.recover();
      const next = second.newQid();
      expect(next).not.toBe(qid);
      expect(next.slice(9, 12)).toBe('bbb');
      expect((await second.read(qid))?.meta.qid).toBe(qid);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
