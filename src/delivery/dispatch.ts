/**
 * The delivery conductor: claims due spool entries, routes their recipients, tries each
 * route's upstreams in order, classifies every failure (delivery/classify.ts) and hands the
 * results to outcome/record.ts. Retries happen here, without involving the client.
 *
 * Does: react at once to new entries (an in-process signal, no polling), keep at most
 * `delivery.concurrency` messages in flight, hold each message exclusively while it is tried,
 * and run the first attempt of a message while its SMTP client waits (delivery.waitSeconds).
 * Never: loses a message: whatever happens, an entry stays in the spool until the recorder
 * removes it or moves it to failed/; an unexpected error defers it.
 * Assumes: one dispatcher per spool directory (the process owns its spool).
 */
import type { Clock } from '../core/clock.js';
import type { DeliveryPort, FirstAttemptOutcome, Logger, RawSource, Spool, Upstream, UpstreamSet } from '../core/ports.js';
import type { SpoolEntry, SpoolMeta } from '../core/types.js';
import type { Config } from '../config/schema.js';
import { overrideSender } from '../message/sender-override.js';
import type { AttemptConclusion, OutcomeRecorder, RecipientResult } from '../outcome/record.js';
import { fitsLimits } from '../routing/limits.js';
import type { RateLimiter } from '../routing/rate-limit.js';
import { planRoutes, type RouteGroup } from '../routing/route.js';
import type { UpstreamHealth } from '../routing/upstream-health.js';
import { DueQueue } from '../spool/scheduler.js';
import { classifyError, classifyRejection, toErrorShape } from './classify.js';

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
  private timer: NodeJS.Timeout | undefined;
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
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const grace = this.deps.stopGraceMs ?? 15_000;
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inflight.values()]),
      new Promise((resolve) => (graceTimer = setTimeout(resolve, grace).unref())),
    ]);
    if (graceTimer !== undefined) clearTimeout(graceTimer);
  }


  /** Retry now (admin request): moves the entry's next attempt to the present. */
  retryNow(qid: string): void {
    if (!this.inflight.has(qid)) this.due.schedule(qid, this.deps.clock.now());
    this.pump();
  }

  forget(qid: string): void {
    this.due.unschedule(qid);
  }

  async submit(entry: SpoolEntry, raw: Buffer | undefined, options: { waitMs: number; neverQueue: boolean }): Promise<FirstAttemptOutcome> {
    const qid = entry.meta.qid;
    if (!this.running || (options.waitMs <= 0 && !options.neverQueue)) {
      this.due.schedule(qid, this.deps.clock.now());
      this.pump();
      return { kind: 'queued' };
    }
    const waiter: Waiter = { clientWaiting: true, settling: false, neverQueue: options.neverQueue };
    const attempt = this.attempt(entry.meta, raw ?? { path: entry.emlPath }, waiter);
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
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.waitMs)));
    const first = await Promise.race([attempt, timedOut]);
    clearTimeout(timer);
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
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAtMs = next;
    const delay = Math.max(0, Math.min(next - this.deps.clock.now(), 2 ** 31 - 1));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAtMs = Infinity;
      this.pump();
    }, delay);
    this.timer.unref?.();
  }

  private async runQueued(qid: string): Promise<void> {
    let entry: SpoolEntry | undefined;
    try {
      entry = await this.deps.spool.read(qid);
    } catch (err) {
      this.deps.logger.error({ qid, err }, 'dispatch.read-failed');
      this.due.schedule(qid, this.deps.clock.now() + 60_000);
      return;
    }
    if (entry === undefined) return; // removed meanwhile (delivered, deleted by an admin)
    const conclusion = await this.attempt(entry.meta, { path: entry.emlPath }, { clientWaiting: false, settling: false, neverQueue: false }).catch(() => undefined);
    if (conclusion?.kind === 'done') await conclusion.settled;
  }

  /** One delivery attempt for every pending recipient of a message. Never throws for delivery failures. */
  private async attempt(meta: SpoolMeta, raw: RawSource, waiter: Waiter): Promise<AttemptConclusion> {
    const config = this.deps.config();
    const pending = meta.recipients.filter((r) => r.status === 'pending').map((r) => r.address);
    const upstreams = this.deps.upstreams();
    const groups = planRoutes(pending, config.routes, upstreams.names, (u) => this.deps.health.isDown(u));
    const results = new Map<string, RecipientResult>();
    let notBeforeMs: number | undefined;
    let countsAsAttempt = false;
    try {
      for (const group of groups) {
        const outcome = await this.tryGroup(meta, raw, group, upstreams, results);
        if (outcome.rateLimitedUntilMs !== undefined) notBeforeMs = Math.max(notBeforeMs ?? 0, outcome.rateLimitedUntilMs);
        if (outcome.tried) countsAsAttempt = true;
      }
      // Nothing was sent and nothing waits for a rate slot: every upstream of some route was
      // skipped (over its own limits, or no transport). That is a failed attempt too, so the
      // backoff applies; otherwise the entry would be due again at once and spin in a loop.
      if (!countsAsAttempt && notBeforeMs === undefined && groups.length > 0) countsAsAttempt = true;
    } catch (err) {
      // a bug or an unexpected fault: keep the message, retry later
      this.deps.logger.error({ qid: meta.qid, err }, 'dispatch.unexpected');
      countsAsAttempt = true;
      for (const rcpt of pending) if (!results.has(rcpt)) results.set(rcpt, deferred(undefined, `internal error: ${(err as Error).message}`));
    }
    try {
      waiter.settling = true; // the same synchronous step as reading clientWaiting below
      const conclusion = await this.deps.recorder.finish(meta, results, {
        clientWaiting: waiter.clientWaiting,
        neverQueue: waiter.neverQueue,
        countsAsAttempt,
        ...(notBeforeMs !== undefined ? { notBeforeMs } : {}),
      });
      if (conclusion.kind === 'deferred' && !conclusion.abandoned) this.due.schedule(meta.qid, conclusion.nextAttemptAtMs);
      return withResults(conclusion, results);
    } catch (err) {
      // the spool could not be marked (disk full?): the entry is still queued; try again later
      this.deps.logger.error({ qid: meta.qid, err }, 'spool.mark-failed');
      this.due.schedule(meta.qid, this.deps.clock.now() + 30_000);
      return { kind: 'deferred', nextAttemptAtMs: this.deps.clock.now() + 30_000, abandoned: false };
    }
  }

  /** Tries one route group's upstreams in order until every recipient has a result. */
  private async tryGroup(
    meta: SpoolMeta,
    raw: RawSource,
    group: RouteGroup,
    upstreams: UpstreamSet,
    results: Map<string, RecipientResult>,
  ): Promise<{ tried: boolean; rateLimitedUntilMs?: number }> {
    let remaining = [...group.recipients];
    let last: RecipientResult = deferred(undefined, 'no upstream could take the message');
    let tried = false;
    for (const name of group.upstreams) {
      if (remaining.length === 0) break;
      const upstream = upstreams.get(name);
      if (upstream === undefined) continue;
      if (upstream.settings.limits !== undefined && !fitsLimits(meta.facts, upstream.settings.limits)) {
        last = deferred(name, `skipped ${name}: message exceeds its attachment limits`);
        this.deps.logger.info({ qid: meta.qid, relay: name }, 'upstream.skipped-limits');
        continue;
      }
      const slot = this.deps.rate.tryTake(name, upstream.settings.maxMessagesPerMinute);
      if (!slot.ok) {
        for (const rcpt of remaining) results.set(rcpt, deferred(name, `rate limit of ${name} reached (maxMessagesPerMinute)`));
        return { tried, rateLimitedUntilMs: slot.retryAtMs };
      }
      tried = true;
      const sent = await this.sendOnce(meta, raw, remaining, upstream);
      for (const [rcpt, res] of sent.results) results.set(rcpt, res);
      remaining = sent.remaining;
      last = sent.last ?? last;
      if (sent.stop) break;
    }
    for (const rcpt of remaining) if (!results.has(rcpt) || results.get(rcpt)!.status === 'deferred') results.set(rcpt, last);
    return { tried };
  }

  private async sendOnce(
    meta: SpoolMeta,
    raw: RawSource,
    recipients: readonly string[],
    upstream: Upstream,
  ): Promise<{ results: Map<string, RecipientResult>; remaining: string[]; last?: RecipientResult; stop: boolean }> {
    const results = new Map<string, RecipientResult>();
    const startedMs = this.deps.clock.now();
    const { name, transport } = upstream;
    const from = upstream.settings.from;
    const mailFrom = from ?? meta.envelope.mailFrom;
    const body = from !== undefined ? await overrideSender(raw, from) : raw;
    const report = (
      recipientsTried: readonly string[],
      status: 'sent' | 'failover' | 'deferred' | 'bounced',
      dsn: string,
      response: string,
      health: { ok: boolean; reason?: string; markDown?: boolean },
      failure?: { errorCode: string | undefined; reason: string },
    ) =>
      this.deps.recorder.tried(
        { meta, recipients: recipientsTried, relay: name, status, dsn, response, durationMs: this.deps.clock.now() - startedMs, ...(failure ?? {}) },
        health,
      );
    try {
      const info = await transport.send({
        qid: meta.qid,
        envelope: { ...meta.envelope, mailFrom, rcptTo: recipients },
        raw: body,
        sizeBytes: meta.sizeBytes,
      });
      const accepted = new Set(info.accepted.map((a) => a.toLowerCase()));
      const acceptedList = recipients.filter((r) => accepted.has(r.toLowerCase()));
      if (acceptedList.length > 0) report(acceptedList, 'sent', '2.0.0', info.response, { ok: true });
      for (const r of acceptedList) results.set(r, { status: 'delivered', relay: name, response: info.response, dsn: '2.0.0' });
      const remaining: string[] = [];
      let last: RecipientResult | undefined;
      for (const rejection of info.rejected) {
        const rcpt = recipients.find((r) => r.toLowerCase() === rejection.address.toLowerCase()) ?? rejection.address;
        const decision = classifyRejection(rejection);
        if (decision.action === 'final') {
          report([rcpt], 'bounced', decision.dsn, rejection.response, { ok: true });
          results.set(rcpt, { status: 'failed', relay: name, response: rejection.response, dsn: decision.dsn, smtpCode: rejection.responseCode });
        } else {
          report([rcpt], decision.action === 'failover' ? 'failover' : 'deferred', decision.dsn, rejection.response, { ok: true });
          last = deferred(name, rejection.response, decision.dsn);
          remaining.push(rcpt);
        }
      }
      return { results, remaining, ...(last !== undefined ? { last } : {}), stop: false };
    } catch (err) {
      const decision = classifyError(err);
      const response = describeError(err);
      const failure = { errorCode: toErrorShape(err).code, reason: decision.reason };
      const health = { ok: false, reason: decision.reason, markDown: decision.markDown };
      if (decision.action === 'final') {
        report(recipients, 'bounced', decision.dsn, response, { ok: true }, failure);
        const code = (err as { responseCode?: number }).responseCode;
        for (const r of recipients) results.set(r, { status: 'failed', relay: name, response, dsn: decision.dsn, smtpCode: code });
        return { results, remaining: [], stop: true };
      }
      report(recipients, decision.action === 'failover' ? 'failover' : 'deferred', decision.dsn, response, decision.action === 'failover' ? health : { ok: true }, failure);
      const last = deferred(name, `${name}: ${response}`, decision.dsn);
      return { results, remaining: [...recipients], last, stop: decision.action === 'retry' };
    }
  }
}

