import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { queueCommand, renderQueue } from '../../../src/cli/queue.js';
import { SpoolAdmin } from '../../../src/ops/spool-admin.js';
import { ManualClock } from '../../../src/core/clock.js';
import type { SpoolMeta } from '../../../src/core/types.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { startRefusingPort } from '../../helpers/fake-upstream.js';
import { captureIo } from './support.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function meta(qid: string, overrides: Partial<SpoolMeta> = {}): SpoolMeta {
  return {
    version: 1,
    qid,
    envelope: { mailFrom: 'app@corp.test', rcptTo: ['a@dest.test', 'b@dest.test'] },
    client: { address: '127.0.0.1' },
    receivedAt: new Date(T0).toISOString(),
    sizeBytes: 42,
    facts: { from: 'app@corp.test', subject: 'hello', messageId: '<m@corp.test>', attachments: 0, attachmentsBytes: 0 },
    recipients: [
      { address: 'a@dest.test', status: 'pending' },
      { address: 'b@dest.test', status: 'pending' },
    ],
    attempts: 3,
    nextAttemptAt: new Date(T0 + 30 * 60_000).toISOString(),
    lastError: '451 4.4.1 upstream primary: connection refused',
    ...overrides,
  };
}

describe('queue (direct mode on the spool files)', () => {
  let dir: string;
  let spool: FsSpool;
  let clock: ManualClock;
  let configPath: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-queue-'));
    clock = new ManualClock(T0);
    spool = new FsSpool({ dir: join(dir, 'spool'), fsync: false, clock });
    await spool.recover();
    const body = (text: string) => ({ kind: 'memory' as const, chunks: [Buffer.from(text)], length: text.length });
    await spool.store({ header: Buffer.from('Subject: one\r\n\r\n'), body: body('first body\r\n'), meta: meta('AAAA0001') });
    await spool.store({
      header: Buffer.from('Subject: two\r\n\r\n'),
      body: body('second body\r\n'),
      meta: meta('AAAA0002', { receivedAt: new Date(T0 + 1000).toISOString(), envelope: { mailFrom: '', rcptTo: ['c@dest.test'] }, recipients: [{ address: 'c@dest.test', status: 'pending' }], attempts: 0, lastError: undefined, nextAttemptAt: new Date(T0).toISOString() }),
    });
    configPath = join(dir, 'config.json');
    await writeFile(configPath, JSON.stringify({ delivery: { spoolDir: join(dir, 'spool'), fsync: false }, http: { enabled: false } }));
    clock.set(T0 + 3 * 60_000 + 12_000);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = (args: string[], extra: { json?: boolean; all?: boolean; config?: string } = {}) => {
    const io = captureIo();
    return queueCommand({ config: extra.config ?? configPath, args, json: extra.json ?? false, all: extra.all ?? false }, io, { clock }).then((code) => ({ code, io }));
  };

  it('list shows both messages in a table: age, sender, first recipient + count, attempts, next attempt, last error', async () => {
    const { code, io } = await run(['list']);
    expect(code).toBe(0);
    const lines = io.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^QID\s+AGE\s+SENDER\s+RECIPIENTS\s+ATTEMPTS\s+NEXT\s+LAST ERROR$/);
    expect(lines[1]).toMatch(/^AAAA0001\s+3m12s\s+app@corp\.test\s+a@dest\.test \+1\s+3\s+in 26m48s\s+451 4\.4\.1 upstream primary: connection refused$/);
    expect(lines[2]).toMatch(/^AAAA0002\s+3m11s\s+<>\s+c@dest\.test\s+0\s+now$/);
    expect(lines).toHaveLength(3);
    expect(io.out()).not.toContain('first body');
  });

  it('list --json prints the rows as JSON', async () => {
    const { code, io } = await run(['list'], { json: true });
    expect(code).toBe(0);
    const rows = JSON.parse(io.out()) as { qid: string; pendingRecipients: string[]; attempts: number }[];
    expect(rows.map((r) => r.qid)).toEqual(['AAAA0001', 'AAAA0002']);
    expect(rows[0]?.pendingRecipients).toEqual(['a@dest.test', 'b@dest.test']);
    expect(rows[0]?.attempts).toBe(3);
  });

  it('show prints the metadata JSON, and exits 1 for an unknown or malformed qid', async () => {
    const shown = await run(['show', 'AAAA0001']);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.io.out())).toEqual(meta('AAAA0001'));
    expect((await run(['show', 'NOPE0000'])).code).toBe(1);
    const traversal = await run(['show', '../../etc/passwd']);
    expect(traversal.code).toBe(1);
    expect(traversal.io.err()).toMatch(/no queued message/);
  });

  it('retry sets nextAttemptAt to now on disk', async () => {
    const { code, io } = await run(['retry', 'AAAA0001']);
    expect(code).toBe(0);
    expect(io.out()).toBe('AAAA0001: retry scheduled now\n');
    const entry = await spool.read('AAAA0001');
    expect(entry?.meta.nextAttemptAt).toBe(new Date(clock.now()).toISOString());
    expect(entry?.meta.attempts).toBe(3); // nothing else changes
    expect((await run(['retry', 'NOPE0000'])).code).toBe(1);
  });

  it('retry --all makes every message due now', async () => {
    await spool.update(meta('AAAA0002', { nextAttemptAt: new Date(T0 + 3_600_000).toISOString() }));
    const { code, io } = await run(['retry'], { all: true });
    expect(code).toBe(0);
    expect(io.out()).toBe('2 message(s) scheduled for retry now\n');
    const now = new Date(clock.now()).toISOString();
    expect((await spool.list()).map((e) => e.meta.nextAttemptAt)).toEqual([now, now]);
  });

  it('delete removes the entry (both files) and exits 1 the second time', async () => {
    const { code, io } = await run(['delete', 'AAAA0001']);
    expect(code).toBe(0);
    expect(io.out()).toBe('AAAA0001: deleted\n');
    expect(await spool.read('AAAA0001')).toBeUndefined();
    expect((await readdir(join(dir, 'spool', 'queue'))).sort()).toEqual(['AAAA0002.eml', 'AAAA0002.json']);
    expect((await run(['delete', 'AAAA0001'])).code).toBe(1);
  });

  it('falls back to the spool files when nothing listens on the admin API port', async () => {
    const port = await startRefusingPort();
    const path = join(dir, 'config-http.json');
    await writeFile(path, JSON.stringify({ delivery: { spoolDir: join(dir, 'spool'), fsync: false }, http: { host: '127.0.0.1', port } }));
    const { code, io } = await run(['list'], { json: true, config: path });
    expect(code).toBe(0);
    expect((JSON.parse(io.out()) as unknown[]).length).toBe(2);
    expect(io.err()).toMatch(/no relay answers on http:\/\/127\.0\.0\.1:\d+: working on the spool files/);
  });

  it('rejects bad usage with exit 2', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['show'])).code).toBe(2);
    expect((await run(['retry'])).code).toBe(2);
    expect((await run(['retry', 'AAAA0001'], { all: true })).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['list', 'extra'])).code).toBe(2);
  });
});

