/**
 * `smtp-sidecar queue list [--failed] | show QID | retry QID|--all | delete QID | requeue QID|--all
 *  | purge --failed [--older-than 7d]  [--json] [--config F]`
 *
 * Does: ask the running relay's admin HTTP API (http.host:http.port, short timeout) first; when
 *   nothing listens there (ECONNREFUSED) or the API is disabled, work on the spool files directly
 *   through SpoolAdmin/FsSpool (atomic renames only; the audit lines then go to this command's
 *   stderr, as no relay log is there to take them), first converting entries of the previous
 *   spool layout (FsSpool.convertPreviousLayout: a spool not started since an upgrade). Prints mailq-like blocks (or JSON) for list,
 *   the metadata JSON for show, one line for the actions.
 * Never: edit the spool files directly while a relay answers on its API (a refused connection
 *   is the only fallback: a timeout or an error answer is reported, not worked around); print
 *   message bodies; run FsSpool.recover() (it would clean tmp/ under a live relay); work on
 *   the spool files without holding the spool's lock (spool/spool-lock.ts): while a relay holds
 *   it, a direct command refuses, naming the relay's PID.
 * Admin API calls carry the running relay's per-process token (`Authorization: Bearer`), read
 *   from `<delivery.spoolDir>/admin.token` (mode 0600: only the relay's user can use the API).
 * Assumes: admin API contract (src/ops/http.ts): GET /admin/queue → {messages: QueueRow[],
 *   failedCount}, GET /admin/failed → {messages: FailedRow[]}, GET /admin/queue/:qid → ShownMessage,
 *   POST /admin/queue/:qid/retry, POST /admin/queue/retry-all, DELETE /admin/queue/:qid,
 *   POST /admin/failed/:qid/requeue, POST /admin/failed/requeue-all,
 *   POST /admin/failed/purge?olderThanSeconds=N; 404 for an unknown qid.
 * Exit codes: 0 ok, 1 qid not found / API or spool error, 2 usage or invalid config.
 */
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import { FsSpool } from '../spool/fs-spool.js';
import { acquireSpoolLock, SpoolLockedError } from '../spool/spool-lock.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { loadConfigOrReport } from './load-config.js';
import { hostPort, loopbackFor } from './local-addresses.js';
import { adminTokenPath, readAdminToken } from '../ops/admin-auth.js';
import { createLogger } from '../ops/logger.js';
import { SpoolAdmin, type Actor, type FailedRow, type QueueRow, type ShownMessage } from '../ops/spool-admin.js';
import { renderFailed, renderQueue } from './queue-render.js';
import { truncate } from './table.js';
import { QUEUE_API_TIMEOUT_MS } from '../core/delays.js';

export const QUEUE_HELP = `Usage: smtp-sidecar queue list [--failed] [--json] [--config FILE]
       smtp-sidecar queue show QID [--config FILE]
       smtp-sidecar queue retry QID | retry --all [--config FILE]
       smtp-sidecar queue delete QID [--config FILE]
       smtp-sidecar queue requeue QID | requeue --all [--config FILE]
       smtp-sidecar queue purge --failed [--older-than 7d] [--config FILE]
       smtp-sidecar queue page [--config FILE]

Shows and manages the messages in the spool, like mailq and postsuper. Talks to the running
relay through its admin API (http.host:http.port) with the token the relay writes to
delivery.spoolDir/admin.token (readable only by the relay's user: run this command as that
user); when no relay answers there, works on the spool files (delivery.spoolDir) directly.
Every action writes an "admin" audit line to the relay's log (or, without a relay, to this
command's stderr).

  list            queued messages: queue id, size, age, tries, next try, sender (as the app
                  gave it -> as rewritten), last upstream answer, pending recipients
  list --failed   failed messages (failed/): when, why, each recipient's answer
  show QID        the message's metadata as JSON, queued or failed (never its body)
  retry QID       try a queued message again now (--all: every queued message)    [postsuper -r]
  delete QID      delete a queued or failed message for good                        [postsuper -d]
  requeue QID     move a failed message back into the queue, due now, with a fresh lifetime
                  (--all: every failed message)
  purge --failed  delete every failed message (--older-than 7d: only those that failed at
                  least that long ago; units s, m, h, d). The relay itself deletes failed mail
                  older than delivery.failedRetentionDays (default 30).
  page            print the link to the running relay's status page (with its admin token in
                  the #fragment, which the browser keeps to itself); open it on this machine
  --json          list and list --failed print JSON

Exit codes: 0 success, 1 no such message or the relay/spool failed, 2 usage error or invalid config.
`;

