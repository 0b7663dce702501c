/**
 * The delivery conductor: claims due spool entries, runs one attempt for each (attempt.ts:
 * routes, failover, classification) and hands every try and the results to outcome/record.ts.
 * Retries happen here, without involving the client. It keeps only scheduling, the waiting
 * client and the recording.
 *
 * Does: react at once to new entries (an in-process signal, no polling), keep at most
 * `delivery.concurrency` messages in flight, hold each message exclusively while it is tried,
 * and run the first attempt of a message while its SMTP client waits (delivery.waitSeconds).
 * Never: loses a message: whatever happens, an entry stays in the spool until the recorder
 * removes it or moves it to failed/; an unexpected error defers it.
 * Assumes: one dispatcher per spool directory (the process owns its spool).
 */
import type { Clock, Timer } from '../core/clock.js';
import { DISPATCH_STOP_GRACE_MS, SPOOL_MARK_RETRY_MS, SPOOL_READ_RETRY_MS } from '../core/delays.js';
import type { DeliveryCheckpoint, DeliveryPort, FirstAttemptOutcome, Logger, RawSource, Spool, UpstreamSet } from '../core/ports.js';
import type { RecipientResult, SpoolEntry, SpoolMeta } from '../core/types.js';
import type { Config } from '../config/schema.js';
import type { AttemptConclusion, OutcomeRecorder } from '../outcome/record.js';
import type { RateLimiter } from '../routing/rate-limit.js';
import type { UpstreamHealth } from '../routing/upstream-health.js';
import { DueQueue } from '../spool/scheduler.js';
import { attemptDelivery, type AttemptReport } from './attempt.js';

export interface DispatchDeps {
  readonly config: () => Config;
  readonly spool: Spool;
  /** the current upstreams (swapped whole on reload); with no upstream configured, just the outbox */
  readonly upstreams: () => UpstreamSet;
  readonly health: UpstreamHealth;
  readonly rate: RateLimiter;
  readonly recorder: OutcomeRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** stop waiting for in-flight attempts on shutdown after this long */
  readonly stopGraceMs?: number;
}

interface Waiter {
  clientWaiting: boolean;
  /**
   * Set (synchronously) when the attempt starts recording its outcome with `clientWaiting`
   * read: from then on the client's reply must come from that outcome, never "queued" (a
   * message handed back to the client has left the spool; answering 250 would lose it).
   */
  settling: boolean;
  readonly neverQueue: boolean;
}

export class Dispatcher implements DeliveryPort {
  private readonly due = new DueQueue();
  private readonly inflight = new Map<string, Promise<void>>();
  private timer: Timer | undefined;
  private timerAtMs = Infinity;
  private running = false;

  constructor(private readonly deps: DispatchDeps) {}

  /** Schedules every recovered entry and starts working. */
  start(entries: readonly SpoolEntry[]): void {
    this.running = true;
    for (const e of entries) this.due.schedule(e.meta.qid, Date.parse(e.meta.nextAttemptAt) || this.deps.clock.now());
    this.pump();
  }

  /** Stops claiming new work; waits (bounded) for attempts in flight. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    const grace = this.deps.stopGraceMs ?? DISPATCH_STOP_GRACE_MS;
    let graceTimer: Timer | undefined;
    await Promise.race([
      Promise.allSettled([...this.inflight.values()]),
      new Promise((resolve) => (graceTimer = this.deps.clock.after(grace, () => resolve(undefined)))),
    ]);
    graceTimer?.cancel();
  }


  /** Retry now (admin request): moves the entry's next attempt to the present. */
  retryNow(qid: string): void {
    if (!this.inflight.has(qid)) this.due.schedule(qid, this.deps.clock.now());
    this.pump();
  }

  forget(qid: string): void {
    this.due.unschedule(qid);
  }