describe(SpoolAdmin.name, () => {
  let dir: string;
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('tells the running relay about retries and removals through its callbacks', async () => {
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-admin-'));
    const clock = new ManualClock(T0);
    const spool = new FsSpool({ dir, fsync: false, clock });
    await spool.recover();
    await spool.store({ header: Buffer.from('\r\n'), body: { kind: 'memory', chunks: [], length: 0 }, meta: meta('BBBB0001') });
    const retried: string[] = [];
    const removed: string[] = [];
    const admin = new SpoolAdmin({ spool, clock, onRetry: (q) => retried.push(q), onRemove: (q) => removed.push(q) });
    expect(await admin.retry('BBBB0001')).toMatchObject({ nextAttemptAt: new Date(T0).toISOString() });
    expect(await admin.retry('CCCC0001')).toBeUndefined();
    expect(await admin.remove('BBBB0001')).toBe(true);
    expect(await admin.remove('BBBB0001')).toBe(false);
    expect(retried).toEqual(['BBBB0001']);
    expect(removed).toEqual(['BBBB0001']);
  });
});

describe('queue (API mode against a running relay)', () => {
  let server: Server;
  let dir: string;
  const calls: string[] = [];
  afterEach(async () => {
    calls.length = 0;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await rm(dir, { recursive: true, force: true });
  });

  it('uses the admin API (method and path) and never touches the spool', async () => {
    server = createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET' && req.url === '/admin/queue') return res.end(JSON.stringify({ messages: [{ qid: 'APIQ0001', receivedAt: new Date(T0).toISOString(), sender: 's@x.test', pendingRecipients: ['r@y.test'], recipientCount: 1, attempts: 1, nextAttemptAt: new Date(T0).toISOString(), sizeBytes: 1 }] }));
      if (req.url === '/admin/queue/MISSING1') {
        res.statusCode = 404;
        return res.end('{"error":"no such message"}');
      }
      if (req.method === 'POST' && req.url === '/admin/queue/retry-all') return res.end('{"retried":4}');
      return res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-queue-api-'));
    const configPath = join(dir, 'config.json');
    // the spool directory does not exist: any direct access would fail
    await writeFile(configPath, JSON.stringify({ delivery: { spoolDir: join(dir, 'no-spool') }, http: { host: '127.0.0.1', port } }));
    const clock = new ManualClock(T0 + 65_000);
    const run = async (args: string[], all = false) => {
      const io = captureIo();
      const code = await queueCommand({ config: configPath, args, json: false, all }, io, { clock });
      return { code, io };
    };

    const listed = await run(['list']);
    expect(listed.code).toBe(0);
    expect(listed.io.out()).toMatch(/APIQ0001\s+1m05s\s+s@x\.test\s+r@y\.test\s+1\s+now/);
    expect((await run(['retry', 'APIQ0001'])).code).toBe(0);
    expect((await run(['retry'], true)).io.out()).toBe('4 message(s) scheduled for retry now\n');
    expect((await run(['delete', 'APIQ0001'])).code).toBe(0);
    expect((await run(['show', 'APIQ0001'])).code).toBe(0);
    expect((await run(['delete', 'MISSING1'])).code).toBe(1);
    expect(calls).toEqual([
      'GET /admin/queue',
      'POST /admin/queue/APIQ0001/retry',
      'POST /admin/queue/retry-all',
      'DELETE /admin/queue/APIQ0001',
      'GET /admin/queue/APIQ0001',
      'DELETE /admin/queue/MISSING1',
    ]);
  });
});

describe(renderQueue.name, () => {
  it('shows a message due in the future relative to now and cuts long errors', () => {
    const out = renderQueue(
      [{ qid: 'Q1', receivedAt: new Date(T0).toISOString(), sender: 'a@b.test', pendingRecipients: [], recipientCount: 1, attempts: 0, nextAttemptAt: new Date(T0 + 7_500_000).toISOString(), lastError: 'x'.repeat(100), sizeBytes: 1 }],
      T0,
    );
    expect(out).toMatch(/Q1\s+0s\s+a@b\.test\s+-\s+0\s+in 2h05m\s+x{59}…/);
  });
});
