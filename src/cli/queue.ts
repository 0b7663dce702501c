/**
 * `smtp-sidecar queue list | show QID | retry QID | retry --all | delete QID [--json] [--config F]`
 *
 * Does: ask the running relay's admin HTTP API (http.host:http.port, short timeout) first; when
 *   nothing listens there (ECONNREFUSED) or the API is disabled, work on the spool files directly
 *   through SpoolAdmin/FsSpool (atomic renames only). Prints a table (or JSON) for list, the
 *   metadata JSON for show, one line for retry/delete.
 * Never: edit the spool files directly while a relay answers on its API (a refused connection
 *   is the only fallback: a timeout or an error answer is reported, not worked around); print
 *   message bodies; run FsSpool.recover() (it would clean tmp/ under a live relay); work on
 *   the spool files without holding the spool's lock (spool/spool-lock.ts): while a relay holds
 *   it, a direct command refuses, naming the relay's PID.
 * Admin API calls carry the running relay's per-process token (`Authorization: Bearer`), read
 *   from `<delivery.spoolDir>/admin.token` (mode 0600: only the relay's user can use the API).
 * Assumes: admin API contract (src/ops/http.ts): GET /admin/queue → {messages: QueueRow[]},
 *   GET /admin/queue/:qid → SpoolMeta, POST /admin/queue/:qid/retry, POST /admin/queue/retry-all,
 *   DELETE /admin/queue/:qid; 404 for an unknown qid.
 * Exit codes: 0 ok, 1 qid not found / API or spool error, 2 usage or invalid config.
 */
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { SpoolMeta } from '../core/types.js';
import { FsSpool } from '../spool/fs-spool.js';
import { acquireSpoolLock, SpoolLockedError } from '../spool/spool-lock.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { loadConfigOrReport } from './load-config.js';
import { adminTokenPath, readAdminToken } from '../ops/admin-auth.js';
import { SpoolAdmin, type QueueRow } from '../ops/spool-admin.js';
import { formatDuration, renderTable, truncate } from './table.js';

export const QUEUE_HELP = `Usage: smtp-sidecar queue list [--json] [--config FILE]
       smtp-sidecar queue show QID [--config FILE]
       smtp-sidecar queue retry QID | retry --all [--config FILE]
       smtp-sidecar queue delete QID [--config FILE]

Shows and manages the messages waiting in the spool. Talks to the running relay through its
admin API (http.host:http.port) with the token the relay writes to delivery.spoolDir/admin.token
(readable only by the relay's user: run this command as that user); when no relay answers
there, works on the spool files (delivery.spoolDir) directly.

  list          qid, age, sender, recipients, attempts, next attempt, last error (--json: JSON)
  show QID      the message's metadata as JSON (never its body)
  retry QID     try the message again now (--all: every queued message)
  delete QID    remove the message from the queue for good

Exit codes: 0 success, 1 no such message or the relay/spool failed, 2 usage error or invalid config.
`;

export interface QueueCommandOptions {
  readonly config: string;
  /** the words after "queue": subcommand and qid */
  readonly args: readonly string[];
  readonly json: boolean;
  readonly all: boolean;
}

export interface QueueCommandDeps {
  readonly clock?: Clock;
  /** how long the admin API may take to answer (default 3000 ms) */
  readonly apiTimeoutMs?: number;
}

type Operation =
  | { readonly kind: 'list' }
  | { readonly kind: 'show'; readonly qid: string }
  | { readonly kind: 'retry'; readonly qid: string }
  | { readonly kind: 'retry-all' }
  | { readonly kind: 'delete'; readonly qid: string };

/** What each backend (admin API, spool files) offers; undefined/false mean "no such message". */
interface QueueBackend {
  list(): Promise<QueueRow[]>;
  show(qid: string): Promise<SpoolMeta | undefined>;
  retry(qid: string): Promise<boolean>;
  retryAll(): Promise<number>;
  remove(qid: string): Promise<boolean>;
}

