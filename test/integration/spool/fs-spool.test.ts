import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { createRealSpoolFs, type SpoolFs } from '../../../src/spool/spool-fs.js';
import { HEADER, memoryBody, sampleMeta } from '../../unit/spool/spool-fixtures.js';
import { storeMessage } from '../../../src/core/store-message.js';
import { readRaw } from '../../../src/core/raw-source.js';

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

  it('recover() creates tmp/, queue/, failed/ and quarantine/ in a fresh directory', async () => {
    const report = await spool.recover();
    expect(report).toEqual({ removedTmp: 0, quarantined: [], entries: [] });
    expect((await readdir(spoolDir())).sort()).toEqual(['failed', 'quarantine', 'queue', 'tmp']);
  });

  it('store() of a memory body writes header + body bytes and the meta into queue/', async () => {
    await spool.recover();
    const qid = spool.newQid();
    const meta = sampleMeta(qid);
    const entry = await storeMessage(spool, { header: HEADER, body: memoryBody('Hello\r\nworld\r\n'), meta });
    // the body was in memory: the entry hands the first attempt the bytes without a read
    expect(entry.source).toEqual(Buffer.from(`${HEADER.toString()}Hello\r\nworld\r\n`));
    expect(await readFile(spoolDir('queue', `${qid}.eml`), 'utf8')).toBe(`${HEADER.toString()}Hello\r\nworld\r\n`);
    const json = await readFile(spoolDir('queue', `${qid}.json`), 'utf8');
    expect(JSON.parse(json)).toEqual({ ...meta, headerBytes: HEADER.length });
    // read back: the header alone in memory, the body as the range after it
    const read = await spool.read(qid);
    expect(read?.source).toEqual({ path: spoolDir('queue', `${qid}.eml`), header: HEADER, bodyStart: HEADER.length, bodyEnd: HEADER.length + 14 });
    expect(json.endsWith('}\n') && !json.slice(0, -1).includes('\n')).toBe(true); // compact: one line
    expect(await listing('tmp')).toEqual([]);
    expect(dirSyncs).toContain(spoolDir('queue'));
  });

  it('a draft past the spill threshold goes to its own file in tmp/; store() copies it after the header and removes it', async () => {
    await spool.recover();
    const qid = spool.newQid();
    const draft = spool.draft(qid);
    // Larger than the threshold (256 KiB) and one copy chunk, so the copy loop runs more than once.
    const chunk = Buffer.alloc(100_000, 'abcdefghij\r\n');
    for (let i = 0; i < 7; i += 1) await draft.write(chunk);
    expect(draft.length).toBe(700_000);
    expect(draft.bytesInMemory).toBe(0);
    expect(await listing('tmp')).toEqual([`${qid}.spill`]);
    expect((await readFile(spoolDir('tmp', `${qid}.spill`))).length).toBe(700_000);
    const entry = await spool.store({ draft, header: HEADER, meta: sampleMeta(qid) });
    const whole = Buffer.concat([HEADER, ...Array.from({ length: 7 }, () => chunk)]);
    expect((await readFile(spoolDir('queue', `${qid}.eml`))).equals(whole)).toBe(true);
    expect(entry.source).toEqual({ path: spoolDir('queue', `${qid}.eml`), header: HEADER, bodyStart: HEADER.length, bodyEnd: whole.length });
    expect((await readRaw(entry.source)).equals(whole)).toBe(true);
    expect(await listing('tmp')).toEqual([]);
    await draft.discard(); // after store: nothing left to remove, no error
  });

  it('a draft below the threshold stays in memory; discard() leaves nothing, and a discarded spilled draft removes its file', async () => {
    await spool.recover();
    const small = spool.draft('small');
    await small.write(Buffer.from('tiny\r\n'));
    expect(small.bytesInMemory).toBe(6);
    await small.discard();
    const big = spool.draft('big');
    await big.write(Buffer.alloc(300_000, 'x'));
    expect(await listing('tmp')).toEqual(['big.spill']);
    await big.discard();
    await big.discard(); // twice: still fine
    expect(await listing('tmp')).toEqual([]);
    await expect(big.write(Buffer.from('late'))).rejects.toThrow(/write after/);
    expect(await listing('queue')).toEqual([]);
  });

  it('an entry written by the previous version (no headerBytes in its .json) is read with its header found at the blank line', async () => {
    await spool.recover();
    const meta = sampleMeta('legacy1');
    await writeFile(spoolDir('queue', 'legacy1.eml'), Buffer.concat([HEADER, Buffer.from('old body\r\n')]));
    await writeFile(spoolDir('queue', 'legacy1.json'), JSON.stringify(meta));
    const entry = await spool.read('legacy1');
    const headerEnd = HEADER.length - 2; // the blank line belongs to the body
    expect(entry?.source).toEqual({ path: spoolDir('queue', 'legacy1.eml'), header: HEADER.subarray(0, headerEnd), bodyStart: headerEnd, bodyEnd: HEADER.length + 10 });
    expect((await readRaw(entry!.source)).toString()).toBe(`${HEADER.toString()}old body\r\n`);
  });

  it('recover() deletes tmp/ leftovers, quarantines a corrupt .json, a .json without .eml and an .eml without .json, and lists the rest oldest first', async () => {
    await spool.recover();
    const newer = await storeMessage(spool, { header: HEADER, body: memoryBody('one'), meta: sampleMeta('newer', { receivedAt: '2026-01-02T00:00:00.000Z' }) });
    const older = await storeMessage(spool, { header: HEADER, body: memoryBody('two'), meta: sampleMeta('older', { receivedAt: '2026-01-01T00:00:00.000Z' }) });
    await writeFile(spoolDir('tmp', 'abc.eml'), 'half written');
    await writeFile(spoolDir('tmp', 'abc.spill'), 'spill');
    await writeFile(spoolDir('queue', 'x.json'), '{ this is not json');
    await writeFile(spoolDir('queue', 'x.eml'), 'bytes of x');
    await writeFile(spoolDir('queue', 'lonely.json'), JSON.stringify(sampleMeta('lonely')));
    await writeFile(spoolDir('queue', 'orphan.eml'), 'orphan bytes');
    await writeFile(spoolDir('queue', 'wrongqid.json'), JSON.stringify(sampleMeta('other')));
    await writeFile(spoolDir('queue', 'wrongqid.eml'), 'w');

    const report = await new FsSpool({ dir: spoolDir(), fsync: true, clock: new ManualClock() }).recover();

    expect(report.removedTmp).toBe(2);
    expect(await listing('tmp')).toEqual([]);
    expect([...report.quarantined].sort()).toEqual(['lonely.json', 'orphan.eml', 'wrongqid.eml', 'wrongqid.json', 'x.eml', 'x.json']);
    expect(await listing('quarantine')).toEqual(['lonely.json', 'orphan.eml', 'wrongqid.eml', 'wrongqid.json', 'x.eml', 'x.json']);
    expect(await readFile(spoolDir('quarantine', 'x.json'), 'utf8')).toBe('{ this is not json'); // moved, never deleted
    expect(await listing('queue')).toEqual(['newer.eml', 'newer.json', 'older.eml', 'older.json']);
    expect(report.entries.map((entry) => entry.meta.qid)).toEqual(['older', 'newer']);
    expect(report.entries.map((entry) => (Buffer.isBuffer(entry.source) ? '' : entry.source.path))).toEqual([spoolDir('queue', 'older.eml'), spoolDir('queue', 'newer.eml')]);
    expect([older.meta.qid, newer.meta.qid]).toEqual(['older', 'newer']);
  });

  it('recover() never overwrites a file already in quarantine/', async () => {
    await mkdir(spoolDir('quarantine'), { recursive: true });
    await mkdir(spoolDir('queue'), { recursive: true });
    await writeFile(spoolDir('quarantine', 'x.json'), 'first');
    await writeFile(spoolDir('queue', 'x.json'), 'second');
    const report = await spool.recover();
    expect(report.quarantined).toEqual(['x.json']);
    const names = await listing('quarantine');
    expect(names).toHaveLength(2);
    const contents = await Promise.all(names.map((name) => readFile(spoolDir('quarantine', name), 'utf8')));
    expect(contents.sort()).toEqual(['first', 'second']);
  });

  it('fail() moves both files to failed/ and writes the reason beside them', async () => {
    await spool.recover();
    const entry = await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    const reason = { reason: 'rejected by upstream', recipients: [{ address: 'a@example.org', response: '550 5.1.1 no such user' }], failedAt: '2026-01-03T00:00:00.000Z' };
    await spool.fail('q1', reason);
    expect(await listing('queue')).toEqual([]);
    expect(await listing('failed')).toEqual(['q1.eml', 'q1.json', 'q1.reason.json']);
    expect(JSON.parse(await readFile(spoolDir('failed', 'q1.reason.json'), 'utf8'))).toEqual(reason);
    expect(await readFile(spoolDir('failed', 'q1.eml'), 'utf8')).toBe(`${HEADER.toString()}body`);
    expect(JSON.parse(await readFile(spoolDir('failed', 'q1.json'), 'utf8'))).toEqual(entry.meta);
    expect(dirSyncs).toContain(spoolDir('failed'));
    expect(await spool.read('q1')).toBeUndefined();
  });

  it('update() replaces the meta atomically and read()/list() return it', async () => {
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
    expect((await spool.read('q1'))?.meta).toEqual(updated);
    expect((await spool.list()).map((entry) => entry.meta)).toEqual([updated]);
    expect(await listing('tmp')).toEqual([]);
    expect(await listing('queue')).toEqual(['q1.eml', 'q1.json']);
  });

  it('remove() removes the entry (and is idempotent)', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q2') });
    await spool.remove('q1');
    await spool.remove('q1');
    expect(await listing('queue')).toEqual(['q2.eml', 'q2.json']);
    expect(await spool.read('q1')).toBeUndefined();
    expect((await spool.list()).map((entry) => entry.meta.qid)).toEqual(['q2']);
  });

  it('list() skips a corrupt .json instead of failing, read() reports it as E_SPOOL_CORRUPT', async () => {
    await spool.recover();
    await storeMessage(spool, { header: HEADER, body: memoryBody('body'), meta: sampleMeta('q1') });
    await writeFile(spoolDir('queue', 'bad.json'), 'garbage');
    expect((await spool.list()).map((entry) => entry.meta.qid)).toEqual(['q1']);
    await expect(spool.read('bad')).rejects.toMatchObject({ code: 'E_SPOOL_CORRUPT' });
  });

  it('probeWritable() is true on a writable spool and leaves nothing behind', async () => {
    await spool.recover();
    expect(await spool.probeWritable()).toBe(true);
    expect(await listing('tmp')).toEqual([]);
  });

  it('probeWritable() is false (and does not throw) when tmp/ is missing', async () => {
    expect(await spool.probeWritable()).toBe(false);
  });

  it('200 concurrent stores all land, are all listed, and share fewer queue/ fsyncs than stores', async () => {
    await spool.recover();
    const storeCount = 200;
    const qids = Array.from({ length: storeCount }, () => spool.newQid());
    expect(new Set(qids).size).toBe(storeCount);
    const body = Buffer.alloc(10_000, 'x');
    await Promise.all(
      qids.map((qid) => storeMessage(spool, { header: HEADER, body: [body], meta: sampleMeta(qid) })),
    );
    const listed = await spool.list();
    expect(listed.map((entry) => entry.meta.qid).sort()).toEqual([...qids].sort());
    expect(await listing('queue')).toHaveLength(2 * storeCount);
    const queueSyncs = dirSyncs.filter((path) => path === spoolDir('queue')).length;
    expect(queueSyncs).toBeGreaterThan(0);
    expect(queueSyncs).toBeLessThan(storeCount);
    const recovered = await new FsSpool({ dir: spoolDir(), fsync: true, clock: new ManualClock() }).recover();
    expect(recovered.entries).toHaveLength(storeCount);
    expect(recovered.quarantined).toEqual([]);
  });
});
