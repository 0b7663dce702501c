import * as fsPromises from 'node:fs/promises';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createOutboxTransport, type OutboxFs } from '../../../src/delivery/outbox.js';
import type { OutgoingMessage } from '../../../src/core/ports.js';
import { rawHeader } from '../../../src/core/raw-source.js';

const RAW = Buffer.from('From: a@corp.test\r\nTo: b@dest.test\r\nSubject: x\r\n\r\nbody\r\n');

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { qid: 'Q123', envelope: { mailFrom: 'a@corp.test', rcptTo: ['b@dest.test', 'c@dest.test'] }, raw: RAW, sizeBytes: RAW.length, ...overrides };
}

describe(createOutboxTransport.name, () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  async function tmp(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'outbox-'));
    dirs.push(dir);
    return dir;
  }

  it('writes <qid>.eml with the exact bytes and reports every recipient accepted', async () => {
    const dir = join(await tmp(), 'outbox');
    const outbox = createOutboxTransport({ dir, fsync: true });
    expect(outbox.name).toBe('outbox');
    const report = await outbox.send(message());
    expect(await readFile(join(dir, 'Q123.eml'))).toEqual(RAW);
    expect(report).toEqual({ accepted: ['b@dest.test', 'c@dest.test'], rejected: [], response: '250 2.0.0 written to outbox/Q123.eml' });
    expect(await readdir(dir)).toEqual(['Q123.eml']); // no tmp file left
  });

  it('writes a spool file source: its header, then its body range', async () => {
    const base = await tmp();
    const source = join(base, 'spooled.eml');
    // the file's own header and the bytes past the range must not reach the outbox: a copy of
    // the whole file would differ from RAW
    const header = rawHeader(RAW);
    const body = RAW.subarray(header.length);
    const spooledHeader = Buffer.from('From: before-the-rewrite@corp.test\r\n');
    await writeFile(source, Buffer.concat([spooledHeader, body, Buffer.from('past the range\r\n')]));
    const dir = join(base, 'outbox');
    await createOutboxTransport({ dir, fsync: false }).send(message({ raw: { path: source, header, bodyStart: spooledHeader.length, bodyEnd: spooledHeader.length + body.length } }));
    expect(await readFile(join(dir, 'Q123.eml'))).toEqual(RAW);
  });

  it('writes through a dot-prefixed tmp file in the same directory, then renames it', async () => {
    const dir = await tmp();
    const renames: [string, string][] = [];
    const fs: OutboxFs = { ...fsPromises, rename: async (from, to) => { renames.push([String(from), String(to)]); return fsPromises.rename(from, to); } };
    await createOutboxTransport({ dir, fsync: true, fs }).send(message());
    expect(renames).toEqual([[join(dir, '.Q123.eml.tmp'), join(dir, 'Q123.eml')]]);
  });

  it('leaves neither a partial .eml nor a tmp file when the write fails', async () => {
    const dir = await tmp();
    const fs: OutboxFs = { ...fsPromises, rename: async () => { throw Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' }); } };
    await expect(createOutboxTransport({ dir, fsync: true, fs }).send(message())).rejects.toThrow(/ENOSPC/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a qid that could escape the directory', async () => {
    const dir = await tmp();
    await expect(createOutboxTransport({ dir, fsync: false }).send(message({ qid: '../x' }))).rejects.toThrow(/unsafe qid/);
  });
});
