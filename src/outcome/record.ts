/**
 * Outcome recording: what one delivery attempt means for the message, the upstream and the log.
 *
 * Does: write one `delivery` log line per recipient per upstream try (the Postfix line admins
 * know: qid, from, to, relay, attempt, delayMs, dsn, status, response); feed upstream health;
 * after an attempt, mark the spool: remove when done, move to failed/ with the reason when
 * undeliverable or expired, otherwise record attempts/nextAttemptAt/lastError for the retry.
 * Never: drops a message silently; logs message content.
 * Assumes: the caller (the dispatcher) holds the message exclusively while it records.
 */
import type { Clock } from '../core/clock.js';
import type { FailureReason, Logger, Spool } from '../core/ports.js';
import type { RecipientState, SpoolMeta } from '../core/types.js';

export type DeliveryStatus = 'sent' | 'failover' | 'deferred' | 'bounced';

export interface RecipientResult {
  readonly status: 'delivered' | 'failed' | 'deferred';
  readonly relay: string | undefined;
  readonly response: string;
  readonly dsn: string;
  readonly smtpCode?: number | undefined;
}

export interface TryReport {
  readonly meta: SpoolMeta;
  readonly recipients: readonly string[];
  readonly relay: string;
  readonly status: DeliveryStatus;
  readonly dsn: string;
  readonly response: string;
  readonly durationMs: number;
  /** for a failed try: the error code (nodemailer's, e.g. EAUTH, ESOCKET) and what it means for the admin */
  readonly errorCode?: string | undefined;
  readonly reason?: string | undefined;
}

export type AttemptConclusion =
  | {
      readonly kind: 'done';
      readonly delivered: readonly string[];
      readonly failed: readonly string[];
      readonly removedForClient: boolean;
      /** the spool entry's removal, still running: the conclusion is final before it ends */
      readonly settled?: Promise<void>;
    }
  | { readonly kind: 'failed'; readonly delivered: readonly string[]; readonly failed: readonly string[] }
  | { readonly kind: 'deferred'; readonly nextAttemptAtMs: number; readonly abandoned: boolean };

export interface RecordDeps {
  readonly spool: Spool;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly health: { markSuccess(name: string): void; markFailure(name: string, reason: string, markDown: boolean): void };
  readonly backoffMs: (attempts: number) => number;
  readonly maxLifetimeHours: () => number;
  readonly trace: () => 'off' | 'summary' | 'detail';
  readonly metrics?: {
    delivered(relay: string, recipients: number, latencySeconds: number): void;
    deferred(relay: string, recipients: number): void;
    failed(relay: string, recipients: number): void;
  };
}

export class OutcomeRecorder {
  constructor(private readonly deps: RecordDeps) {}

  /** One upstream try for some recipients: log lines and upstream health. */
  tried(report: TryReport, health: { readonly ok: boolean; readonly reason?: string; readonly markDown?: boolean }): void {
    if (health.ok) this.deps.health.markSuccess(report.relay);
    else this.deps.health.markFailure(report.relay, health.reason ?? report.response, health.markDown ?? false);
    const delayMs = this.deps.clock.now() - Date.parse(report.meta.receivedAt);
    if (report.status === 'sent') this.deps.metrics?.delivered(report.relay, report.recipients.length, delayMs / 1000);
    else if (report.status === 'bounced') this.deps.metrics?.failed(report.relay, report.recipients.length);
    else this.deps.metrics?.deferred(report.relay, report.recipients.length);
    if (this.deps.trace() === 'off') return;
    const log = this.deps.logger.child({ qid: report.meta.qid });
    const level = report.status === 'sent' ? 'info' : 'warn';
    for (const to of report.recipients) {
      log[level](
        {
          from: report.meta.envelope.mailFrom,
          to,
          relay: report.relay,
          attempt: report.meta.attempts + 1,
          delayMs,
          durationMs: report.durationMs,
          ...(report.errorCode !== undefined ? { errorCode: report.errorCode } : {}),
          ...(report.reason !== undefined ? { reason: report.reason } : {}),
          dsn: report.dsn,
          status: report.status,
          response: report.response,
        },
        'delivery',
      );
    }
  }

