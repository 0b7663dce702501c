import type { SpoolMeta } from '../../../src/core/types.js';
import type { Actor, FailedRow, QueueRow } from '../../../src/ops/spool-admin.js';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import { connect, type Socket } from 'node:net';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../../src/core/clock.js';
import { parseConfig } from '../../../src/config/load.js';
import { createHttpServer, type AdminHandlers, type HttpServer, type HttpServerDeps } from '../../../src/ops/http.js';
import { createMetrics } from '../../../src/ops/metrics.js';
import { buildReadiness, createReadinessCheck } from '../../../src/ops/readiness.js';

const servers: HttpServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function memoryLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

interface Started {
  base: string;
  lines: string[];
  tokenFile: string;
  /** fetch with the admin token from the token file */
  admin(path: string, init?: RequestInit): Promise<Response>;
}

async function start(overrides: Partial<HttpServerDeps> = {}): Promise<Started> {
  const { logger, lines } = memoryLogger();
  const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-http-'));
  dirs.push(dir);
  const tokenFile = join(dir, 'admin.token');
  const server = createHttpServer({
    host: '127.0.0.1',
    port: 0,
    logger,
    metrics: createMetrics(),
    readiness: async () => buildReadiness({ listening: true, spoolWritable: true, upstreams: [{ name: 'primary', up: true }] }),
    version: '9.9.9-test',
    adminTokenFile: tokenFile,
    ...overrides,
  });
  servers.push(server);
  const address = await server.listen();
  const base = `http://127.0.0.1:${address.port}`;
  return {
    base,
    lines,
    tokenFile,
    async admin(path, init = {}) {
      const token = (await readFile(tokenFile, 'utf8')).trim();
      return fetch(`${base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    },
  };
}

const ROW: QueueRow = {
  qid: '0mjv5q1c0k3f9x2a',
  receivedAt: '2026-01-01T00:00:00.000Z',
  sender: 'a@legacy.test',
  originalSender: 'a@legacy.test',
  originalFrom: 'a@legacy.test',
  pendingRecipients: ['b@dest.test'],
  recipientCount: 1,
  attempts: 2,
  nextAttemptAt: '2026-01-01T00:01:00.000Z',
  lastError: undefined,
  sizeBytes: 100,
};
const META: SpoolMeta = {
  version: 1,
  qid: ROW.qid,
  envelope: { mailFrom: 'a@legacy.test', rcptTo: ['b@dest.test'] },
  client: { address: '127.0.0.1' },
  receivedAt: ROW.receivedAt,
  sizeBytes: 100,
  facts: { from: 'a@legacy.test', subject: undefined, messageId: undefined, attachments: 0, attachmentsBytes: 0 },
  recipients: [{ address: 'b@dest.test', status: 'pending' }],
  attempts: 2,
  nextAttemptAt: ROW.nextAttemptAt,
};

const FAILED: FailedRow = {
  qid: '0mjv5q1c0k3f9zzz',
  receivedAt: '2026-01-01T00:00:00.000Z',
  failedAt: '2026-01-01T01:00:00.000Z',
  sender: 'a@legacy.test',
  originalSender: 'a@legacy.test',
  originalFrom: 'a@legacy.test',
  reason: 'rejected by the upstream',
  recipients: [{ address: 'b@dest.test', response: '550 5.1.1 unknown user' }],
  recipientCount: 1,
  attempts: 1,
  sizeBytes: 100,
};

function recordingAdmin(): { admin: AdminHandlers; calls: string[]; actors: Actor[] } {
  const calls: string[] = [];
  const actors: Actor[] = [];
  const known = new Set(['0mjv5q1c0k3f9x2a']);
  const failed = new Set(['0mjv5q1c0k3f9zzz']);
  const by = (actor: Actor) => void actors.push(actor);
  return {
    calls,
    actors,
    admin: {
      async list() {
        calls.push('list');
        return [ROW];
      },
      async failedCount() {
        return 1;
      },
      async listFailed() {
        calls.push('listFailed');
        return [FAILED];
      },
      async show(qid) {
        calls.push(`show ${qid}`);
        return known.has(qid) ? { ...META, qid, state: 'queued' as const } : undefined;
      },
      async retry(qid, actor) {
        calls.push(`retry ${qid}`);
        by(actor);
        return known.has(qid);
      },
      async retryAll(actor) {
        calls.push('retryAll');
        by(actor);
        return 7;
      },
      async remove(qid, actor) {
        calls.push(`remove ${qid}`);
        by(actor);
        return known.has(qid);
      },
      async requeue(qid, actor) {
        calls.push(`requeue ${qid}`);
        by(actor);
        return failed.has(qid);
      },
      async requeueAll(actor) {
        calls.push('requeueAll');
        by(actor);
        return 3;
      },
      async purgeFailed(olderThanMs, actor) {
        calls.push(`purge ${olderThanMs}`);
        by(actor);
        return 2;
      },
    },
  };
}

describe(createHttpServer.name, () => {
  it('GET /healthz answers ok with the uptime and version', async () => {
    const clock = new ManualClock();
    const { base } = await start({ clock });
    clock.advance(90_500);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(await res.json()).toEqual({ status: 'ok', uptimeSeconds: 90, version: '9.9.9-test' });
  });

  it('GET /healthz reports the package version by default', async () => {
    const { base } = await start({ version: undefined });
    const body = (await (await fetch(`${base}/healthz`)).json()) as { version: string };
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('GET /readyz answers 200 with the checks when ready', async () => {
    const { base } = await start();
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ready: boolean; checks: { upstreams: { up: string[] } } };
    expect(body.ready).toBe(true);
    expect(body.checks.upstreams.up).toEqual(['primary']);
  });

  it('GET /readyz answers 503 when the spool is not writable', async () => {
    const readiness = createReadinessCheck({ isListening: () => true, probeSpoolWritable: async () => false, upstreams: () => [{ name: 'primary', up: true }] });
    const { base } = await start({ readiness });
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, checks: { spool: { ok: false }, listener: { ok: true } } });
  });

  it('GET /readyz answers 503 when every upstream is down', async () => {
    const readiness = createReadinessCheck({
      isListening: () => true,
      probeSpoolWritable: async () => true,
      upstreams: () => [
        { name: 'primary', up: false },
        { name: 'secondary', up: false },
      ],
    });
    const { base } = await start({ readiness });
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, checks: { upstreams: { ok: false, up: [], down: ['primary', 'secondary'] } } });
  });

  it('GET /metrics serves the Prometheus text with the values recorded', async () => {
    const metrics = createMetrics({ queue: () => ({ depth: 5, oldestAgeSeconds: 120 }), upstreams: () => [{ name: 'primary', up: false }] });
    metrics.received(2048);
    metrics.rejected('E_MESSAGE_TOO_BIG');
    metrics.outcome('sent', 'primary', 2, 0.3);
    metrics.outcome('deferred', 'primary', 1, 0);
    metrics.outcome('bounced', 'primary', 1, 0);
    metrics.tokenFetched('primary', 1_800_000_000_000);
    const { base } = await start({ metrics });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.registry.contentType);
    const text = await res.text();
    for (const line of [
      'smtp_sidecar_messages_received_total 1',
      'smtp_sidecar_received_bytes_total 2048',
      'smtp_sidecar_messages_rejected_total{reason="E_MESSAGE_TOO_BIG"} 1',
      'smtp_sidecar_recipients_delivered_total{upstream="primary"} 2',
      'smtp_sidecar_recipients_deferred_total{upstream="primary"} 1',
      'smtp_sidecar_recipients_failed_total{upstream="primary"} 1',
      'smtp_sidecar_delivery_latency_seconds_count{upstream="primary"} 1',
      'smtp_sidecar_token_fetches_total{upstream="primary"} 1',
      'smtp_sidecar_token_expiry_timestamp_seconds{upstream="primary"} 1800000000',
      'smtp_sidecar_queue_depth 5',
      'smtp_sidecar_queue_oldest_message_age_seconds 120',
      'smtp_sidecar_upstream_up{upstream="primary"} 0',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
  });

  it('GET /status serves the status object when given, 404 otherwise', async () => {
    const withStatus = await start({ status: () => ({ upstreams: [{ name: 'primary', up: true }] }) });
    expect(await (await fetch(`${withStatus.base}/status`)).json()).toEqual({ upstreams: [{ name: 'primary', up: true }] });
    const without = await start();
    expect((await fetch(`${without.base}/status`)).status).toBe(404);
  });

  it('answers 404 for unknown paths and 405 with Allow for a wrong method, as JSON', async () => {
    const { base } = await start();
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toHaveProperty('error');
    const wrong = await fetch(`${base}/healthz`, { method: 'POST', body: 'x' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
    expect(await wrong.json()).toHaveProperty('error');
  });

  it('routes every admin call to its handler', async () => {
    const { admin, calls, actors } = recordingAdmin();
    const { admin: call } = await start({ admin });
    const list = await call(`/admin/queue`);
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({ messages: [ROW], failedCount: 1 });

    const show = await call(`/admin/queue/0mjv5q1c0k3f9x2a`);
    expect(await show.json()).toEqual({ ...META, state: 'queued' });
    expect((await call(`/admin/queue/unknown1`)).status).toBe(404);

    const retry = await call(`/admin/queue/0mjv5q1c0k3f9x2a/retry`, { method: 'POST' });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ retried: '0mjv5q1c0k3f9x2a' });
    expect((await call(`/admin/queue/unknown1/retry`, { method: 'POST' })).status).toBe(404);

    const retryAll = await call(`/admin/queue/retry-all`, { method: 'POST' });
    expect(await retryAll.json()).toEqual({ retried: 7 });

    const removed = await call(`/admin/queue/0mjv5q1c0k3f9x2a`, { method: 'DELETE' });
    expect(removed.status).toBe(200);
    expect(await removed.json()).toEqual({ removed: '0mjv5q1c0k3f9x2a' });
    expect((await call(`/admin/queue/unknown1`, { method: 'DELETE' })).status).toBe(404);

    expect(await (await call(`/admin/failed`)).json()).toEqual({ messages: [FAILED] });
    const requeue = await call(`/admin/failed/0mjv5q1c0k3f9zzz/requeue`, { method: 'POST', headers: { 'x-smtp-sidecar-client': 'cli', 'x-smtp-sidecar-user': 'alice' } });
    expect(await requeue.json()).toEqual({ requeued: '0mjv5q1c0k3f9zzz' });
    expect((await call(`/admin/failed/unknown1/requeue`, { method: 'POST' })).status).toBe(404);
    expect(await (await call(`/admin/failed/requeue-all`, { method: 'POST' })).json()).toEqual({ requeued: 3 });
    expect(await (await call(`/admin/failed/purge?olderThanSeconds=604800`, { method: 'POST' })).json()).toEqual({ purged: 2 });
    expect((await call(`/admin/failed/purge?olderThanSeconds=7d`, { method: 'POST' })).status).toBe(400);

    expect(calls).toEqual([
      'list',
      'show 0mjv5q1c0k3f9x2a',
      'show unknown1',
      'retry 0mjv5q1c0k3f9x2a',
      'retry unknown1',
      'retryAll',
      'remove 0mjv5q1c0k3f9x2a',
      'remove unknown1',
      'listFailed',
      'requeue 0mjv5q1c0k3f9zzz',
      'requeue unknown1',
      'requeueAll',
      'purge 604800000',
    ]);
    // who asked, for the audit line: the CLI names itself (and its user); anything else is "api"
    expect(actors[0]).toMatchObject({ by: 'api', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown });
    expect(actors.find((a) => a.by === 'cli')).toMatchObject({ by: 'cli', user: 'alice', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown });
  });

  it('refuses wrong methods, path-like queue ids and browser requests on the admin API', async () => {
    const { admin, calls } = recordingAdmin();
    const { admin: call } = await start({ admin });
    expect((await call(`/admin/queue`, { method: 'DELETE' })).status).toBe(405);
    expect((await call(`/admin/queue/retry-all`)).status).toBe(405);
    expect((await call(`/admin/queue/..%2F..%2Fetc`)).status).toBe(400);
    const browser = await call(`/admin/queue/retry-all`, { method: 'POST', headers: { origin: 'http://evil.example' } });
    expect(browser.status).toBe(403);
    expect(calls).toEqual([]);
  });

  it('publishes a fresh admin token at every listen, mode 0600 whatever the umask', async () => {
    const previous = process.umask(0);
    try {
      const { admin } = recordingAdmin();
      const first = await start({ admin });
      const token = await readFile(first.tokenFile, 'utf8');
      expect(token.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect((await stat(first.tokenFile)).mode & 0o777).toBe(0o600);
      const again = await start({ admin, adminTokenFile: first.tokenFile });
      expect((await readFile(first.tokenFile, 'utf8')).trim()).not.toBe(token.trim());
      // the first server's token is gone: its old value no longer opens the second one
      expect((await fetch(`${again.base}/admin/queue`, { headers: { authorization: `Bearer ${token.trim()}` } })).status).toBe(401);
    } finally {
      process.umask(previous);
    }
  });

  it('answers 401 (with WWW-Authenticate) to every admin route without the token, and calls no handler', async () => {
    const { admin, calls } = recordingAdmin();
    const { base, lines } = await start({ admin });
    for (const [method, path] of [
      ['GET', '/admin/queue'],
      ['GET', '/admin/queue/0mjv5q1c0k3f9x2a'],
      ['POST', '/admin/queue/0mjv5q1c0k3f9x2a/retry'],
      ['POST', '/admin/queue/retry-all'],
      ['DELETE', '/admin/queue/0mjv5q1c0k3f9x2a'],
    ] as const) {
      for (const authorization of [undefined, 'Bearer not-the-token']) {
        const res = await fetch(`${base}${path}`, { method, headers: authorization === undefined ? {} : { authorization } });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('Bearer');
        expect(((await res.json()) as { error: string }).error).toContain('admin.token');
      }
    }
    expect(calls).toEqual([]);
    expect(lines.filter((l) => l.includes('admin.refused'))).toHaveLength(10);
  });

  it('refuses a request with no Host header or a look-alike Host, token or not (raw sockets)', async () => {
    const { admin, calls } = recordingAdmin();
    const { base, tokenFile } = await start({ admin });
    const token = (await readFile(tokenFile, 'utf8')).trim();
    const port = Number(new URL(base).port);
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.end(request));
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
    const auth = `Authorization: Bearer ${token}\r\n`;
    const noHost = await raw(`GET /admin/queue HTTP/1.0\r\n${auth}\r\n`);
    expect(noHost).toMatch(/^HTTP\/1\.[01] 403 /);
    const evil = await raw(`GET /admin/queue HTTP/1.1\r\nHost: [::1].evil.example\r\n${auth}Connection: close\r\n\r\n`);
    expect(evil).toMatch(/^HTTP\/1\.1 403 /);
    const good = await raw(`GET /admin/queue HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${auth}Connection: close\r\n\r\n`);
    expect(good).toMatch(/^HTTP\/1\.1 200 /);
    expect(calls).toEqual(['list']);
  });

  it('hands the handlers who asked, for their audit line: peer address:port and user agent (the server logs no secret)', async () => {
    const { admin, actors } = recordingAdmin();
    const { admin: call, lines } = await start({ admin });
    expect((await call('/admin/queue/0mjv5q1c0k3f9x2a', { method: 'DELETE', headers: { 'user-agent': 'audit-test/1' } })).status).toBe(200);
    expect((await call('/admin/queue/0mjv5q1c0k3f9x2a/retry', { method: 'POST' })).status).toBe(200);
    expect((await call('/admin/queue/unknown1', { method: 'DELETE' })).status).toBe(404);
    expect(actors[0]).toEqual({ by: 'api', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown, userAgent: 'audit-test/1' });
    expect(actors).toHaveLength(3);
    expect(lines.join('')).not.toMatch(/Bearer/);
  });

  it('has no admin API when no handlers are given', async () => {
    const { base } = await start();
    expect((await fetch(`${base}/admin/queue`)).status).toBe(404);
  });

  it('answers 500 without details when a handler throws, and logs the error', async () => {
    const { admin } = recordingAdmin();
    const { admin: call, lines } = await start({
      admin: {
        ...admin,
        list: async () => {
          throw new Error('disk on fire');
        },
      },
    });
    const res = await call('/admin/queue');
    expect(res.status).toBe(500);
    expect(JSON.stringify(await res.json())).not.toContain('disk on fire');
    expect(lines.join('')).toContain('disk on fire');
  });

  it('never reads or logs request bodies', async () => {
    const { admin } = recordingAdmin();
    const { base, lines, admin: call } = await start({ admin });
    const res = await call('/admin/queue/retry-all', { method: 'POST', body: 'password=BODY-SECRET-1234' });
    expect(res.status).toBe(200);
    await fetch(`${base}/nope`, { method: 'POST', body: 'BODY-SECRET-1234' });
    expect(lines.join('')).not.toContain('BODY-SECRET-1234');
  });

  it('serves no secret from a config anywhere (there is no config endpoint)', async () => {
    const secrets = { pass: 'PASS-SECRET-5678', clientSecret: 'CLIENT-SECRET-9012' };
    const config = parseConfig({
      upstreams: [
        { name: 'primary', host: 'smtp.example.invalid', auth: { type: 'oauth2', user: 'relay@example.com', tenantId: 't', clientId: 'c', clientSecret: secrets.clientSecret } },
        { name: 'backup', host: 'smtp2.example.invalid', auth: { type: 'login', user: 'relay', pass: secrets.pass } },
      ],
    });
    const names = config.upstreams.map((u) => u.name);
    const metrics = createMetrics({ upstreams: () => names.map((name) => ({ name, up: true })) });
    const { admin } = recordingAdmin();
    const { base, lines, admin: call } = await start({
      metrics,
      admin,
      readiness: createReadinessCheck({ isListening: () => true, probeSpoolWritable: async () => true, upstreams: () => names.map((name) => ({ name, up: true })) }),
      status: () => ({ upstreams: config.upstreams.map((u) => ({ name: u.name, host: u.protocol === 'smtp' ? u.host : u.graph.endpoint, auth: u.auth.type })) }),
    });
    const bodies: string[] = [];
    for (const path of ['/healthz', '/readyz', '/metrics', '/status', '/admin/queue', '/config', '/admin/config', '/debug', '/admin/queue/0mjv5q1c0k3f9x2a']) {
      const res = path.startsWith('/admin') ? await call(path) : await fetch(`${base}${path}`);
      if (path.includes('config') || path === '/debug') expect(res.status, path).toBe(404);
      bodies.push(await res.text());
    }
    const served = bodies.join('\n') + lines.join('');
    expect(served).toContain('primary');
    expect(served).not.toContain(secrets.pass);
    expect(served).not.toContain(secrets.clientSecret);
  });

  it('caps connections: one past http.maxConnections is closed at once, logged once per interval with a count', async () => {
    const { base, lines } = await start({ limits: { maxConnections: 3 }, refusalLogIntervalMs: 300 });
    const port = Number(new URL(base).port);
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.on('error', reject);
      });
    const closedWithoutData = (socket: Socket): Promise<string> =>
      new Promise((resolve) => {
        let data = '';
        socket.on('data', (d: Buffer) => (data += d.toString()));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(data));
      });
    const held = [await open(), await open(), await open()];
    try {
      // wait until the server has counted all three (a connect resolves before the server's accept)
      await expect.poll(async () => (await fetchStatusOrError(base)) === 'refused', { timeout: 5_000 }).toBe(true);
      const refused = await Promise.all(Array.from({ length: 5 }, async () => closedWithoutData(await open())));
      expect(refused).toEqual(['', '', '', '', '']);
      // the probe that saw the cap, then the five: the first line at once, the rest summed per interval
      await expect.poll(() => refusalCounts(lines).reduce((a, b) => a + b, 0), { timeout: 5_000 }).toBe(6);
      expect(refusalCounts(lines)[0]).toBe(1);
      expect(refusalCounts(lines).length).toBeLessThanOrEqual(3);
    } finally {
      for (const s of held) s.destroy();
    }
    // capacity comes back once the held connections are gone
    await expect.poll(async () => (await fetchStatusOrError(base)) === 200, { timeout: 5_000 }).toBe(true);
  });

  it('closes a connection that sends no request, or only part of its head, after http.headersTimeoutSeconds with 408', async () => {
    const { base, lines } = await start({ limits: { headersTimeoutMs: 500 }, refusalLogIntervalMs: 60_000 });
    const port = Number(new URL(base).port);
    const until = (partial: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(partial));
        let data = '';
        socket.on('data', (d: Buffer) => (data += d.toString()));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
      });
    const [silent, slow] = await Promise.all([until(''), until('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n')]);
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(silent).toMatch(/^HTTP\/1\.1 408 /);
    const refusals = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.msg === 'http.refused');
    expect(refusals[0]).toMatchObject({ reason: 'timeout', count: 1 });
  });

  it('listens on ::1 too, and close() ends keep-alive connections', async () => {
    const { logger } = memoryLogger();
    const server = createHttpServer({
      host: '::1',
      port: 0,
      logger,
      metrics: createMetrics(),
      readiness: async () => buildReadiness({ listening: true, spoolWritable: true, upstreams: [] }),
    });
    servers.push(server);
    let address;
    try {
      address = await server.listen();
    } catch (err) {
      // a host without IPv6 loopback: nothing to check here
      expect((err as NodeJS.ErrnoException).code).toMatch(/EADDRNOTAVAIL|EAFNOSUPPORT/);
      return;
    }
    const res = await fetch(`http://[::1]:${address.port}/healthz`);
    expect(res.status).toBe(200);
    await res.text();
    await server.close();
    await expect(fetch(`http://[::1]:${address.port}/healthz`)).rejects.toThrow();
  });
});

/** 200 when /healthz answers, 'refused' when the connection is closed without an answer (raw socket, no keep-alive) */
function fetchStatusOrError(base: string): Promise<number | 'refused'> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(data)?.[1];
      resolve(status === undefined ? 'refused' : Number(status));
    });
  });
}

function refusalCounts(lines: readonly string[]): number[] {
  return lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.msg === 'http.refused' && r.reason === 'max-connections')
    .map((r) => r.count as number);
}
