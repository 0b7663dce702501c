/**
 * The operations HTTP server (node:http, no framework): /healthz, /readyz, /metrics, /status
 * and the loopback-only admin queue API used by the `queue` CLI.
 *
 * Does: answer GET /healthz (the process runs), GET /readyz (200 or 503 with the checks),
 * GET /metrics (Prometheus text), GET /status (the app's secret-free status object, when given)
 * and the admin routes below, delegating to AdminHandlers; every answer is JSON except /metrics;
 * 404 for unknown paths, 405 (with Allow) for a wrong method.
 * Every admin request writes nothing but a refusal or, for a retry or delete, an audit log line
 * (`admin.retry`, `admin.deleted`: qid, client address, user agent).
 * Never: reads or logs request bodies; serves the config (there is no config endpoint, keep it
 * that way); lets a request reach the admin API without passing AdminGuard (admin-auth.ts:
 * loopback peer, exact loopback Host, no cross-site request, the per-process Bearer token);
 * puts recipients or subjects in an answer that does not need the token.
 * Assumes: the status and readiness objects it is given are already free of secrets,
 * recipients and subjects; the admin token file's directory exists when listen() is called.
 *
 * Admin routes (token required):
 *   GET    /admin/queue              list
 *   GET    /admin/queue/:qid         show
 *   POST   /admin/queue/:qid/retry   retry one now
 *   POST   /admin/queue/retry-all    retry every queued message now
 *   DELETE /admin/queue/:qid         remove one
 */
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Clock, systemClock } from '../core/clock.js';
import { IntervalLog } from '../core/interval-log.js';
import type { Logger } from '../core/ports.js';
import type { SpoolMeta } from '../core/types.js';
import { AdminGuard, loopbackHostHeaders, publishAdminToken } from './admin-auth.js';
import type { QueueRow } from './spool-admin.js';
import type { RelayMetrics } from './metrics.js';
import type { ReadinessReport } from './readiness.js';

export interface AdminHandlers {
  list(): Promise<readonly QueueRow[]>;
  /** undefined when there is no such message (404) */
  show(qid: string): Promise<SpoolMeta | undefined>;
  /** false when there is no such message (404) */
  retry(qid: string): Promise<boolean>;
  /** how many messages were scheduled for an immediate retry */
  retryAll(): Promise<number>;
  /** false when there is no such message (404) */
  remove(qid: string): Promise<boolean>;
}

export interface HttpServerDeps {
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly metrics: RelayMetrics;
  readonly readiness: () => Promise<ReadinessReport>;
  readonly status?: () => object;
  readonly admin?: AdminHandlers;
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

const DEFAULT_LIMITS: HttpLimits = { maxConnections: 64, headersTimeoutMs: 10_000, idleTimeoutMs: 5_000 };
/** a request's body (never read) and a response to a slow reader: bounded too */
const REQUEST_TIMEOUT_FLOOR_MS = 15_000;

export interface HttpServer {
  /** publishes the admin token (when there is an admin API), then listens */
  listen(): Promise<AddressInfo>;
  /** the same check the admin routes use, for any other page or route that needs the token */
  readonly guard: AdminGuard;
  close(): Promise<void>;
}

/** Mirrors spool/qid.ts: only [A-Za-z0-9], so a qid can never name a path. */
const QID = /^[A-Za-z0-9]{1,64}$/;

function packageVersion(): string {
  try {
    // src/ops/http.ts and dist/ops/http.js both sit two levels below package.json.
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

class HttpProblem {
  constructor(
    readonly statusCode: number,
    readonly message: string,
    readonly allow?: string,
  ) {}
}

type Route = { readonly methods: Readonly<Record<string, () => Promise<Reply>>> };
type Reply = { readonly statusCode: number; readonly body: string; readonly contentType: string };

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

  const adminRoute = (path: string, req: IncomingMessage): Route | undefined => {
    const admin = deps.admin;
    if (admin === undefined) return undefined;
    if (path === '/admin/queue') return { methods: { GET: async () => json(200, { messages: await admin.list() }) } };
    if (path === '/admin/queue/retry-all') return { methods: { POST: async () => json(200, { retried: await admin.retryAll() }) } };
    const retry = /^\/admin\/queue\/([^/]+)\/retry$/.exec(path);
    if (retry !== null) {
      const qid = checkedQid(retry[1]);
      return {
        methods: {
          POST: async () => {
            if (!(await admin.retry(qid))) return json(404, { error: `no queued message ${qid}` });
            audit('admin.retry', qid, req);
            return json(200, { retried: qid });
          },
        },
      };
    }
    const one = /^\/admin\/queue\/([^/]+)$/.exec(path);
    if (one !== null) {
      const qid = checkedQid(one[1]);
      return {
        methods: {
          GET: async () => {
            const row = await admin.show(qid);
            return row === undefined ? json(404, { error: `no queued message ${qid}` }) : json(200, row);
          },
          DELETE: async () => {
            if (!(await admin.remove(qid))) return json(404, { error: `no queued message ${qid}` });
            audit('admin.deleted', qid, req);
            return json(200, { removed: qid });
          },
        },
      };
    }
    return undefined;
  };

  const audit = (event: string, qid: string, req: IncomingMessage) => {
    log.info({ audit: true, qid, client: req.socket.remoteAddress, userAgent: req.headers['user-agent'] }, event);
  };

  const route = (path: string, req: IncomingMessage): Route | undefined => {
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
      default:
        return path === '/admin' || path.startsWith('/admin/') ? adminRoute(path, req) : undefined;
    }
  };

  const handle = async (req: IncomingMessage): Promise<Reply> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (deps.admin !== undefined && (path === '/admin' || path.startsWith('/admin/'))) {
      const verdict = guard.check({ method: req.method, remoteAddress: req.socket.remoteAddress, headers: req.headers });
      if (!verdict.ok) {
        log.warn({ client: req.socket.remoteAddress, method: req.method, path, status: verdict.status }, 'admin.refused');
        throw new HttpProblem(verdict.status, verdict.reason);
      }
    }
    const found = route(path, req);
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
    if (reply.statusCode === 401) headers['www-authenticate'] = 'Bearer realm="smtp-sidecar admin"';
    res.writeHead(reply.statusCode, headers);
    res.end(reply.body);
  };

  const limits: HttpLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const requestTimeoutMs = Math.max(REQUEST_TIMEOUT_FLOOR_MS, limits.headersTimeoutMs + 5_000);
  const refusals = new IntervalLog(log, deps.refusalLogIntervalMs ?? 60_000);
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // how often node looks for connections past headersTimeout/requestTimeout (default 30 s)
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
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
      (socket as Socket).setTimeout(1_000, () => socket.destroy()); // a client that does not read this either
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
