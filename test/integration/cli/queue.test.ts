import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAge, queueCommand } from '../../../src/cli/queue.js';
import { describeSender, renderQueue } from '../../../src/cli/queue-render.js';
import { SpoolAdmin } from '../../../src/ops/spool-admin.js';
import { ManualClock } from '../../../src/core/clock.js';
import type { SpoolMeta } from '../../../src/core/types.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { startRefusingPort } from '../../helpers/fake-upstream.js';
import { captureIo } from './support.js';
import { storeMessage } from '../../../src/core/store-message.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function meta(qid: string, overrides: Partial<SpoolMeta> = {}): SpoolMeta {
  return {
    version: 1,
    qid,
    envelope: { mailFrom: 'app@corp.test', rcptTo: ['a@dest.test', 'b@dest.test'] },
    client: { address: '127.0.0.1' },
    receivedAt: new Date(T0).toISOString(),
    originalMailFrom: 'billing@legacy.test',
    sizeBytes: 42,
    facts: { from: 'invoices@legacy.test', subject: 'hello', messageId: '<m@corp.test>', attachments: 0, attachmentsBytes: 0 },
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
    const body = (text: string) => Buffer.from(text);
    await storeMessage(spool, { header: Buffer.from('Subject: one\r\n\r\n'), body: body('first body\r\n'), meta: meta('AAAA0001') });
    await storeMessage(spool, {
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

  const run = (args: string[], extra: { json?: boolean; all?: boolean; config?: string; failed?: boolean; olderThan?: string } = {}) => {
    const io = captureIo();
    return queueCommand(
      { config: extra.config ?? configPath, args, json: extra.json ?? false, all: extra.all ?? false, failed: extra.failed ?? false, olderThan: extra.olderThan },
      io,
      { clock },
    ).then((code) => ({ code, io }));
  };
  const audit = (io: { err(): string }) =>
    io
      .err()
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r['msg'] === 'admin');
  /** moves a stored message to failed/ as the relay does, `agoMs` before the clock's now */
  const failOne = async (qid: string, agoMs: number) =>
    spool.fail(qid, { reason: 'rejected by the upstream', recipients: [{ address: 'a@dest.test', response: '550 5.1.1 <a@dest.test>: unknown user' }], failedAt: new Date(clock.now() - agoMs).toISOString() });

  it('list shows each message as mailq does: id, size, age, tries, next try, sender (original -> rewritten, header From), last answer, recipients', async () => {
    const { code, io } = await run(['list']);
    expect(code).toBe(0);
    const lines = io.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^QUEUE ID\s+SIZE\s+AGE\s+TRIES\s+NEXT TRY\s+SENDER \/ RECIPIENTS$/);
    expect(lines[1]).toMatch(/^AAAA0001\s+1 KB\s+3m12s\s+3\s+in 26m48s\s+billing@legacy\.test -> app@corp\.test \(From: invoices@legacy\.test\)$/);
    const column = lines[1]!.indexOf('billing@');
    expect(lines[2]).toBe(`${' '.repeat(column)}(451 4.4.1 upstream primary: connection refused)`);
    expect(lines[3]).toBe(`${' '.repeat(column)}a@dest.test`);
    expect(lines[4]).toBe(`${' '.repeat(column)}b@dest.test`);
    expect(lines[5]).toMatch(/^AAAA0002\s+1 KB\s+3m11s\s+0\s+now\s+billing@legacy\.test -> <> \(From: invoices@legacy\.test\)$/);
    expect(lines[6]).toBe(`${' '.repeat(column)}c@dest.test`);
    expect(lines.at(-1)).toBe('-- 2 queued messages, 3 recipients pending, 1 KB');
    expect(io.out()).not.toContain('first body');
  });

  it('list names the failed messages, and never says "queue is empty" while failed/ holds some', async () => {
    await failOne('AAAA0001', 60_000);
    expect((await run(['list'])).io.out()).toMatch(/-- 1 queued message, 1 recipient pending, 1 KB; 1 failed message in failed\/: smtp-sidecar queue list --failed\n$/);
    await failOne('AAAA0002', 60_000);
    expect((await run(['list'])).io.out()).toBe('queue is empty; 2 failed messages in failed/: smtp-sidecar queue list --failed\n');
    await spool.removeFailed('AAAA0001');
    await spool.removeFailed('AAAA0002');
    expect((await run(['list'])).io.out()).toBe('queue is empty\n');
  });

  it('list --failed shows when and why each failed, with every recipient\'s answer (and --json)', async () => {
    await failOne('AAAA0001', 2 * 3_600_000 + 5 * 60_000);
    const { code, io } = await run(['list'], { failed: true });
    expect(code).toBe(0);
    const lines = io.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^QUEUE ID\s+SIZE\s+FAILED\s+TRIES\s+SENDER \/ RECIPIENTS$/);
    expect(lines[1]).toMatch(/^AAAA0001\s+1 KB\s+2h05m ago\s+3\s+billing@legacy\.test -> app@corp\.test/);
    expect(lines[2]!.trim()).toBe('(rejected by the upstream)');
    expect(lines[3]!.trim()).toBe('a@dest.test: 550 5.1.1 <a@dest.test>: unknown user');
    expect(lines.at(-1)).toMatch(/^-- 1 failed message: smtp-sidecar queue requeue/);
    const json = JSON.parse((await run(['list'], { failed: true, json: true })).io.out()) as { qid: string; reason: string; recipients: unknown[]; originalSender: string }[];
    expect(json).toEqual([
      expect.objectContaining({ qid: 'AAAA0001', reason: 'rejected by the upstream', originalSender: 'billing@legacy.test', recipients: [{ address: 'a@dest.test', response: '550 5.1.1 <a@dest.test>: unknown user' }] }),
    ]);
    expect((await run(['list'], { failed: true, json: false, all: false, config: configPath })).code).toBe(0);
    await spool.removeFailed('AAAA0001');
    expect((await run(['list'], { failed: true })).io.out()).toBe('no failed messages\n');
  });

  it('show prints a failed message\'s metadata with its state and the failure', async () => {
    await failOne('AAAA0001', 0);
    const shown = JSON.parse((await run(['show', 'AAAA0001'])).io.out()) as Record<string, unknown>;
    expect(shown).toMatchObject({ qid: 'AAAA0001', state: 'failed', failure: { reason: 'rejected by the upstream' } });
  });

  it('requeue moves a failed message back, due now, failed recipients pending again, lifetime restarted; audited', async () => {
    await failOne('AAAA0001', 60_000);
    const { code, io } = await run(['requeue', 'AAAA0001']);
    expect(code).toBe(0);
    expect(io.out()).toBe('AAAA0001: requeued, due now\n');
    const entry = await spool.read('AAAA0001');
    const now = new Date(clock.now()).toISOString();
    expect(entry?.meta).toMatchObject({ attempts: 0, nextAttemptAt: now, receivedAt: now, firstReceivedAt: new Date(T0).toISOString() });
    expect(entry?.meta.recipients.map((r) => r.status)).toEqual(['pending', 'pending']);
    expect(await spool.failedQids()).toEqual([]);
    expect((await readdir(join(dir, 'spool', 'failed'))).sort()).toEqual([]);
    expect(audit(io)).toEqual([expect.objectContaining({ action: 'requeue', qid: 'AAAA0001', by: 'cli', result: 'queued', recipients: ['a@dest.test', 'b@dest.test'] })]);
    const again = await run(['requeue', 'AAAA0001']);
    expect(again.code).toBe(1);
    expect(again.io.err()).toMatch(/no failed message AAAA0001/);
  });

  it('requeue --all requeues every failed message', async () => {
    await failOne('AAAA0001', 0);
    await failOne('AAAA0002', 0);
    const { code, io } = await run(['requeue'], { all: true });
    expect(code).toBe(0);
    expect(io.out()).toBe('2 failed message(s) requeued, due now\n');
    expect((await spool.queuedQids()).sort()).toEqual(['AAAA0001', 'AAAA0002']);
  });

  it('purge --failed --older-than deletes only failed mail that failed that long ago; purge --failed deletes all', async () => {
    await failOne('AAAA0001', 8 * 86_400_000);
    await failOne('AAAA0002', 3_600_000);
    const old = await run(['purge'], { failed: true, olderThan: '7d' });
    expect(old.code).toBe(0);
    expect(old.io.out()).toBe('1 failed message(s) deleted\n');
    expect(await spool.failedQids()).toEqual(['AAAA0002']);
    expect(audit(old.io)).toEqual([expect.objectContaining({ action: 'purge', qid: 'AAAA0001', by: 'cli', result: 'deleted' })]);
    expect((await run(['purge'], { failed: true })).io.out()).toBe('1 failed message(s) deleted\n');
    expect(await spool.failedQids()).toEqual([]);
    expect((await readdir(join(dir, 'spool', 'failed')))).toEqual([]);
  });

  it('delete removes a failed message too, and writes an audit line for every action, found or not', async () => {
    await failOne('AAAA0001', 0);
    const del = await run(['delete', 'AAAA0001']);
    expect(del.code).toBe(0);
    expect(await spool.failedQids()).toEqual([]);
    expect(audit(del.io)).toEqual([expect.objectContaining({ action: 'delete', qid: 'AAAA0001', state: 'failed', result: 'deleted', by: 'cli' })]);
    const missing = await run(['retry', 'NOPE0000']);
    expect(audit(missing.io)).toEqual([expect.objectContaining({ action: 'retry', qid: 'NOPE0000', result: 'not-found' })]);
  });

  it('sees the mail of a spool still in the previous layout (.eml + .json, not started since the upgrade): it converts it under the lock', async () => {
    await writeFile(join(dir, 'spool', 'queue', 'OLDL0001.eml'), 'Subject: old\r\n\r\nold body\r\n');
    await writeFile(join(dir, 'spool', 'queue', 'OLDL0001.json'), JSON.stringify(meta('OLDL0001', { receivedAt: new Date(T0 + 2000).toISOString() })));
    const { code, io } = await run(['list'], { json: true });
    expect(code).toBe(0);
    expect((JSON.parse(io.out()) as { qid: string }[]).map((r) => r.qid)).toEqual(['AAAA0001', 'AAAA0002', 'OLDL0001']);
    expect((await readdir(join(dir, 'spool', 'queue'))).sort()).toEqual(['AAAA0001.msg', 'AAAA0002.msg', 'OLDL0001.msg']);
    expect(io.err()).toContain('spool.converted');
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
    expect(JSON.parse(shown.io.out())).toEqual({ ...meta('AAAA0001'), state: 'queued' });
    expect((await run(['show', 'NOPE0000'])).code).toBe(1);
    const traversal = await run(['show', '../../etc/passwd']);
    expect(traversal.code).toBe(1);
    expect(traversal.io.err()).toMatch(/no queued or failed message/);
  });

  it('retry sets nextAttemptAt to now on disk', async () => {
    const { code, io } = await run(['retry', 'AAAA0001']);
    expect(code).toBe(0);
    expect(io.out()).toBe('AAAA0001: retry scheduled now\n');
    expect(audit(io)).toEqual([expect.objectContaining({ action: 'retry', qid: 'AAAA0001', recipients: ['a@dest.test', 'b@dest.test'], by: 'cli', result: 'scheduled' })]);
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

  it('delete removes the entry (its message file) and exits 1 the second time', async () => {
    const { code, io } = await run(['delete', 'AAAA0001']);
    expect(code).toBe(0);
    expect(io.out()).toBe('AAAA0001: deleted\n');
    expect(await spool.read('AAAA0001')).toBeUndefined();
    expect((await readdir(join(dir, 'spool', 'queue'))).sort()).toEqual(['AAAA0002.msg']);
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
    expect((await run(['requeue'])).code).toBe(2);
    expect((await run(['requeue', 'AAAA0001'], { all: true })).code).toBe(2);
    expect((await run(['purge'])).io.err()).toMatch(/purge needs --failed/);
    expect((await run(['purge'], { failed: true, olderThan: 'a week' })).code).toBe(2);
    expect((await run(['retry', 'AAAA0001'], { failed: true })).code).toBe(2);
    expect((await run(['list'], { olderThan: '7d' })).code).toBe(2);
  });

  it('page prints the status page link with the running relay\'s token in the fragment, or says why not', async () => {
    const noHttp = await run(['page']);
    expect(noHttp.code).toBe(1);
    expect(noHttp.io.err()).toMatch(/http\.enabled is false/);
    const path = join(dir, 'config-page.json');
    await writeFile(path, JSON.stringify({ delivery: { spoolDir: join(dir, 'spool'), fsync: false }, http: { host: '127.0.0.1', port: 8099 } }));
    const noToken = await run(['page'], { config: path });
    expect(noToken.code).toBe(1);
    expect(noToken.io.err()).toMatch(/admin\.token does not exist: is the relay running/);
    await writeFile(join(dir, 'spool', 'admin.token'), 'abcDEF123_-\n', { mode: 0o600 });
    const link = await run(['page'], { config: path });
    expect(link.code).toBe(0);
    expect(link.io.out()).toBe('http://127.0.0.1:8099/#token=abcDEF123_-\n');
  });

  it('parses ages for --older-than', () => {
    expect(parseAge('7d')).toBe(7 * 86_400_000);
    expect(parseAge('12h')).toBe(12 * 3_600_000);
    expect(parseAge('30m')).toBe(1_800_000);
    expect(parseAge('90s')).toBe(90_000);
    expect(parseAge('7')).toBeUndefined();
    expect(parseAge('-1d')).toBeUndefined();
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
    await storeMessage(spool, { header: Buffer.from('\r\n'), body: [], meta: meta('BBBB0001') });
    const retried: string[] = [];
    const removed: string[] = [];
    const admin = new SpoolAdmin({ spool, clock, onRetry: (q) => retried.push(q), onRemove: (q) => removed.push(q) });
    const actor = { by: 'api' as const };
    expect(await admin.retry('BBBB0001', actor)).toMatchObject({ nextAttemptAt: new Date(T0).toISOString() });
    expect(await admin.retry('CCCC0001', actor)).toBeUndefined();
    expect(await admin.remove('BBBB0001', actor)).toBe(true);
    expect(await admin.remove('BBBB0001', actor)).toBe(false);
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
      if (req.method === 'POST' && req.url === '/admin/failed/requeue-all') return res.end('{"requeued":2}');
      if (req.method === 'POST' && req.url?.startsWith('/admin/failed/purge')) return res.end('{"purged":5}');
      if (req.method === 'GET' && req.url === '/admin/failed') return res.end('{"messages":[]}');
      if (req.headers['x-smtp-sidecar-client'] !== 'cli') res.statusCode = 400; // the CLI names itself for the audit line
      return res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-queue-api-'));
    const configPath = join(dir, 'config.json');
    // the spool directory does not exist: any direct access would fail
    await writeFile(configPath, JSON.stringify({ delivery: { spoolDir: join(dir, 'no-spool') }, http: { host: '127.0.0.1', port } }));
    const clock = new ManualClock(T0 + 65_000);
    const run = async (args: string[], all = false, more: { failed?: boolean; olderThan?: string } = {}) => {
      const io = captureIo();
      const code = await queueCommand({ config: configPath, args, json: false, all, ...more }, io, { clock });
      return { code, io };
    };

    const listed = await run(['list']);
    expect(listed.code).toBe(0);
    expect(listed.io.out()).toMatch(/APIQ0001\s+1 KB\s+1m05s\s+1\s+now\s+s@x\.test\n\s+r@y\.test\n/);
    expect((await run(['retry', 'APIQ0001'])).code).toBe(0);
    expect((await run(['retry'], true)).io.out()).toBe('4 message(s) scheduled for retry now\n');
    expect((await run(['delete', 'APIQ0001'])).code).toBe(0);
    expect((await run(['show', 'APIQ0001'])).code).toBe(0);
    expect((await run(['delete', 'MISSING1'])).code).toBe(1);
    expect((await run(['list'], false, { failed: true })).io.out()).toBe('no failed messages\n');
    expect((await run(['requeue', 'APIQ0001'])).code).toBe(0);
    expect((await run(['requeue'], true)).io.out()).toBe('2 failed message(s) requeued, due now\n');
    expect((await run(['purge'], false, { failed: true, olderThan: '2h' })).io.out()).toBe('5 failed message(s) deleted\n');
    expect(calls).toEqual([
      'GET /admin/queue',
      'POST /admin/queue/APIQ0001/retry',
      'POST /admin/queue/retry-all',
      'DELETE /admin/queue/APIQ0001',
      'GET /admin/queue/APIQ0001',
      'DELETE /admin/queue/MISSING1',
      'GET /admin/failed',
      'POST /admin/failed/APIQ0001/requeue',
      'POST /admin/failed/requeue-all',
      'POST /admin/failed/purge?olderThanSeconds=7200',
    ]);
  });
});

