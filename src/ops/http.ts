/**
 * The operations HTTP server (node:http, no framework): /healthz, /readyz, /metrics, /status
 * and the loopback-only admin queue API used by the `queue` CLI.
 *
 * Does: answer GET /healthz (the process runs), GET /readyz (200 or 503 with the checks),
 * GET /metrics (Prometheus text), GET /status (the app's secret-free status object, when given)
 * and the admin routes below, delegating to AdminHandlers; every answer is JSON except /metrics;
 * 404 for unknown paths, 405 (with Allow) for a wrong method.
 * Every admin request writes nothing but a refusal or, for an action, the handlers' audit line
 * (`admin`: action, qid, recipients, by, peer, user agent, result; see spool-admin.ts).
 * Never: reads or logs request bodies; serves the config (there is no config endpoint, keep it
 * that way); lets a request reach the admin API without passing AdminGuard (admin-auth.ts:
 * loopback peer, exact loopback Host, no cross-site request, the per-process Bearer token);
 * puts recipients or subjects in an answer that does not need the token.
 * Assumes: the status and readiness objects it is given are already free of secrets,
 * recipients and subjects; the admin token file's directory exists when listen() is called.
 *
 * Status page (status-page.ts): GET /, /page.css, /page.js serve its files (loopback peer, exact
 * Host and no cross-site request, as for admin routes; no token: they hold no data), and
 * GET /admin/overview is its data (an admin route: token required).
 *
 * Admin routes (token required; each action is audited by the handlers, with who asked: `cli`
 * when the request carries `X-Smtp-Sidecar-Client: cli`, else `api`, the peer address:port and
 * the user agent):
 *   GET    /admin/queue                          list (+ failedCount)
 *   GET    /admin/queue/:qid                     show (queued or failed)
 *   POST   /admin/queue/:qid/retry               retry one now
 *   POST   /admin/queue/retry-all                retry every queued message now
 *   DELETE /admin/queue/:qid                     remove one (queued or failed)
 *   GET    /admin/failed                         list failed mail
 *   POST   /admin/failed/:qid/requeue            move one back into the queue, due now
 *   POST   /admin/failed/requeue-all             requeue every failed message
 *   POST   /admin/failed/purge?olderThanSeconds=N  delete failed mail older than N seconds (0 or absent: all)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock } from '../core/clock.js';
import {
  FLOOD_LOG_INTERVAL_MS,
  HTTP_DEFAULT_HEADERS_TIMEOUT_MS,
  HTTP_DEFAULT_IDLE_TIMEOUT_MS,
  HTTP_TIMEOUT_CHECK_INTERVAL_MS,
  REQUEST_BODY_EXTRA_MS,
  REQUEST_TIMEOUT_FLOOR_MS,
  UNREAD_REPLY_DESTROY_MS,
} from '../core/delays.js';
import { IntervalLog } from '../core/interval-log.js';
import { packageVersion } from '../core/version.js';
import type { Logger } from '../core/ports.js';
import { AdminGuard, loopbackHostHeaders, publishAdminToken } from './admin-auth.js';
import type { Actor, FailedRow, QueueRow, ShownMessage } from './spool-admin.js';
import type { RelayMetrics } from './metrics.js';
import type { ReadinessReport } from './readiness.js';
import { isPageAsset, PAGE_HEADERS, type PageAsset } from './status-page.js';

export interface AdminHandlers {
  list(): Promise<readonly QueueRow[]>;
  failedCount(): Promise<number>;
  listFailed(): Promise<readonly FailedRow[]>;
  /** undefined when there is no such message (404) */
  show(qid: string): Promise<ShownMessage | undefined>;
  /** false when there is no such message (404) */
  retry(qid: string, actor: Actor): Promise<boolean>;
  /** how many messages were scheduled for an immediate retry */
  retryAll(actor: Actor): Promise<number>;
  /** false when there is no such message, queued or failed (404) */
  remove(qid: string, actor: Actor): Promise<boolean>;
  /** false when there is no such failed message (404) */
  requeue(qid: string, actor: Actor): Promise<boolean>;
  requeueAll(actor: Actor): Promise<number>;
  /** how many failed messages were deleted */
  purgeFailed(olderThanMs: number, actor: Actor): Promise<number>;
}