  async submit(entry: SpoolEntry, options: { waitMs: number; neverQueue: boolean }): Promise<FirstAttemptOutcome> {
    const qid = entry.meta.qid;
    if (!this.running || (options.waitMs <= 0 && !options.neverQueue)) {
      this.due.schedule(qid, this.deps.clock.now());
      this.pump();
      return { kind: 'queued' };
    }
    const waiter: Waiter = { clientWaiting: true, settling: false, neverQueue: options.neverQueue };
    const attempt = this.attempt(entry.meta, entry.source, waiter);
    // the entry stays claimed until its spool removal (which runs behind the reply) is done
    const tracked = attempt.then(
      (c) => (c.kind === 'done' ? c.settled : undefined),
      () => undefined,
    );
    this.inflight.set(qid, tracked);
    void tracked.finally(() => {
      this.inflight.delete(qid);
      this.pump();
    });
    if (options.neverQueue) return toFirstOutcome(await attempt);
    let timer: Timer | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = this.deps.clock.after(options.waitMs, () => resolve('timeout'))));
    const first = await Promise.race([attempt, timedOut]);
    timer?.cancel();
    if (first === 'timeout') {
      // the outcome is already being recorded for a waiting client: its reply must match it
      if (waiter.settling) return toFirstOutcome(await attempt);
      waiter.clientWaiting = false; // the client gets "queued"; whatever comes later is ours to keep
      return { kind: 'queued' };
    }
    return toFirstOutcome(first);
  }

  /** Claims due entries up to the concurrency cap; arms a timer for the next due time. */
  private pump(): void {
    if (!this.running) return;
    const config = this.deps.config();
    const free = config.delivery.concurrency - this.inflight.size;
    if (free > 0) {
      for (const qid of this.due.takeDue(this.deps.clock.now(), free)) {
        if (this.inflight.has(qid)) continue;
        const run = this.runQueued(qid).finally(() => {
          this.inflight.delete(qid);
          this.pump();
        });
        this.inflight.set(qid, run);
      }
    }
    this.arm();
  }

  private arm(): void {
    const next = this.due.nextDueAt();
    if (next === undefined || next >= this.timerAtMs) return;
    this.timer?.cancel();
    this.timerAtMs = next;
    this.timer = this.deps.clock.after(next - this.deps.clock.now(), () => {
      this.timer = undefined;
      this.timerAtMs = Infinity;
      this.pump();
    });
  }

  private async runQueued(qid: string): Promise<void> {
    let entry: SpoolEntry | undefined;
    try {
      entry = await this.deps.spool.read(qid);
    } catch (err) {
      this.deps.logger.error({ qid, err }, 'dispatch.read-failed');
      this.due.schedule(qid, this.deps.clock.now() + SPOOL_READ_RETRY_MS);
      return;
    }
    if (entry === undefined) return; // removed meanwhile (delivered, deleted by an admin)
    const conclusion = await this.attempt(entry.meta, entry.source, { clientWaiting: false, settling: false, neverQueue: false }).catch(() => undefined);
    if (conclusion?.kind === 'done') await conclusion.settled;
  }

  /** One delivery attempt for every pending recipient of a message. Never throws for delivery failures. */
  private async attempt(meta: SpoolMeta, raw: RawSource, waiter: Waiter): Promise<ConclusionWithResults> {
    const config = this.deps.config();
    const pending = meta.recipients.filter((r) => r.status === 'pending').map((r) => r.address);
    const checkpoints = checkpointStore(this.deps.spool, meta);
    let report: AttemptReport;
    try {
      report = await attemptDelivery(
        {
          upstreams: this.deps.upstreams(),
          health: this.deps.health,
          rate: this.deps.rate,
          clock: this.deps.clock,
          routes: config.routes,
          onAttempt: (a) => this.deps.recorder.attempted(meta, a),
          checkpoint: (upstream) => checkpoints.for(upstream),
        },
        { qid: meta.qid, envelope: { ...meta.envelope, rcptTo: pending }, facts: meta.facts, raw },
      );
    } catch (err) {
      // a bug or an unexpected fault: keep the message, retry later
      this.deps.logger.error({ qid: meta.qid, err }, 'dispatch.unexpected');
      const response = `internal error: ${(err as Error).message}`;
      report = { attempts: [], results: new Map(pending.map((r) => [r, { outcome: 'deferred', relay: undefined, response, dsn: '4.4.1' }])), countsAsAttempt: true };
    }
    const results = report.results;
    try {
      waiter.settling = true; // the same synchronous step as reading clientWaiting below
      // with the transports' latest checkpoints, which this write must not undo
      const conclusion = await this.deps.recorder.finish(checkpoints.latest(), results, {
        clientWaiting: waiter.clientWaiting,
        neverQueue: waiter.neverQueue,
        countsAsAttempt: report.countsAsAttempt,
        ...(report.notBeforeMs !== undefined ? { notBeforeMs: report.notBeforeMs } : {}),
      });
      if (conclusion.kind === 'deferred' && !conclusion.abandoned) this.due.schedule(meta.qid, conclusion.nextAttemptAtMs);
      return { ...conclusion, results };
    } catch (err) {
      // the spool could not be marked (disk full?): the entry is still queued; try again later
      this.deps.logger.error({ qid: meta.qid, err }, 'spool.mark-failed');
      const nextAttemptAtMs = this.deps.clock.now() + SPOOL_MARK_RETRY_MS;
      this.due.schedule(meta.qid, nextAttemptAtMs);
      return { kind: 'deferred', nextAttemptAtMs, abandoned: false, results };
    }
  }
}