  /**
   * Marks the spool after an attempt. `clientWaiting`: the SMTP client is still waiting for its
   * DATA reply, so a message refused for every recipient is handed back to it (removed, the
   * client gets the 5xx) instead of moving to failed/. `neverQueue` (waitSeconds -1): a message
   * not delivered is removed and the client gets 451.
   */
  async finish(
    meta: SpoolMeta,
    results: ReadonlyMap<string, RecipientResult>,
    options: { readonly clientWaiting: boolean; readonly neverQueue: boolean; readonly countsAsAttempt: boolean; readonly notBeforeMs?: number },
  ): Promise<AttemptConclusion> {
    const now = this.deps.clock.now();
    const log = this.deps.logger.child({ qid: meta.qid });
    const recipients: RecipientState[] = meta.recipients.map((r) => {
      const res = r.status === 'pending' ? results.get(r.address) : undefined;
      if (res === undefined || res.status === 'deferred') return r;
      return { address: r.address, status: res.status, ...(res.relay !== undefined ? { relay: res.relay } : {}), response: res.response };
    });
    const delivered = recipients.filter((r) => r.status === 'delivered').map((r) => r.address);
    const failed = recipients.filter((r) => r.status === 'failed');
    const pending = recipients.filter((r) => r.status === 'pending');
    const lastError = [...results.values()].find((r) => r.status !== 'delivered')?.response ?? meta.lastError;

    if (pending.length === 0) {
      if (failed.length === 0) {
        // Every recipient is with an upstream: the client may hear so now. The entry's removal
        // runs behind the reply; if it fails (or a crash comes first) the message is delivered
        // again later, which at-least-once allows: nothing can be lost this way.
        const settled = this.deps.spool.remove(meta.qid).catch((err: unknown) => log.error({ err }, 'spool.remove-failed'));
        return { kind: 'done', delivered, failed: [], removedForClient: false, settled };
      }
      if (options.clientWaiting && delivered.length === 0) {
        await this.deps.spool.remove(meta.qid);
        log.warn({ recipients: failed.length, response: failed[0]?.response }, 'returned-to-client');
        return { kind: 'done', delivered, failed: failed.map((f) => f.address), removedForClient: true };
      }
      await this.moveToFailed(meta, recipients, failed, 'rejected by the upstream', now);
      return { kind: 'failed', delivered, failed: failed.map((f) => f.address) };
    }

    if (options.neverQueue && options.clientWaiting) {
      await this.deps.spool.remove(meta.qid);
      log.warn({ recipients: pending.length, lastError }, 'abandoned');
      return { kind: 'deferred', nextAttemptAtMs: now, abandoned: true };
    }

    const attempts = meta.attempts + (options.countsAsAttempt ? 1 : 0);
    const ageHours = (now - Date.parse(meta.receivedAt)) / 3_600_000;
    if (ageHours >= this.deps.maxLifetimeHours()) {
      const expired = pending.map((p) => ({ ...p, status: 'failed' as const, response: `expired after ${Math.round(ageHours)} h in the queue; last error: ${lastError ?? 'none'}` }));
      const all = recipients.map((r) => expired.find((e) => e.address === r.address) ?? r);
      await this.moveToFailed({ ...meta, attempts }, all, [...failed, ...expired], 'maximum queue lifetime (delivery.retry.maxLifetimeHours) exceeded', now);
      return { kind: 'failed', delivered, failed: [...failed, ...expired].map((f) => f.address) };
    }

    const nextAttemptAtMs = Math.max(options.notBeforeMs ?? 0, options.countsAsAttempt ? now + this.deps.backoffMs(attempts) : now);
    await this.deps.spool.update({
      ...meta,
      recipients,
      attempts,
      nextAttemptAt: new Date(nextAttemptAtMs).toISOString(),
      ...(lastError !== undefined ? { lastError } : {}),
    });
    log.info({ pending: pending.length, attempts, nextAttemptAt: new Date(nextAttemptAtMs).toISOString(), lastError }, 'deferred');
    return { kind: 'deferred', nextAttemptAtMs, abandoned: false };
  }

  private async moveToFailed(meta: SpoolMeta, recipients: readonly RecipientState[], failed: readonly RecipientState[], reason: string, now: number): Promise<void> {
    const failure: FailureReason = {
      reason,
      recipients: failed.map((f) => ({ address: f.address, response: f.response ?? '' })),
      failedAt: new Date(now).toISOString(),
    };
    await this.deps.spool.update({ ...meta, recipients });
    await this.deps.spool.fail(meta.qid, failure);
    this.deps.logger.child({ qid: meta.qid }).error({ from: meta.envelope.mailFrom, reason, recipients: failure.recipients }, 'failed');
  }
}
