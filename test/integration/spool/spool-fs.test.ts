import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRealSpoolFs } from '../../../src/spool/spool-fs.js';

async function errnoOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (err: unknown) => (err as NodeJS.ErrnoException).code,
  );
}

/** Open descriptors of this process (Linux). */
async function openFdCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

describe(`${createRealSpoolFs.name} (plain descriptors, callback fs)`, () => {
  const fs = createRealSpoolFs();
  let dir = '';

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-fs-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writeAll writes one buffer or several (skipping empty ones) in order, and a second call appends after the first', async () => {
    const path = join(dir, 'a.eml');
    const file = await fs.openForWrite(path, { exclusive: true });
    await file.writeAll([Buffer.from('head\r\n')]);
    await file.writeAll([Buffer.from('one '), Buffer.alloc(0), Buffer.from('two '), Buffer.from('three')]);
    await file.sync();
    await file.close();
    expect(await readFile(path, 'utf8')).toBe('head\r\none two three');
  });

  it('appendFileContents copies a file larger than its copy chunk after what was written, and returns the byte count', async () => {
    const source = join(dir, 'body.spill');
    const body = randomBytes(600 * 1024 + 17);
    await writeFile(source, body);
    const path = join(dir, 'b.eml');
    const file = await fs.openForWrite(path, { exclusive: true });
    await file.writeAll([Buffer.from('H: v\r\n\r\n')]);
    expect(await file.appendFileContents(source)).toBe(body.length);
    await file.close();
    expect((await readFile(path)).equals(Buffer.concat([Buffer.from('H: v\r\n\r\n'), body]))).toBe(true);
  });

  it('exclusive open refuses an existing file with EEXIST; a non-exclusive open truncates it; files are not world-readable', async () => {
    const path = join(dir, 'c.json');
    await writeFile(path, 'old content that is long');
    expect(await errnoOf(fs.openForWrite(path, { exclusive: true }))).toBe('EEXIST');
    const file = await fs.openForWrite(path, { exclusive: false });
    await file.writeAll([Buffer.from('new')]);
    await file.close();
    expect(await readFile(path, 'utf8')).toBe('new');
    const fresh = join(dir, 'd.json');
    await (await fs.openForWrite(fresh, { exclusive: true })).close();
    expect((await stat(fresh)).mode & 0o007).toBe(0);
  });

  it('errors keep their errno code (the spool decides on ENOENT), for rename, unlink, syncDir and a missing copy source', async () => {
    expect(await errnoOf(fs.rename(join(dir, 'missing'), join(dir, 'x')))).toBe('ENOENT');
    expect(await errnoOf(fs.unlink(join(dir, 'missing')))).toBe('ENOENT');
    expect(await errnoOf(fs.syncDir(join(dir, 'missing-dir')))).toBe('ENOENT');
    expect(await errnoOf(fs.openForWrite(join(dir, 'no-dir', 'f'), { exclusive: true }))).toBe('ENOENT');
    const file = await fs.openForWrite(join(dir, 'e.eml'), { exclusive: true });
    expect(await errnoOf(file.appendFileContents(join(dir, 'missing.spill')))).toBe('ENOENT');
    await file.close();
    expect(await fs.stat(join(dir, 'missing'))).toBeUndefined();
  });

  it('rename, unlink, syncDir, stat and readdir do what they say on a real directory', async () => {
    const from = join(dir, 'f.tmp');
    await writeFile(from, '12345');
    await fs.rename(from, join(dir, 'f.eml'));
    await fs.syncDir(dir);
    expect(await fs.readdir(dir)).toEqual(['f.eml']);
    expect(await fs.stat(join(dir, 'f.eml'))).toMatchObject({ sizeBytes: 5, isFile: true });
    await fs.unlink(join(dir, 'f.eml'));
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('leaves no descriptor open: after writes, copies (also failing ones), closes and directory fsyncs the count is unchanged', async () => {
    const source = join(dir, 'src.spill');
    await writeFile(source, 'x'.repeat(1000));
    const before = await openFdCount();
    // Bounded: 30 rounds.
    for (let round = 0; round < 30; round += 1) {
      const file = await fs.openForWrite(join(dir, `g${round}.eml`), { exclusive: true });
      await file.writeAll([Buffer.from('a'), Buffer.from('b')]);
      await file.appendFileContents(source);
      await file.appendFileContents(join(dir, 'missing.spill')).catch(() => undefined);
      await file.sync();
      await file.close();
      await fs.syncDir(dir);
    }
    expect(await openFdCount()).toBe(before);
  });
});
