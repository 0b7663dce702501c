import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { RelayError } from '../../../src/core/errors.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { isValidQid, makeQid } from '../../../src/spool/qid.js';
import { createRealSpoolFs } from '../../../src/spool/spool-fs.js';
import { FaultFs } from './fault-fs.js';
import { HEADER, memoryBody, sampleMeta } from './spool-fixtures.js';
import { storeMessage } from '../../../src/core/store-message.js';

async function expectSpoolWriteError(promise: Promise<unknown>, errno: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(RelayError);
  expect((error as RelayError).code).toBe('E_SPOOL_WRITE');
  expect((error as RelayError).smtpReply.code).toBe(452);
  expect(((error as RelayError).cause as NodeJS.ErrnoException).code).toBe(errno);
}

describe(`${FsSpool.name} under injected faults`, () => {
  let dir = '';
  let fs: FaultFs;
  let spool: FsSpool;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-fault-'));
    fs = new FaultFs(createRealSpoolFs());
    spool = new FsSpool({ dir, fsync: true, clock: new ManualClock(), fs });
    await spool.recover();
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const listing = async (subdir: string) => (await readdir(join(dir, subdir))).sort();
  const store = (qid: string) => storeMessage(spool, { header: HEADER, body: memoryBody('body\r\n'), meta: sampleMeta(qid) });

  it('ENOSPC while writing the message file → E_SPOOL_WRITE, tmp/ cleaned, nothing in queue/', async () => {
    fs.failOn('write', 'q1.msg', 'ENOSPC');
    await expectSpoolWriteError(store('q1'), 'ENOSPC');
    expect(await listing('tmp')).toEqual([]);
    expect(await listing('queue')).toEqual([]);
  });

  it('a failing file fsync is not success', async () => {
    fs.failOn('sync', 'q1.msg', 'EIO');
    await expectSpoolWriteError(store('q1'), 'EIO');
    expect(await listing('tmp')).toEqual([]);
    expect(await listing('queue')).toEqual([]);
  });

  it('EROFS on the rename into queue/ → nothing in queue/, tmp/ cleaned', async () => {
    fs.failOn('rename', 'queue/q1.msg', 'EROFS');
    await expectSpoolWriteError(store('q1'), 'EROFS');
    expect(await listing('tmp')).toEqual([]);
    expect(await listing('queue')).toEqual([]);
  });

  it('a failing queue/ fsync is not resolved as success, and the entry is withdrawn', async () => {
    fs.failOn('syncDir', join(dir, 'queue'), 'EIO');
    await expectSpoolWriteError(store('q1'), 'EIO');
    expect(await listing('queue')).toEqual([]);
    const unlinks = fs.events.filter((event) => event.op === 'unlink' && event.phase === 'end').map((event) => event.path);
    expect(unlinks).toEqual([join(dir, 'queue', 'q1.msg')]);
  });

  /** A spool that spills a draft past 8 bytes, on the same fault-injecting fs. */
  const spilling = () => new FsSpool({ dir, fsync: true, clock: new ManualClock(), fs, spillThresholdBytes: 8 });

  it('a spilled draft becomes the message file: header, meta and footer appended to it, one rename, no copy', async () => {
    const before = fs.events.length;
    await storeMessage(spilling(), { header: HEADER, body: [Buffer.from('spilled '), Buffer.from('body\r\n')], meta: sampleMeta('q1') });
    const events = fs.events.slice(before).filter((e) => e.phase === 'start').map((e) => `${e.op} ${e.path.slice(dir.length + 1)}`);
    // the body (both chunks once past the threshold), then header + meta + footer in one write
    expect(events).toEqual(['open tmp/q1.msg', 'write tmp/q1.msg', 'write tmp/q1.msg', 'sync tmp/q1.msg', 'close tmp/q1.msg', 'rename queue/q1.msg', 'syncDir queue']);
    expect(await listing('queue')).toEqual(['q1.msg']);
  });

  it('EIO appending the header to a spilled draft → E_SPOOL_WRITE, the draft file is removed', async () => {
    const spool8 = spilling();
    const draft = spool8.draft('q1');
    await draft.write(Buffer.from('spilled body\r\n'));
    expect(await listing('tmp')).toEqual(['q1.msg']);
    fs.failOn('write', 'q1.msg', 'EIO', 1);
    await expectSpoolWriteError(spool8.store({ draft, header: HEADER, meta: sampleMeta('q1') }), 'EIO');
    expect(await listing('tmp')).toEqual([]);
    expect(await listing('queue')).toEqual([]);
  });

  for (const [op, code] of [['open', 'ENOSPC'], ['write', 'ENOSPC'], ['write', 'EIO']] as const) {
    it(`${code} on the draft's ${op} while spilling → the write throws E_SPOOL_WRITE, the draft is discarded, nothing is left in tmp/`, async () => {
      const spool8 = spilling();
      const draft = spool8.draft('q1');
      await draft.write(Buffer.from('1234')); // below the threshold: memory
      expect(fs.count('open', 'start', 'q1.msg')).toBe(0);
      fs.failOn(op, 'q1.msg', code, 1);
      await expectSpoolWriteError(draft.write(Buffer.from('56789abc')), code);
      expect(await listing('tmp')).toEqual([]);
      expect(draft.bytesInMemory).toBe(0);
      // the failed draft takes no more bytes and cannot be stored
      await expect(draft.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'E_SPOOL_WRITE' });
      await expect(spool8.store({ draft, header: HEADER, meta: sampleMeta('q1') })).rejects.toMatchObject({ code: 'E_SPOOL_WRITE' });
      expect(await listing('queue')).toEqual([]);
    });
  }

  it('a draft of another spool directory (or for another qid) is refused before touching the disk', async () => {
    const other = new FsSpool({ dir: join(dir, 'elsewhere'), fsync: true, clock: new ManualClock(), fs }).draft('q1');
    await expect(spool.store({ draft: other, header: HEADER, meta: sampleMeta('q1') })).rejects.toMatchObject({ code: 'E_INTERNAL' });
    await expect(spool.store({ draft: spool.draft('q2'), header: HEADER, meta: sampleMeta('q1') })).rejects.toMatchObject({ code: 'E_INTERNAL' });
    expect(fs.count('open')).toBe(0);
  });

  it('a qid already being written (EEXIST on open) does not remove the other writer\'s file', async () => {
    await writeFile(join(dir, 'tmp', 'q1.msg'), 'in progress');
    const error = await store('q1').catch((err: unknown) => err);
    expect((error as RelayError).code).toBe('E_SPOOL_WRITE');
    expect(await listing('tmp')).toEqual(['q1.msg']);
  });

  it('a failing store leaves other concurrent stores unaffected', async () => {
    fs.failOn('write', 'bad.msg', 'ENOSPC');
    const results = await Promise.allSettled([store('good1'), store('bad'), store('good2')]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await listing('queue')).toEqual(['good1.msg', 'good2.msg']);
  });

  it('update: EROFS on rename → E_SPOOL_WRITE, the old meta stays, no tmp leftovers', async () => {
    await store('q1');
    fs.failOn('rename', 'q1.state', 'EROFS');
    await expectSpoolWriteError(spool.update(sampleMeta('q1', { attempts: 3 })), 'EROFS');
    expect((await spool.read('q1'))?.meta.attempts).toBe(0);
    expect(await listing('tmp')).toEqual([]);
    expect(await listing('queue')).toEqual(['q1.msg']);
  });

  it('update of a qid not in the queue is refused (it would create a .state without .msg)', async () => {
    const error = await spool.update(sampleMeta('nothere')).catch((err: unknown) => err);
    expect((error as RelayError).code).toBe('E_SPOOL_CORRUPT');
    expect(await listing('queue')).toEqual([]);
  });

  it('fail: a failing failed/ fsync rejects', async () => {
    await store('q1');
    fs.failOn('syncDir', join(dir, 'failed'), 'EIO');
    await expectSpoolWriteError(spool.fail('q1', { reason: 'x', recipients: [], failedAt: '2026-01-01T00:00:00.000Z' }), 'EIO');
  });

  it('remove: EROFS → E_SPOOL_WRITE', async () => {
    await store('q1');
    fs.failOn('unlink', 'q1.msg', 'EROFS');
    await expectSpoolWriteError(spool.remove('q1'), 'EROFS');
    expect(await listing('queue')).toEqual(['q1.msg']);
  });

  it('probeWritable is false (never throws) on EACCES, ENOSPC or a failing fsync, true otherwise', async () => {
    expect(await spool.probeWritable()).toBe(true);
    fs.failOn('open', 'probe', 'EACCES', 1);
    expect(await spool.probeWritable()).toBe(false);
    fs.failOn('write', 'probe', 'ENOSPC', 1);
    expect(await spool.probeWritable()).toBe(false);
    fs.failOn('sync', 'probe', 'EIO', 1);
    expect(await spool.probeWritable()).toBe(false);
    expect(await listing('tmp')).toEqual([]);
    expect(await spool.probeWritable()).toBe(true);
  });

  it('rejects a qid that is not [A-Za-z0-9]+ before touching the disk', async () => {
    const before = fs.events.length;
    for (const qid of ['../etc/passwd', 'a/b', '', 'a.b', 'q 1']) {
      expect(() => spool.draft(qid)).toThrow(RelayError);
      await expect(store(qid)).rejects.toThrow(RelayError);
      await expect(spool.read(qid)).rejects.toThrow(RelayError);
      await expect(spool.remove(qid)).rejects.toThrow(RelayError);
      await expect(spool.update(sampleMeta(qid))).rejects.toThrow(RelayError);
      await expect(spool.fail(qid, { reason: 'x', recipients: [], failedAt: '' })).rejects.toThrow(RelayError);
    }
    expect(fs.events.length).toBe(before);
  });

  it('with fsync off, neither files nor directories are fsynced', async () => {
    const unsynced = new FsSpool({ dir, fsync: false, clock: new ManualClock(), fs });
    const before = fs.events.length;
    await storeMessage(unsynced, { header: HEADER, body: memoryBody('body\r\n'), meta: sampleMeta('q9') });
    const ops = fs.events.slice(before).map((event) => event.op);
    expect(ops).not.toContain('sync');
    expect(ops).not.toContain('syncDir');
    expect(ops).toContain('rename');
  });

  it('with fsync on, a stored message is one file: written, fsynced, closed, renamed into queue/, then queue/ fsynced', async () => {
    const before = fs.events.length;
    await store('q1');
    const events = fs.events.slice(before).map((event) => `${event.op} ${event.phase} ${event.path.slice(dir.length + 1)}`);
    expect(events).toEqual([
      'open start tmp/q1.msg',
      'open end tmp/q1.msg',
      'write start tmp/q1.msg',
      'write end tmp/q1.msg',
      'sync start tmp/q1.msg',
      'sync end tmp/q1.msg',
      'close start tmp/q1.msg',
      'close end tmp/q1.msg',
      'rename start queue/q1.msg',
      'rename end queue/q1.msg',
      'syncDir start queue',
      'syncDir end queue',
    ]);
  });

  it('a delivered message costs one unlink; one with a .state (deferred once) two', async () => {
    await store('q1');
    await store('q2');
    await spool.update(sampleMeta('q2', { attempts: 1 }));
    const before = fs.events.length;
    await spool.remove('q1');
    await spool.remove('q2');
    const unlinks = fs.events.slice(before).filter((e) => e.op === 'unlink' && e.phase === 'start').map((e) => e.path.slice(dir.length + 1));
    expect(unlinks).toEqual(['queue/q1.msg', 'queue/q2.msg', 'queue/q2.state']);
    expect(await listing('queue')).toEqual([]);
  });

  it('read() finds a .state another spool on the same directory wrote (the offline queue CLI)', async () => {
    await store('q1');
    await new FsSpool({ dir, fsync: true, clock: new ManualClock(), fs }).update(sampleMeta('q1', { attempts: 1 }));
    expect((await spool.read('q1'))?.meta.attempts).toBe(1);
  });

  it('upgrade: a conversion that cannot be written (ENOSPC) leaves the old pair as it was, and the next start converts it', async () => {
    const meta = sampleMeta('old1');
    await writeFile(join(dir, 'queue', 'old1.eml'), Buffer.concat([HEADER, Buffer.from('\r\nold body\r\n')]));
    await writeFile(join(dir, 'queue', 'old1.json'), JSON.stringify(meta));
    fs.failOn('write', 'tmp/old1.msg', 'ENOSPC', 1);
    const first = await new FsSpool({ dir, fsync: true, clock: new ManualClock(), fs }).recover();
    expect(first.entries).toEqual([]);
    expect(first.quarantined).toEqual([]);
    expect(await listing('queue')).toEqual(['old1.eml', 'old1.json']);
    expect(await listing('tmp')).toEqual([]);
    const second = await new FsSpool({ dir, fsync: true, clock: new ManualClock(), fs }).recover();
    expect(second.entries.map((e) => e.meta)).toEqual([meta]);
    expect(await listing('queue')).toEqual(['old1.msg']);
    // durable before the old pair goes: the new file's fsync and the rename's directory fsync come first
    const events = fs.events.map((e) => `${e.op} ${e.phase} ${e.path.slice(dir.length + 1)}`);
    const lastSync = events.lastIndexOf('syncDir end queue');
    expect(events.lastIndexOf('sync end tmp/old1.msg')).toBeLessThan(events.lastIndexOf('rename start queue/old1.msg'));
    expect(lastSync).toBeGreaterThan(events.lastIndexOf('rename end queue/old1.msg'));
    expect(lastSync).toBeLessThan(events.indexOf('unlink start queue/old1.json'));
    expect(events.indexOf('unlink start queue/old1.json')).toBeLessThan(events.indexOf('unlink start queue/old1.eml'));
  });

  it('newQid() by default: 16-character valid qids, all distinct within one millisecond, sorted in creation order', () => {
    const qids = Array.from({ length: 2000 }, () => spool.newQid());
    expect(new Set(qids).size).toBe(qids.length);
    for (const qid of qids) {
      expect(qid).toMatch(/^[0-9a-z]{16}$/);
      expect(isValidQid(qid)).toBe(true);
    }
    expect([...qids].sort()).toEqual(qids);
  });

  it('newQid() by default starts with the clock time, so later qids sort after earlier ones', () => {
    const clock = new ManualClock();
    const timed = new FsSpool({ dir, fsync: true, clock, fs });
    const early = timed.newQid();
    clock.advance(1);
    const late = timed.newQid();
    expect(late.slice(0, 9) > early.slice(0, 9)).toBe(true);
    expect(late.slice(0, 9)).toBe(makeQid(clock.now()).slice(0, 9));
  });
});