function parseOperation(options: QueueCommandOptions): Operation | string {
  const [sub, qid, ...extra] = options.args;
  if (extra.length > 0) return `unexpected argument "${extra[0] ?? ''}"`;
  switch (sub) {
    case 'list':
      return qid === undefined ? { kind: 'list' } : `unexpected argument "${qid}"`;
    case 'show':
    case 'delete':
      return qid === undefined ? `queue ${sub} needs a QID` : { kind: sub, qid };
    case 'retry':
      if (options.all) return qid === undefined ? { kind: 'retry-all' } : 'give either a QID or --all, not both';
      return qid === undefined ? 'queue retry needs a QID (or --all)' : { kind: 'retry', qid };
    case undefined:
      return 'missing subcommand (list, show, retry or delete)';
    default:
      return `unknown subcommand "${sub}"`;
  }
}

export async function queueCommand(options: QueueCommandOptions, io: CliIo, deps: QueueCommandDeps = {}): Promise<number> {
  const operation = parseOperation(options);
  if (typeof operation === 'string') {
    io.stderr(`smtp-sidecar queue: ${operation}\n\n${QUEUE_HELP}`);
    return EXIT.USAGE_OR_CONFIG;
  }
  const config = loadConfigOrReport(options.config, io);
  if (config === undefined) return EXIT.USAGE_OR_CONFIG;
  const clock = deps.clock ?? systemClock;
  const spoolDir = resolve(config.delivery.spoolDir);
  const api = config.http.enabled ? new AdminApiBackend(adminBaseUrl(config), deps.apiTimeoutMs ?? 3000, adminTokenPath(spoolDir)) : undefined;
  const run = async (backend: QueueBackend): Promise<number> => execute(operation, backend, io, clock, options.json);
  /** the spool files, under the spool's lock: refused while a relay (or another queue) holds it */
  const runDirect = async (): Promise<number> => {
    const lock = await acquireSpoolLock(spoolDir, { command: 'queue', create: false });
    try {
      return await run(new SpoolAdminBackend(new SpoolAdmin({ spool: new FsSpool({ dir: spoolDir, fsync: config.delivery.fsync, clock }), clock })));
    } finally {
      await lock.release();
    }
  };
  try {
    if (api === undefined) {
      io.stderr(`note: http.enabled is false, so a running relay cannot be asked: working on the spool files in ${spoolDir}\n`);
      return await runDirect();
    }
    try {
      return await run(api);
    } catch (err) {
      if (!isConnectionRefused(err)) throw err;
      io.stderr(`note: no relay answers on ${api.baseUrl}: working on the spool files in ${spoolDir}\n`);
      return await runDirect();
    }
  } catch (err) {
    io.stderr(`smtp-sidecar queue: ${describeFailure(err, spoolDir)}\n`);
    return EXIT.FAILURE;
  }
}

async function execute(operation: Operation, backend: QueueBackend, io: CliIo, clock: Clock, json: boolean): Promise<number> {
  const notFound = (qid: string): number => {
    io.stderr(`smtp-sidecar queue: no queued message ${qid}\n`);
    return EXIT.FAILURE;
  };
  switch (operation.kind) {
    case 'list': {
      const rows = await backend.list();
      if (json) io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
      else io.stdout(rows.length === 0 ? 'queue is empty\n' : renderQueue(rows, clock.now()));
      return EXIT.OK;
    }
    case 'show': {
      const meta = await backend.show(operation.qid);
      if (meta === undefined) return notFound(operation.qid);
      io.stdout(`${JSON.stringify(meta, null, 2)}\n`);
      return EXIT.OK;
    }
    case 'retry': {
      if (!(await backend.retry(operation.qid))) return notFound(operation.qid);
      io.stdout(`${operation.qid}: retry scheduled now\n`);
      return EXIT.OK;
    }
    case 'retry-all': {
      const count = await backend.retryAll();
      io.stdout(`${count} message(s) scheduled for retry now\n`);
      return EXIT.OK;
    }
    case 'delete': {
      if (!(await backend.remove(operation.qid))) return notFound(operation.qid);
      io.stdout(`${operation.qid}: deleted\n`);
      return EXIT.OK;
    }
  }
}

/** The `queue list` table. */
export function renderQueue(rows: readonly QueueRow[], nowMs: number): string {
  const header = ['QID', 'AGE', 'SENDER', 'RECIPIENTS', 'ATTEMPTS', 'NEXT', 'LAST ERROR'];
  const body = rows.map((row) => {
    const [first] = row.pendingRecipients;
    const more = row.pendingRecipients.length - 1;
    const nextMs = Date.parse(row.nextAttemptAt) - nowMs;
    return [
      row.qid,
      formatDuration(nowMs - Date.parse(row.receivedAt)),
      row.sender === '' ? '<>' : row.sender,
      first === undefined ? '-' : more > 0 ? `${first} +${more}` : first,
      String(row.attempts),
      Number.isNaN(nextMs) ? '?' : nextMs > 0 ? `in ${formatDuration(nextMs)}` : 'now',
      row.lastError === undefined ? '' : truncate(row.lastError, 60),
    ];
  });
  return renderTable([header, ...body]);
}

