/**
 * The composition root: createApp(config, overrides) builds every part and wires the two
 * halves together. This is the only place that constructs I/O (listener, spool, transports,
 * token sources); everything else receives its dependencies as parameters.
 *
 * Does: build, start (spool recovery → SMTP listener → dispatcher → HTTP), reload (swap the
 * config for new connections and attempts) and stop (listener first, then delivery, then pools).
 * Never: holds mail logic itself; a decision made here is wiring, not policy.
 */
import { BlockList, isIP } from 'node:net';
import { resolve } from 'node:path';
import type { INetworkModule } from '@azure/msal-node';
import { type Clock, systemClock } from './core/clock.js';
import type { Logger, Spool, UpstreamTransport } from './core/ports.js';
import type { Config, UpstreamConfig } from './config/schema.js';
import { changedKeys } from './config/diff.js';
import { createOAuth2TokenSource, type OAuth2TokenSource } from './delivery/credentials/oauth2.js';
import { TokenCache } from './delivery/credentials/token-cache.js';
import { TokenStatusBoard } from './delivery/credentials/token-status.js';
import { Dispatcher } from './delivery/dispatch.js';
import { createOutboxTransport } from './delivery/outbox.js';
import { createSmtpTransport } from './delivery/transport.js';
import { listenExposureWarnings } from './intake/exposure.js';
import { createReceiver } from './intake/receive.js';
import { createSmtpListener, type SmtpListener } from './intake/smtp-listener.js';
import { createHttpServer } from './ops/http.js';
import { createLogger } from './ops/logger.js';
import { createMetrics, summarizeQueue, type RelayMetrics } from './ops/metrics.js';
import { createReadinessCheck } from './ops/readiness.js';
import { SpoolAdmin } from './ops/spool-admin.js';
import { OutcomeRecorder } from './outcome/record.js';
import { RateLimiter } from './routing/rate-limit.js';
import { UpstreamHealth } from './routing/upstream-health.js';
import { nextAttemptDelayMs } from './spool/backoff.js';
import { FsSpool } from './spool/fs-spool.js';

export const OUTBOX = 'outbox';

/** Keys the running listener or spool cannot change: they take effect at the next start. */
const RESTART_KEYS = ['listen.host', 'listen.port', 'listen.maxMessageSizeMB', 'listen.maxClients', 'listen.socketTimeoutSeconds', 'listen.shutdownGraceSeconds', 'delivery.spoolDir', 'log.level'];
const RETIRE_OLD_TRANSPORTS_MS = 120_000;

export interface AppOverrides {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly spool?: Spool;
  /** msal network client for every oauth2 upstream (tests: a fake token endpoint) */
  readonly tokenNetworkClient?: INetworkModule;
  readonly random?: () => number;
}

export interface App {
  readonly config: () => Config;
  readonly logger: Logger;
  readonly spool: Spool;
  readonly dispatcher: Dispatcher;
  readonly health: UpstreamHealth;
  readonly tokens: TokenStatusBoard;
  readonly listener: SmtpListener;
  readonly metrics: RelayMetrics;
  /** binds the SMTP port (and the HTTP port when enabled), recovers the spool and starts delivering */
  start(): Promise<{ readonly smtpPort: number; readonly httpPort: number | undefined }>;
  /** graceful stop: stop accepting, let DATA transactions finish (bounded), stop delivering */
  stop(): Promise<void>;
  /**
   * Swaps in a validated config for new connections and new delivery attempts; open sessions
   * keep going. Returns the changed key paths (values never: secrets stay out of logs).
   */
  reload(next: Config): string[];
}

/** The token status board, also counting fetches for /metrics. */
class MeteredTokenStatusBoard extends TokenStatusBoard {
  onFetched: ((upstream: string, expiresOnMs: number) => void) | undefined;
  override recordSuccess(upstream: string, at: { readonly nowMs: number; readonly expiresOnMs: number }): void {
    super.recordSuccess(upstream, at);
    this.onFetched?.(upstream, at.expiresOnMs);
  }
}

export function buildAllowList(cidrs: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of cidrs) {
    const [ip, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(bits), family);
  }
  return (address) => {
    const family = isIP(address);
    if (family === 0) return false;
    return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}