export interface QueueCommandOptions {
  readonly config: string;
  /** the words after "queue": subcommand and qid */
  readonly args: readonly string[];
  readonly json: boolean;
  readonly all: boolean;
  readonly failed?: boolean;
  /** purge --older-than: "7d", "12h", "30m", "90s" */
  readonly olderThan?: string | undefined;
}

export interface QueueCommandDeps {
  readonly clock?: Clock;
  /** how long the admin API may take to answer (default QUEUE_API_TIMEOUT_MS) */
  readonly apiTimeoutMs?: number;
}

type Operation =
  | { readonly kind: 'list' }
  | { readonly kind: 'list-failed' }
  | { readonly kind: 'show'; readonly qid: string }
  | { readonly kind: 'retry'; readonly qid: string }
  | { readonly kind: 'retry-all' }
  | { readonly kind: 'delete'; readonly qid: string }
  | { readonly kind: 'requeue'; readonly qid: string }
  | { readonly kind: 'requeue-all' }
  | { readonly kind: 'purge'; readonly olderThanMs: number }
  | { readonly kind: 'page' };

/** What each backend (admin API, spool files) offers; undefined/false mean "no such message". */
interface QueueBackend {
  list(): Promise<{ rows: QueueRow[]; failedCount: number }>;
  listFailed(): Promise<FailedRow[]>;
  show(qid: string): Promise<ShownMessage | undefined>;
  retry(qid: string): Promise<boolean>;
  retryAll(): Promise<number>;
  remove(qid: string): Promise<boolean>;
  requeue(qid: string): Promise<boolean>;
  requeueAll(): Promise<number>;
  purgeFailed(olderThanMs: number): Promise<number>;
}

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "7d" → ms; undefined when it is not a whole number followed by s, m, h or d. */
export function parseAge(text: string): number | undefined {
  const match = /^(\d{1,6})([smhd])$/.exec(text.trim());
  return match === null ? undefined : Number(match[1]) * (UNIT_MS[match[2]!] ?? 0);
}

function parseOperation(options: QueueCommandOptions): Operation | string {
  const [sub, qid, ...extra] = options.args;
  if (extra.length > 0) return `unexpected argument "${extra[0] ?? ''}"`;
  if (options.failed === true && sub !== 'list' && sub !== 'purge') return '--failed goes with list or purge';
  if (options.olderThan !== undefined && sub !== 'purge') return '--older-than goes with purge --failed';
  const oneOrAll = (kind: 'retry' | 'requeue'): Operation | string => {
    if (options.all) return qid === undefined ? { kind: `${kind}-all` } : 'give either a QID or --all, not both';
    return qid === undefined ? `queue ${kind} needs a QID (or --all)` : { kind, qid };
  };
  switch (sub) {
    case 'list':
      if (qid !== undefined) return `unexpected argument "${qid}"`;
      return options.failed === true ? { kind: 'list-failed' } : { kind: 'list' };
    case 'show':
    case 'delete':
      return qid === undefined ? `queue ${sub} needs a QID` : { kind: sub, qid };
    case 'retry':
    case 'requeue':
      return oneOrAll(sub);
    case 'purge': {
      if (qid !== undefined) return `unexpected argument "${qid}" (to delete one message: queue delete QID)`;
      if (options.failed !== true) return 'queue purge needs --failed (it deletes failed mail; queued mail is deleted one by one with delete QID)';
      if (options.olderThan === undefined) return { kind: 'purge', olderThanMs: 0 };
      const olderThanMs = parseAge(options.olderThan);
      return olderThanMs === undefined ? `--older-than "${options.olderThan}" is not an age like 7d, 12h, 30m or 90s` : { kind: 'purge', olderThanMs };
    }
    case 'page':
      return qid === undefined ? { kind: 'page' } : `unexpected argument "${qid}"`;
    case undefined:
      return 'missing subcommand (list, show, retry, delete, requeue or purge)';
    default:
      return `unknown subcommand "${sub}"`;
  }
}

function localUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
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
  const user = localUser();
  const spoolDir = resolve(config.delivery.spoolDir);
  if (operation.kind === 'page') return printPageLink(config, spoolDir, io);
  const api = config.http.enabled ? new AdminApiBackend(adminBaseUrl(config), deps.apiTimeoutMs ?? QUEUE_API_TIMEOUT_MS, adminTokenPath(spoolDir), user) : undefined;
  const run = async (backend: QueueBackend): Promise<number> => execute(operation, backend, io, clock, options.json);
  /** the spool files, under the spool's lock: refused while a relay (or another queue) holds it */
  const runDirect = async (): Promise<number> => {
    const lock = await acquireSpoolLock(spoolDir, { command: 'queue', create: false });
    try {
      // No relay runs: its log cannot take the audit lines, so they go to stderr in the configured format.
      const logger = createLogger({ level: 'info', format: config.log.format, destination: { write: (line: string) => io.stderr(line) } });
      const spool = new FsSpool({ dir: spoolDir, fsync: config.delivery.fsync, clock, log: logger });
      // a spool not started since an upgrade still has the previous layout's files: converted
      // here (under the lock), so the command sees that mail too
      await spool.convertPreviousLayout();
      const admin = new SpoolAdmin({ spool, clock, logger });
      return await run(new SpoolAdminBackend(admin, { by: 'cli', ...(user !== undefined ? { user } : {}) }));
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

/** `page` needs no backend: queueCommand answers it before choosing one. */
async function execute(operation: Exclude<Operation, { readonly kind: 'page' }>, backend: QueueBackend, io: CliIo, clock: Clock, json: boolean): Promise<number> {
  const notFound = (qid: string, what = 'queued'): number => {
    io.stderr(`smtp-sidecar queue: no ${what} message ${qid}\n`);
    return EXIT.FAILURE;
  };
  switch (operation.kind) {
    case 'list': {
      const { rows, failedCount } = await backend.list();
      io.stdout(json ? `${JSON.stringify(rows, null, 2)}\n` : renderQueue(rows, failedCount, clock.now()));
      return EXIT.OK;
    }
    case 'list-failed': {
      const rows = await backend.listFailed();
      io.stdout(json ? `${JSON.stringify(rows, null, 2)}\n` : renderFailed(rows, clock.now()));
      return EXIT.OK;
    }
    case 'show': {
      const meta = await backend.show(operation.qid);
      if (meta === undefined) return notFound(operation.qid, 'queued or failed');
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
      if (!(await backend.remove(operation.qid))) return notFound(operation.qid, 'queued or failed');
      io.stdout(`${operation.qid}: deleted\n`);
      return EXIT.OK;
    }
    case 'requeue': {
      if (!(await backend.requeue(operation.qid))) return notFound(operation.qid, 'failed');
      io.stdout(`${operation.qid}: requeued, due now\n`);
      return EXIT.OK;
    }
    case 'requeue-all': {
      const count = await backend.requeueAll();
      io.stdout(`${count} failed message(s) requeued, due now\n`);
      return EXIT.OK;
    }
    case 'purge': {
      const count = await backend.purgeFailed(operation.olderThanMs);
      io.stdout(`${count} failed message(s) deleted\n`);
      return EXIT.OK;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// backends

class SpoolAdminBackend implements QueueBackend {
  constructor(
    private readonly admin: SpoolAdmin,
    private readonly actor: Actor,
  ) {}
  async list(): Promise<{ rows: QueueRow[]; failedCount: number }> {
    return { rows: await this.admin.list(), failedCount: await this.admin.failedCount() };
  }
  listFailed(): Promise<FailedRow[]> {
    return this.admin.listFailed();
  }
  show(qid: string): Promise<ShownMessage | undefined> {
    return this.admin.show(qid);
  }
  async retry(qid: string): Promise<boolean> {
    return (await this.admin.retry(qid, this.actor)) !== undefined;
  }
  async retryAll(): Promise<number> {
    return (await this.admin.retryAll(this.actor)).length;
  }
  remove(qid: string): Promise<boolean> {
    return this.admin.remove(qid, this.actor);
  }
  async requeue(qid: string): Promise<boolean> {
    return (await this.admin.requeue(qid, this.actor)) !== undefined;
  }
  async requeueAll(): Promise<number> {
    return (await this.admin.requeueAll(this.actor)).length;
  }
  async purgeFailed(olderThanMs: number): Promise<number> {
    return (await this.admin.purgeFailed(olderThanMs, this.actor)).length;
  }
}

/** `queue page`: the status page's address with the running relay's admin token in the fragment. */
async function printPageLink(config: Config, spoolDir: string, io: CliIo): Promise<number> {
  if (!config.http.enabled) {
    io.stderr('smtp-sidecar queue: http.enabled is false, so the relay serves no status page\n');
    return EXIT.FAILURE;
  }
  const token = await readAdminToken(adminTokenPath(spoolDir));
  if ('problem' in token) {
    io.stderr(`smtp-sidecar queue: ${token.problem}\n`);
    return EXIT.FAILURE;
  }
  io.stdout(`${adminBaseUrl(config)}/#token=${token.token}\n`);
  return EXIT.OK;
}

function adminBaseUrl(config: Config): string {
  return `http://${hostPort(loopbackFor(config.http.host), config.http.port)}`;
}

class AdminApiError extends Error {}

class AdminApiBackend implements QueueBackend {
  private token: Promise<{ token: string } | { problem: string }> | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly tokenFile: string,
    private readonly user: string | undefined,
  ) {}

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string): Promise<{ status: number; body: unknown }> {
    this.token ??= readAdminToken(this.tokenFile);
    const token = await this.token;
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      // the token proves the right to act; the client and user headers say who asks, for the audit line
      headers: {
        accept: 'application/json',
        ...('token' in token ? { authorization: `Bearer ${token.token}` } : {}),
        'x-smtp-sidecar-client': 'cli',
        ...(this.user !== undefined ? { 'x-smtp-sidecar-user': this.user } : {}),
      },
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

  /** For collection endpoints a 404 means the relay predates them. */
  private async collection(method: 'GET' | 'POST', path: string): Promise<unknown> {
    const { status, body } = await this.call(method, path);
    if (status === 404) throw new AdminApiError(`the relay has no ${path} endpoint (an older version?)`);
    return body;
  }

  async list(): Promise<{ rows: QueueRow[]; failedCount: number }> {
    const body = (await this.collection('GET', '/admin/queue')) as { messages?: unknown; failedCount?: unknown } | undefined;
    if (!Array.isArray(body?.messages)) throw new AdminApiError('the relay answered GET /admin/queue with something that is not a list');
    return { rows: body.messages as QueueRow[], failedCount: typeof body.failedCount === 'number' ? body.failedCount : 0 };
  }

  async listFailed(): Promise<FailedRow[]> {
    const rows = ((await this.collection('GET', '/admin/failed')) as { messages?: unknown } | undefined)?.messages;
    if (!Array.isArray(rows)) throw new AdminApiError('the relay answered GET /admin/failed with something that is not a list');
    return rows as FailedRow[];
  }

  async show(qid: string): Promise<ShownMessage | undefined> {
    const { status, body } = await this.call('GET', `/admin/queue/${encodeURIComponent(qid)}`);
    return status === 404 ? undefined : (body as ShownMessage);
  }

  async retry(qid: string): Promise<boolean> {
    return (await this.call('POST', `/admin/queue/${encodeURIComponent(qid)}/retry`)).status !== 404;
  }

  async retryAll(): Promise<number> {
    return count(((await this.collection('POST', '/admin/queue/retry-all')) as { retried?: unknown } | undefined)?.retried);
  }

  async remove(qid: string): Promise<boolean> {
    return (await this.call('DELETE', `/admin/queue/${encodeURIComponent(qid)}`)).status !== 404;
  }

  async requeue(qid: string): Promise<boolean> {
    return (await this.call('POST', `/admin/failed/${encodeURIComponent(qid)}/requeue`)).status !== 404;
  }

  async requeueAll(): Promise<number> {
    return count(((await this.collection('POST', '/admin/failed/requeue-all')) as { requeued?: unknown } | undefined)?.requeued);
  }

  async purgeFailed(olderThanMs: number): Promise<number> {
    const body = await this.collection('POST', `/admin/failed/purge?olderThanSeconds=${Math.floor(olderThanMs / 1000)}`);
    return count((body as { purged?: unknown } | undefined)?.purged);
  }
}

function count(value: unknown): number {
  return typeof value === 'number' ? value : Array.isArray(value) ? value.length : 0;
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