/** Who sent an admin request, for the audit line (the CLI says so in a header; it cannot prove it). */
export function actorOf(req: IncomingMessage, by?: Actor['by']): Actor {
  const peer = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
  const client = req.headers['x-smtp-sidecar-client'];
  const cli = client === 'cli';
  const user = req.headers['x-smtp-sidecar-user'];
  const agent = req.headers['user-agent'];
  return {
    by: by ?? (cli ? 'cli' : client === 'page' ? 'page' : 'api'),
    peer,
    ...(cli && typeof user === 'string' && /^[\w.@-]{1,64}$/.test(user) ? { user } : {}),
    ...(typeof agent === 'string' && agent !== '' ? { userAgent: agent.slice(0, 200) } : {}),
  };
}

export interface HttpServerDeps {
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly metrics: RelayMetrics;
  readonly readiness: () => Promise<ReadinessReport>;
  readonly status?: () => object;
  readonly admin?: AdminHandlers;
  /** the status page at `/` (its files) and GET /admin/overview (its data, token required) */
  readonly page?: { readonly asset: (path: string) => Promise<PageAsset | undefined>; readonly overview: () => Promise<object> };
  /** where listen() publishes the per-process admin token (admin-auth.ts); required with `admin` */
  readonly adminTokenFile?: string;
  /** for /healthz uptimeSeconds; defaults to the system clock */
  readonly clock?: Clock;
  /** for /healthz; defaults to package.json's version */
  readonly version?: string;
  /** connection and time caps (http.maxConnections, http.*TimeoutSeconds); defaults below */
  readonly limits?: Partial<HttpLimits>;
  /** how often a repeated refusal is logged (default 60 s) */
  readonly refusalLogIntervalMs?: number;
}