// ---------------------------------------------------------------------------------------------
// backends

class SpoolAdminBackend implements QueueBackend {
  constructor(private readonly admin: SpoolAdmin) {}
  list(): Promise<QueueRow[]> {
    return this.admin.list();
  }
  show(qid: string): Promise<SpoolMeta | undefined> {
    return this.admin.show(qid);
  }
  async retry(qid: string): Promise<boolean> {
    return (await this.admin.retry(qid)) !== undefined;
  }
  async retryAll(): Promise<number> {
    return (await this.admin.retryAll()).length;
  }
  remove(qid: string): Promise<boolean> {
    return this.admin.remove(qid);
  }
}

export function adminBaseUrl(config: Config): string {
  const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host === '::' ? '::1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
}

class AdminApiError extends Error {}

class AdminApiBackend implements QueueBackend {
  private token: Promise<{ token: string } | { problem: string }> | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly tokenFile: string,
  ) {}

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string): Promise<{ status: number; body: unknown }> {
    this.token ??= readAdminToken(this.tokenFile);
    const token = await this.token;
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { accept: 'application/json', ...('token' in token ? { authorization: `Bearer ${token.token}` } : {}) },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      // keep the text for the error message
    }
    if (response.status !== 404 && (response.status < 200 || response.status > 299)) {
      const detail = typeof body === 'object' && body !== null && 'error' in body ? String((body as { error: unknown }).error) : truncate(String(text), 200);
      const why = response.status === 401 && 'problem' in token ? ` (${token.problem})` : '';
      throw new AdminApiError(`the relay's admin API answered ${method} ${path} with HTTP ${response.status}${detail === '' ? '' : `: ${detail}`}${why}`);
    }
    return { status: response.status, body };
  }

  async list(): Promise<QueueRow[]> {
    const { status, body } = await this.call('GET', '/admin/queue');
    if (status === 404) throw new AdminApiError('the relay has no /admin/queue endpoint (an older version?)');
    const rows = (body as { messages?: unknown } | undefined)?.messages;
    if (!Array.isArray(rows)) throw new AdminApiError('the relay answered GET /admin/queue with something that is not a list');
    return rows as QueueRow[];
  }

  async show(qid: string): Promise<SpoolMeta | undefined> {
    const { status, body } = await this.call('GET', `/admin/queue/${encodeURIComponent(qid)}`);
    return status === 404 ? undefined : (body as SpoolMeta);
  }

  async retry(qid: string): Promise<boolean> {
    return (await this.call('POST', `/admin/queue/${encodeURIComponent(qid)}/retry`)).status !== 404;
  }

  async retryAll(): Promise<number> {
    const { status, body } = await this.call('POST', '/admin/queue/retry-all');
    if (status === 404) throw new AdminApiError('the relay has no /admin/queue/retry-all endpoint (an older version?)');
    const retried = (body as { retried?: unknown } | undefined)?.retried;
    return typeof retried === 'number' ? retried : Array.isArray(retried) ? retried.length : 0;
  }

  async remove(qid: string): Promise<boolean> {
    return (await this.call('DELETE', `/admin/queue/${encodeURIComponent(qid)}`)).status !== 404;
  }
}

function isConnectionRefused(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  const code = (cause as { code?: unknown } | undefined)?.code ?? (err as { code?: unknown } | undefined)?.code;
  return code === 'ECONNREFUSED';
}

function describeFailure(err: unknown, spoolDir: string): string {
  if (err instanceof AdminApiError) return err.message;
  if (err instanceof SpoolLockedError) return `${err.message}; nothing was changed`;
  const name = (err as { name?: unknown } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'the relay\'s admin API did not answer in time (is the relay stuck?); nothing was changed';
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return `the spool directory ${spoolDir} has no queue (has a relay ever run with this config?)`;
  return err instanceof Error ? err.message : String(err);
}