describe(renderQueue.name, () => {
  it('shows a message due in the future relative to now and cuts long errors', () => {
    const out = renderQueue(
      [{ qid: 'Q1', receivedAt: new Date(T0).toISOString(), sender: 'a@b.test', originalSender: 'a@b.test', originalFrom: undefined, pendingRecipients: [], recipientCount: 1, attempts: 0, nextAttemptAt: new Date(T0 + 7_500_000).toISOString(), lastError: 'x'.repeat(300), sizeBytes: 1 }],
      0,
      T0,
    );
    expect(out).toMatch(/Q1\s+1 KB\s+0s\s+0\s+in 2h05m\s+a@b\.test\n\s+\(x{199}…\)\n/);
  });

  it('shows the sender as given, and the rewritten one and the header From only when they differ', () => {
    expect(describeSender({ sender: 'a@b.test', originalSender: 'a@b.test', originalFrom: 'A@B.test' })).toBe('a@b.test');
    expect(describeSender({ sender: 'noreply@corp.test', originalSender: 'app@legacy.test', originalFrom: 'app@legacy.test' })).toBe('app@legacy.test -> noreply@corp.test');
    expect(describeSender({ sender: 'a@b.test', originalSender: undefined, originalFrom: undefined })).toBe('a@b.test');
    expect(describeSender({ sender: '', originalSender: '', originalFrom: 'x@y.test' })).toBe('<> (From: x@y.test)');
  });
});
