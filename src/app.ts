/**
 * The composition root: createApp(config, overrides) builds every part and wires the two
 * halves together. This is the only place that constructs I/O (listener, spool, transports,
 * token sources); everything else receives its dependencies as parameters.
 *
 * Does: build, start (spool recovery → SMTP listener → dispatcher → HTTP), reload (swap the
 * config for new connections and attempts) and stop (listener first, then delivery, then pools).
 * Never: holds mail logic itself; a decision made here is wiring, not policy.
 */
import { resolve } from 'node:path';
import type { INetworkModule } from '@azure/msal-node';
import { type Clock, every, systemClock, type Timer } from './core/clock.js';
import { FAILED_RETENTION_CHECK_MS, RETIRE_OLD_UPSTREAMS_MS } from './core/delays.js';
import type { Logger, Spool, UpstreamSet } from './core/ports.js';
import type { Config } from './config/schema.js';
import { planReload } from './config/reload-plan.js';
import { TokenCache } from './delivery/credentials/token-cache.js';
import { TokenStatusBoard } from './delivery/credentials/token-status.js';
import { Dispatcher } from './delivery/dispatch.js';
import { buildUpstreamSet, OUTBOX } from './delivery/upstream-set.js';
import { buildAllowList } from './intake/allow-list.js';
import { createReceiver } from './intake/receive.js';
import { createSmtpListener, type SmtpListener } from './intake/smtp-listener.js';
import { adminTokenPath } from './ops/admin-auth.js';
import { createHttpServer } from './ops/http.js';
import { createLogger } from './ops/logger.js';
import { createMetrics, summarizeQueue, type RelayMetrics } from './ops/metrics.js';
import { createReadinessCheck } from './ops/readiness.js';
import { RecentDeliveries } from './ops/recent.js';
import { SpoolAdmin } from './ops/spool-admin.js';
import { logInsecureUpstreams, logStartupNotes } from './ops/startup-log.js';
import { buildOverview, pageAssets } from './ops/status-page.js';
import { createFailureNotifier } from './notify/notifier.js';
import { OutcomeRecorder } from './outcome/record.js';
import { RateLimiter } from './routing/rate-limit.js';
import { UpstreamHealth } from './routing/upstream-health.js';
import { nextAttemptDelayMs } from './spool/backoff.js';
import { FsSpool } from './spool/fs-spool.js';
import { acquireSpoolLock, type SpoolLock } from './spool/spool-lock.js';

export { OUTBOX };

/** Queued entries read per /metrics scrape for the oldest-message age (the depth comes from the listing). */
const QUEUE_GAUGE_SAMPLE = 20;

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