export interface HttpLimits {
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

const DEFAULT_LIMITS: HttpLimits = { maxConnections: 64, headersTimeoutMs: HTTP_DEFAULT_HEADERS_TIMEOUT_MS, idleTimeoutMs: HTTP_DEFAULT_IDLE_TIMEOUT_MS };

export interface HttpServer {
  /** publishes the admin token (when there is an admin API), then listens */
  listen(): Promise<AddressInfo>;
  /** the same check the admin routes use, for any other page or route that needs the token */
  readonly guard: AdminGuard;
  close(): Promise<void>;
}

/** Mirrors spool/qid.ts: only [A-Za-z0-9], so a qid can never name a path. */
const QID = /^[A-Za-z0-9]{1,64}$/;

class HttpProblem {
  constructor(
    readonly statusCode: number,
    readonly message: string,
    readonly allow?: string,
  ) {}
}

type Route = { readonly methods: Readonly<Record<string, () => Promise<Reply>>> };
type Reply = { readonly statusCode: number; readonly body: string; readonly contentType: string; readonly headers?: Readonly<Record<string, string>> };

const json = (statusCode: number, value: unknown): Reply => ({
  statusCode,
  body: `${JSON.stringify(value)}\n`,
  contentType: 'application/json; charset=utf-8',
});

export function createHttpServer(deps: HttpServerDeps): HttpServer {
  const clock = deps.clock ?? systemClock;
  const startedAtMs = clock.now();
  const version = deps.version ?? packageVersion();
  const log = deps.logger.child({ component: 'http' });
  let adminToken: string | undefined;
  let listeningPort: number | undefined;
  const guard = new AdminGuard({
    token: () => adminToken,
    allowedHosts: () => (listeningPort === undefined ? [] : loopbackHostHeaders(listeningPort)),
  });

  const adminRoute = (path: string, req: IncomingMessage, url: URL): Route | undefined => {
    const admin = deps.admin;
    if (admin === undefined) return undefined;
    const actor = () => actorOf(req);
    const missing = (qid: string, what = 'queued') => json(404, { error: `no ${what} message ${qid}` });
    if (path === '/admin/overview' && deps.page !== undefined) {
      const page = deps.page;
      return { methods: { GET: async () => json(200, await page.overview()) } };
    }
    if (path === '/admin/queue') return { methods: { GET: async () => json(200, { messages: await admin.list(), failedCount: await admin.failedCount() }) } };
    if (path === '/admin/queue/retry-all') return { methods: { POST: async () => json(200, { retried: await admin.retryAll(actor()) }) } };
    if (path === '/admin/failed') return { methods: { GET: async () => json(200, { messages: await admin.listFailed() }) } };
    if (path === '/admin/failed/requeue-all') return { methods: { POST: async () => json(200, { requeued: await admin.requeueAll(actor()) }) } };
    if (path === '/admin/failed/purge') {
      const raw = url.searchParams.get('olderThanSeconds') ?? '0';
      if (!/^\d{1,12}$/.test(raw)) throw new HttpProblem(400, 'olderThanSeconds must be a whole number of seconds');
      return { methods: { POST: async () => json(200, { purged: await admin.purgeFailed(Number(raw) * 1000, actor()) }) } };
    }
    const requeue = /^\/admin\/failed\/([^/]+)\/requeue$/.exec(path);
    if (requeue !== null) {
      const qid = checkedQid(requeue[1]);
      return { methods: { POST: async () => ((await admin.requeue(qid, actor())) ? json(200, { requeued: qid }) : missing(qid, 'failed')) } };
    }
    const retry = /^\/admin\/queue\/([^/]+)\/retry$/.exec(path);
    if (retry !== null) {
      const qid = checkedQid(retry[1]);
      return { methods: { POST: async () => ((await admin.retry(qid, actor())) ? json(200, { retried: qid }) : missing(qid)) } };
    }
    const one = /^\/admin\/queue\/([^/]+)$/.exec(path);
    if (one !== null) {
      const qid = checkedQid(one[1]);
      return {
        methods: {
          GET: async () => {
            const row = await admin.show(qid);
            return row === undefined ? missing(qid, 'queued or failed') : json(200, row);
          },
          DELETE: async () => ((await admin.remove(qid, actor())) ? json(200, { removed: qid }) : missing(qid, 'queued or failed')),
        },
      };
    }
    return undefined;
  };

  const route = (path: string, req: IncomingMessage, url: URL): Route | undefined => {
    switch (path) {
      case '/healthz':
        return { methods: { GET: async () => json(200, { status: 'ok', uptimeSeconds: Math.max(0, Math.floor((clock.now() - startedAtMs) / 1000)), version }) } };
      case '/readyz':
        return {
          methods: {
            GET: async () => {
              const report = await deps.readiness();
              return json(report.ready ? 200 : 503, report);
            },
          },
        };
      case '/metrics':
        return {
          methods: {
            GET: async () => ({ statusCode: 200, body: await deps.metrics.registry.metrics(), contentType: deps.metrics.registry.contentType }),
          },
        };
      case '/status': {
        const status = deps.status;
        return status === undefined ? undefined : { methods: { GET: async () => json(200, status()) } };
      }
      default: {
        const page = deps.page;
        if (page !== undefined && isPageAsset(path)) {
          return {
            methods: {
              GET: async () => {
                const asset = await page.asset(path);
                if (asset === undefined) throw new HttpProblem(404, `no such endpoint ${path}`);
                return { statusCode: 200, body: asset.body, contentType: asset.contentType, headers: PAGE_HEADERS };
              },
            },
          };
        }
        return path === '/admin' || path.startsWith('/admin/') ? adminRoute(path, req, url) : undefined;
      }
    }
  };

  const handle = async (req: IncomingMessage): Promise<Reply> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const isAdmin = deps.admin !== undefined && (path === '/admin' || path.startsWith('/admin/'));
    if (isAdmin || (deps.page !== undefined && isPageAsset(path))) {
      // The page's files hold no data, so they need no token (401); but like the admin routes they
      // answer only to this server's own name (no DNS rebinding onto it) and never to a cross-site request.
      const verdict = guard.check({ method: req.method, remoteAddress: req.socket.remoteAddress, headers: req.headers });
      if (!verdict.ok && (isAdmin || verdict.status !== 401)) {
        log.warn({ client: req.socket.remoteAddress, method: req.method, path, status: verdict.status }, isAdmin ? 'admin.refused' : 'page.refused');
        throw new HttpProblem(verdict.status, verdict.reason);
      }
    }
    const found = route(path, req, url);
    if (found === undefined) throw new HttpProblem(404, `no such endpoint ${path}`);
    const handler = found.methods[req.method ?? 'GET'];
    if (handler === undefined) {
      const allow = Object.keys(found.methods).join(', ');
      throw new HttpProblem(405, `method ${req.method ?? ''} not allowed on ${path}; use ${allow}`, allow);
    }
    return handler();
  };