type ConclusionWithResults = AttemptConclusion & { readonly results: ReadonlyMap<string, RecipientResult> };

function toFirstOutcome(c: ConclusionWithResults): FirstAttemptOutcome {
  const values = [...c.results.values()];
  if (c.kind === 'done' && c.removedForClient) {
    const first = values.find((v) => v.outcome === 'bounced');
    return { kind: 'rejected', smtpCode: first?.smtpCode ?? 550, response: first?.response ?? '550 5.0.0 Rejected by the upstream server' };
  }
  if (c.kind === 'done' && c.failed.length === 0) {
    const first = values.find((v) => v.outcome === 'sent');
    return { kind: 'delivered', relay: first?.relay ?? '', response: first?.response ?? '250 OK' };
  }
  if (c.kind === 'deferred' && c.abandoned) {
    return { kind: 'abandoned', response: values.find((v) => v.outcome === 'deferred')?.response ?? 'not delivered' };
  }
  // some recipients have it and others not: the client's 250 says how many of each
  const count = (outcome: RecipientResult['outcome']) => values.filter((v) => v.outcome === outcome).length;
  const delivered = count('sent');
  if (delivered > 0 && delivered < values.length) {
    const refusal = values.find((v) => v.outcome === 'bounced')?.response;
    return { kind: 'partial', delivered, refused: count('bounced'), queued: count('deferred'), refusal };
  }
  return { kind: 'queued' };
}

interface CheckpointStore {
  /** the entry's metadata with the checkpoints saved during this attempt */
  latest(): SpoolMeta;
  for(upstream: string): DeliveryCheckpoint;
}

/** Transports' checkpoints for one attempt, written into the spool entry as they are saved (in order). */
function checkpointStore(spool: Spool, initial: SpoolMeta): CheckpointStore {
  let latest = initial;
  let writes: Promise<void> = Promise.resolve();
  return {
    latest: () => latest,
    for: (upstream) => ({
      get saved() {
        return latest.checkpoints?.[upstream];
      },
      save(state) {
        const { [upstream]: _dropped, ...others } = latest.checkpoints ?? {};
        const checkpoints = state === undefined ? others : { ...others, [upstream]: { ...state } };
        const { checkpoints: _old, ...rest } = latest;
        latest = Object.keys(checkpoints).length === 0 ? rest : { ...rest, checkpoints };
        const next = latest;
        writes = writes.then(() => spool.update(next));
        return writes;
      },
    }),
  };
}