export function createApp(initial: Config, overrides: AppOverrides = {}): App {
  let current: Config = initial;
  const config = () => current;
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger({ level: initial.log.level, format: initial.log.format });
  const random = overrides.random ?? Math.random;
  const spool = overrides.spool ?? new FsSpool({ dir: resolve(initial.delivery.spoolDir), fsync: initial.delivery.fsync, clock, log: logger });
  const health = new UpstreamHealth(clock, () => config().delivery.upstreamDownSeconds);
  const rate = new RateLimiter(clock);
  // token fetches are counted in /metrics (built below; called only once a token arrives)
  const tokens = new TokenStatusBoard({ onFetched: (upstream, expiresOnMs) => metrics.tokenFetched(upstream, expiresOnMs) });
  const tokenCache = new TokenCache({ clock });
  const buildSet = (cfg: Config): UpstreamSet =>
    buildUpstreamSet(cfg, {
      clock,
      logger,
      tokenCache,
      tokenStatus: tokens,
      ...(overrides.tokenNetworkClient !== undefined ? { tokenNetworkClient: overrides.tokenNetworkClient } : {}),
    });
  let upstreams = buildSet(initial);
  /** sets replaced by a reload, closed after a grace period (or at stop) */
  const retired = new Set<UpstreamSet>();
  const retire = async (set: UpstreamSet) => {
    if (!retired.delete(set)) return;
    await set.close();
  };
  const upstreamOrder = () => upstreams.names;

  const metrics = createMetrics({
    // a directory listing and the oldest few entries per scrape, not every spool file
    queue: async () => {
      const head = await spoolAdmin.queueHead(QUEUE_GAUGE_SAMPLE);
      return { ...summarizeQueue(head.receivedAt, clock.now()), depth: head.depth };
    },
    upstreams: () => health.snapshot(upstreamOrder()),
    tokens: () => tokens.snapshot(),
    failed: () => spool.failedQids().then((qids) => qids.length),
  });

  const recent = new RecentDeliveries();
  const recorder = new OutcomeRecorder({
    spool,
    clock,
    logger,
    health,
    backoffMs: (attempts) => nextAttemptDelayMs(attempts, config().delivery.retry, random),
    maxLifetimeHours: () => config().delivery.retry.maxLifetimeHours,
    trace: () => config().log.trace,
    metrics,
    onTry: (meta, t) =>
      recent.add({ at: new Date(clock.now()).toISOString(), qid: meta.qid, recipients: t.recipients, relay: t.relay, outcome: t.outcome, dsn: t.dsn, response: t.response, sender: meta.envelope.mailFrom, originalSender: meta.originalMailFrom }),
    // notices are spooled and dispatched like any message (the dispatcher exists by the time one is sent)
    notifier: createFailureNotifier({ config, spool, clock, logger, submit: (entry): Promise<unknown> => dispatcher.submit(entry, { waitMs: 0, neverQueue: false }) }),
  });
  const dispatcher: Dispatcher = new Dispatcher({ config, spool, upstreams: () => upstreams, health, rate, recorder, clock, logger });
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
  let retention: Timer | undefined;
  const listener = createSmtpListener(initial.listen, { isClientAllowed: (a) => allowed(a), onMessage: receiver }, logger);
  const readiness = createReadinessCheck({
    isListening: () => listener.listening,
    probeSpoolWritable: () => spool.probeWritable(),
    upstreams: () => health.snapshot(upstreamOrder()),
    tokens: () => tokens.snapshot(),
  });
  const spoolAdmin = new SpoolAdmin({ spool, clock, logger, onRetry: (qid) => dispatcher.retryNow(qid), onRemove: (qid) => dispatcher.forget(qid) });
  const http = initial.http.enabled
    ? createHttpServer({
        host: initial.http.host,
        port: initial.http.port,
        logger,
        metrics,
        readiness,
        clock,
        adminTokenFile: adminTokenPath(spool.dir),
        limits: { maxConnections: initial.http.maxConnections, headersTimeoutMs: initial.http.headersTimeoutSeconds * 1000, idleTimeoutMs: initial.http.idleTimeoutSeconds * 1000 },
        status: () => ({ upstreams: health.snapshot(upstreamOrder()), tokens: tokens.snapshot() }),
        page: {
          asset: pageAssets(),
          overview: () =>
            buildOverview({
              spool: (limit) => spoolAdmin.overview(limit),
              upstreams: () => health.snapshot(upstreamOrder()),
              tokens: () => tokens.snapshot(),
              recent: () => recent.list(),
              totals: () => metrics.totals(),
              now: () => clock.now(),
            }),
        },
        admin: {
          list: () => spoolAdmin.list(),
          failedCount: () => spoolAdmin.failedCount(),
          listFailed: () => spoolAdmin.listFailed(),
          show: (qid) => spoolAdmin.show(qid),
          retry: async (qid, actor) => (await spoolAdmin.retry(qid, actor)) !== undefined,
          retryAll: async (actor) => (await spoolAdmin.retryAll(actor)).length,
          remove: (qid, actor) => spoolAdmin.remove(qid, actor),
          requeue: async (qid, actor) => (await spoolAdmin.requeue(qid, actor)) !== undefined,
          requeueAll: async (actor) => (await spoolAdmin.requeueAll(actor)).length,
          purgeFailed: async (olderThanMs, actor) => (await spoolAdmin.purgeFailed(olderThanMs, actor)).length,
        },
      })
    : undefined;

  let spoolLock: SpoolLock | undefined;

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
      // One relay per spool: taken before anything reads or cleans it (throws SpoolLockedError).
      spoolLock = await acquireSpoolLock(spool.dir, { command: 'relay', create: true });
      if (spoolLock.replaced !== undefined) logger.warn({ pid: spoolLock.replaced.pid, since: spoolLock.replaced.since }, 'spool.stale-lock-replaced');
      logStartupNotes(cfg, logger);
      const recovered = await spool.recover();
      logger.info({ spoolDir: spool.dir, queued: recovered.entries.length, removedTmp: recovered.removedTmp, quarantined: recovered.quarantined }, 'spool.recovered');
      const address = await listener.listen();
      logger.info({ host: cfg.listen.host, port: address.port, hostname: cfg.listen.hostname }, 'listening');
      dispatcher.start(recovered.entries);
      const purgeExpiredFailed = async () => {
        const days = config().delivery.failedRetentionDays;
        if (days > 0) await spoolAdmin.purgeFailed(days * 86_400_000, { by: 'relay' }).catch((err: unknown) => logger.error({ err }, 'failed.retention-error'));
      };
      await purgeExpiredFailed(); // start resolves once expired failed mail is gone
      retention = every(clock, FAILED_RETENTION_CHECK_MS, () => void purgeExpiredFailed());
      let httpPort: number | undefined;
      if (http !== undefined) {
        httpPort = (await http.listen()).port; // ops/http.ts logs http.listening
      }
      return { smtpPort: address.port, httpPort };
    },
    reload(next) {
      const plan = planReload(current, next);
      // Build the new set before touching anything: a reload that cannot build it (an
      // unreadable tls.ca, say) throws here and the running config stays as it was.
      const fresh = plan.rebuildUpstreams ? buildSet(next) : undefined;
      current = next;
      allowed = buildAllowList(next.listen.allowedClients);
      if (fresh !== undefined) {
        // sends already running on the old set may finish; new attempts use the new one
        const old = upstreams;
        upstreams = fresh;
        retired.add(old);
        clock.after(RETIRE_OLD_UPSTREAMS_MS, () => void retire(old));
      }
      // an upstream whose settings changed is tried at once: its down mark was about the old settings
      const clearedDown = plan.changedUpstreams.filter((name) => health.clearDown(name));
      logInsecureUpstreams(next.upstreams.filter((u) => plan.changedUpstreams.includes(u.name)), logger);
      const { changed, needsRestart } = plan;
      logger.info({ changed, ...(needsRestart.length > 0 ? { needsRestart } : {}), ...(clearedDown.length > 0 ? { clearedDown } : {}) }, 'config.changed');
      return [...changed];
    },
    async stop() {
      logger.info({ openConnections: listener.openConnections }, 'stopping');
      retention?.cancel();
      await listener.close();
      await dispatcher.stop();
      await upstreams.close();
      await Promise.allSettled([...retired].map(retire));
      await http?.close();
      await spoolLock?.release();
      logger.info({}, 'stopped');
      logger.flush?.();
    },
  };
}