function deferred(relay: string | undefined, response: string, dsn = '4.4.1'): RecipientResult {
  return { status: 'deferred', relay, response, dsn };
}

/** A one-line description of a delivery error, for logs and spool metadata (no secrets: nodemailer masks AUTH). */
export function describeError(err: unknown): string {
  const e = err as { code?: string; response?: string; responseCode?: number; command?: string; message?: string };
  if (typeof e.response === 'string' && e.response !== '') return e.command ? `${e.response} (in reply to ${e.command})` : e.response;
  return [e.code, e.message].filter(Boolean).join(': ') || String(err);
}

type ConclusionWithResults = AttemptConclusion & { readonly results: ReadonlyMap<string, RecipientResult> };

function withResults(c: AttemptConclusion, results: ReadonlyMap<string, RecipientResult>): ConclusionWithResults {
  return { ...c, results };
}

function toFirstOutcome(c: AttemptConclusion | ConclusionWithResults): FirstAttemptOutcome {
  const results = 'results' in c ? c.results : new Map<string, RecipientResult>();
  const values = [...results.values()];
  if (c.kind === 'done' && c.removedForClient) {
    const first = values.find((v) => v.status === 'failed');
    return { kind: 'rejected', smtpCode: first?.smtpCode ?? 550, response: first?.response ?? '550 5.0.0 Rejected by the upstream server' };
  }
  if (c.kind === 'done' && c.failed.length === 0) {
    const first = values.find((v) => v.status === 'delivered');
    return { kind: 'delivered', relay: first?.relay ?? '', response: first?.response ?? '250 OK' };
  }
  if (c.kind === 'deferred' && c.abandoned) {
    return { kind: 'abandoned', response: values.find((v) => v.status === 'deferred')?.response ?? 'not delivered' };
  }
  return { kind: 'queued' };
}