export function createApp(initial: Config, overrides: AppOverrides = {}): App {
  let current: Config = initial;
  const config = () => current;
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger({ level: initial.log.level });
  const random = overrides.random ?? Math.random;
  const spool = overrides.spool ?? new FsSpool({ dir: resolve(initial.delivery.spoolDir), fsync: initial.delivery.fsync, clock, log: logger });
  const health = new UpstreamHealth(clock, () => config().delivery.upstreamDownSeconds);
  const rate = new RateLimiter(clock);
  const tokens = new MeteredTokenStatusBoard();
  const tokenCache = new TokenCache({ clock });
  const tokenSources: OAuth2TokenSource[] = [];

  const buildTransport = (u: UpstreamConfig, cfg: Config): UpstreamTransport => {
    let credentials: OAuth2TokenSource | undefined;
    if (u.auth.type === 'oauth2') {
      credentials = createOAuth2TokenSource(u.name, u.auth, {
        cache: tokenCache,
        clock,
        logger,
        status: tokens,
        ...(u.proxy !== undefined ? { proxy: u.proxy } : {}),
        ...(overrides.tokenNetworkClient !== undefined ? { networkClient: overrides.tokenNetworkClient } : {}),
      });
      tokenSources.push(credentials);
    }
    return createSmtpTransport(u, {
      logger,
      defaultHostname: cfg.listen.hostname,
      trace: cfg.log.trace,
      ...(credentials !== undefined ? { credentials } : {}),
    });
  };
  const buildTransports = (cfg: Config): Map<string, UpstreamTransport> => {
    const built = new Map<string, UpstreamTransport>();
    if (cfg.upstreams.length === 0) {
      built.set(OUTBOX, createOutboxTransport({ dir: resolve(cfg.delivery.outboxDir), fsync: cfg.delivery.fsync }));
    } else {
      for (const u of cfg.upstreams) built.set(u.name, buildTransport(u, cfg));
    }
    return built;
  };
  const transports = buildTransports(initial);
  /** pools replaced by a reload, closed after a grace period (or at stop) */
  const retired = new Set<{ transports: UpstreamTransport[]; sources: OAuth2TokenSource[] }>();
  const retire = async (r: { transports: UpstreamTransport[]; sources: OAuth2TokenSource[] }) => {
    if (!retired.delete(r)) return;
    await Promise.allSettled([...r.transports.map((t) => t.close()), ...r.sources.map((s) => s.close())]);
  };
  const upstreamOrder = () => [...transports.keys()];

  const metrics = createMetrics({
    queue: async () => summarizeQueue((await spool.list()).map((e) => e.meta.receivedAt), clock.now()),
    upstreams: () => health.snapshot(upstreamOrder()),
    tokens: () => tokens.snapshot(),
  });
  tokens.onFetched = (upstream, expiresOnMs) => metrics.tokenFetched(upstream, expiresOnMs);

  const recorder = new OutcomeRecorder({
    spool,
    clock,
    logger,
    health,
    backoffMs: (attempts) => nextAttemptDelayMs(attempts, config().delivery.retry, random),
    maxLifetimeHours: () => config().delivery.retry.maxLifetimeHours,
    trace: () => config().log.trace,
    metrics,
  });
  const dispatcher = new Dispatcher({ config, spool, transports: () => transports, upstreamOrder, health, rate, recorder, clock, logger });
  const receiver = createReceiver({
    config,
    spool,
    delivery: dispatcher,
    clock,
    logger,
    onReceived: (meta) => metrics.received(meta.sizeBytes),
    onRejected: (reason) => metrics.rejected(reason),
  });
  let allowed = buildAllowList(initial.listen.allowedClients);
  const listener = createSmtpListener(initial.listen, { isClientAllowed: (a) => allowed(a), onMessage: receiver }, logger);
  const readiness = createReadinessCheck({
    isListening: () => listener.listening,
    probeSpoolWritable: () => spool.probeWritable(),
    upstreams: () => health.snapshot(upstreamOrder()),
    tokens: () => tokens.snapshot(),
  });
  const spoolAdmin = new SpoolAdmin({ spool, clock, onRetry: (qid) => dispatcher.retryNow(qid), onRemove: (qid) => dispatcher.forget(qid) });
  const http = initial.http.enabled
    ? createHttpServer({
        host: initial.http.host,
        port: initial.http.port,
        logger,
        metrics,
        readiness,
        clock,
        status: () => ({ upstreams: health.snapshot(upstreamOrder()), tokens: tokens.snapshot() }),
        admin: {
          list: () => spoolAdmin.list(),
          show: (qid) => spoolAdmin.show(qid),
          retry: async (qid) => (await spoolAdmin.retry(qid)) !== undefined,
          retryAll: async () => (await spoolAdmin.retryAll()).length,
          remove: (qid) => spoolAdmin.remove(qid),
        },
      })
    : undefined;

  return {
    config,
    logger,
    spool,
    dispatcher,
    health,
    tokens,
    listener,
    metrics,
    async start() {
      const cfg = config();
      if (cfg.upstreams.length === 0) {
        logger.warn({ outboxDir: resolve(cfg.delivery.outboxDir) }, 'no upstream configured: delivering to the outbox directory as .eml files');
      } else {
        logger.info({ upstreams: cfg.upstreams.map((u) => ({ name: u.name, host: u.host, port: u.port, security: u.security, auth: u.auth.type })) }, 'upstreams');
      }
      for (const u of cfg.upstreams) {
        if (!u.tls.rejectUnauthorized) logger.warn({ upstream: u.name }, 'tls.rejectUnauthorized is false: the upstream certificate is NOT verified');
      }
      for (const warning of listenExposureWarnings(cfg.listen.host, cfg.listen.allowedClients)) {
        logger.warn({ host: cfg.listen.host, kind: warning.kind }, warning.message);
      }
      const recovered = await spool.recover();
      logger.info({ spoolDir: spool.dir, queued: recovered.entries.length, removedTmp: recovered.removedTmp, quarantined: recovered.quarantined }, 'spool.recovered');
      const address = await listener.listen();
      logger.info({ host: cfg.listen.host, port: address.port, hostname: cfg.listen.hostname }, 'listening');
      dispatcher.start(recovered.entries);
      let httpPort: number | undefined;
      if (http !== undefined) {
        httpPort = (await http.listen()).port;
        logger.info({ host: cfg.http.host, port: httpPort }, 'http.listening');
      }
      return { smtpPort: address.port, httpPort };
    },
    reload(next) {
      const changed = changedKeys(current, next);
      const needsRestart = changed.filter((k) => RESTART_KEYS.some((r) => k === r || k.startsWith(`${r}.`) || k.startsWith(`${r}[`)));
      const upstreamChanged = changed.some((k) => k.startsWith('upstreams') || k === 'listen.hostname' || k === 'log.trace');
      // Build the new pools before touching anything: a reload that cannot build them (an
      // unreadable tls.ca, say) throws here and the running config stays as it was.
      const sourcesBefore = tokenSources.length;
      let fresh: Map<string, UpstreamTransport> | undefined;
      try {
        fresh = upstreamChanged ? buildTransports(next) : undefined;
      } catch (err) {
        for (const s of tokenSources.splice(sourcesBefore)) void s.close().catch(() => undefined);
        throw err;
      }
      current = next;
      allowed = buildAllowList(next.listen.allowedClients);
      if (fresh !== undefined) {
        const old = [...transports.values()];
        const oldSources = tokenSources.splice(0, sourcesBefore);
        transports.clear();
        for (const [name, t] of fresh) transports.set(name, t);
        // sends already running on the old pools may finish; new attempts use the new ones
        const retiring = { transports: old, sources: oldSources };
        retired.add(retiring);
        setTimeout(() => void retire(retiring), RETIRE_OLD_TRANSPORTS_MS).unref();
      }
      logger.info({ changed, ...(needsRestart.length > 0 ? { needsRestart } : {}) }, 'config.changed');
      return changed;
    },
    async stop() {
      logger.info({ openConnections: listener.openConnections }, 'stopping');
      await listener.close();
      await dispatcher.stop();
      await Promise.allSettled([...transports.values()].map((t) => t.close()));
      await Promise.allSettled(tokenSources.map((s) => s.close()));
      await Promise.allSettled([...retired].map(retire));
      await http?.close();
      logger.info({}, 'stopped');
      logger.flush?.();
    },
  };
}