  const respond = (res: ServerResponse, reply: Reply, allow?: string) => {
    const headers: Record<string, string | number> = {
      'content-type': reply.contentType,
      'content-length': Buffer.byteLength(reply.body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    };
    if (allow !== undefined) headers.allow = allow;
    if (reply.headers !== undefined) Object.assign(headers, reply.headers);
    if (reply.statusCode === 401) headers['www-authenticate'] = 'Bearer realm="smtp-sidecar admin"';
    res.writeHead(reply.statusCode, headers);
    res.end(reply.body);
  };

  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const requestTimeoutMs = Math.max(REQUEST_TIMEOUT_FLOOR_MS, limits.headersTimeoutMs + REQUEST_BODY_EXTRA_MS);
  const refusals = new IntervalLog(log, deps.refusalLogIntervalMs ?? FLOOD_LOG_INTERVAL_MS, clock);
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // how often node looks for connections past headersTimeout/requestTimeout (default 30 s)
    connectionsCheckingInterval: Math.min(HTTP_TIMEOUT_CHECK_INTERVAL_MS, limits.headersTimeoutMs),
  }, (req, res) => {
    // Bodies are never read or logged: drain whatever the client sent so the socket stays usable.
    req.resume();
    handle(req).then(
      (reply) => respond(res, reply),
      (err: unknown) => {
        if (err instanceof HttpProblem) {
          respond(res, json(err.statusCode, { error: err.message }), err.allow);
          return;
        }
        log.error({ err: { message: (err as Error).message }, method: req.method, path: new URL(req.url ?? '/', 'http://localhost').pathname }, 'http.error');
        respond(res, json(500, { error: 'internal error; see the relay log' }));
      },
    );
  });
  // Bounded connections and waits: idle or slow clients must not hold the ops port (or the
  // process's file descriptors, which the SMTP listener needs too).
  server.maxConnections = limits.maxConnections;
  server.timeout = requestTimeoutMs; // socket inactivity, e.g. a client that stops reading
  server.on('drop', (dropped?: { remoteAddress?: string }) => {
    refusals.note('http.refused', { reason: 'max-connections', limit: limits.maxConnections, client: dropped?.remoteAddress });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // a client that resets or goes away is not a refusal; a timeout or a malformed request is
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') {
      refusals.note('http.refused', { reason: timedOut ? 'timeout' : 'bad-request', code: err.code, client: (socket as Socket).remoteAddress });
    }
    if (socket.writable && !socket.writableEnded) {
      (socket as Socket).setTimeout(UNREAD_REPLY_DESTROY_MS, () => socket.destroy()); // a client that does not read this either
      socket.end(timedOut ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
    else socket.destroy();
  });

  return {
    guard,
    async listen() {
      if (deps.admin !== undefined && deps.adminTokenFile !== undefined) adminToken = await publishAdminToken(deps.adminTokenFile);
      return new Promise<AddressInfo>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(deps.port, deps.host, () => {
          server.off('error', onError);
          const address = server.address() as AddressInfo;
          listeningPort = address.port;
          log.info({ host: address.address, port: address.port }, 'http.listening');
          resolve(address);
        });
      });
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        refusals.flush();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        server.closeAllConnections();
      });
    },
  };
}

function checkedQid(raw: string | undefined): string {
  let qid: string;
  try {
    qid = decodeURIComponent(raw ?? '');
  } catch {
    throw new HttpProblem(400, 'malformed queue id');
  }
  if (!QID.test(qid)) throw new HttpProblem(400, 'a queue id is letters and digits only');
  return qid;
}
