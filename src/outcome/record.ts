/**
 * Outcome recording: what one delivery attempt means for the message, the upstream and the log.
 *
 * Does: write one `delivery` log line per recipient per upstream try (the Postfix line admins
 * know: qid, from, to, relay, attempt, delayMs, dsn, status, response); feed upstream health
 * (only a sent recipient marks an upstream healthy) and metrics, all in the Outcome words;
 * after an attempt, mark the spool: remove when done, move to failed/ with the reason when
 * undeliverable or expired (and tell the notifier, which sends the failure notices), otherwise
 * record attempts/nextAttemptAt/lastError for the retry.
 * Never: drops a message silently; logs message content.
 * Assumes: the caller (the dispatcher) holds the message exclusively while it records.
 */
import type { Clock } from '../core/clock.js';
import type { FailureNotifier, FailureReason, Logger, Spool } from '../core/ports.js';
import type { Attempt, Outcome, RecipientResult, RecipientState, SpoolMeta, Try } from '../core/types.js';

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
  readonly metrics?: { outcome(outcome: Outcome, relay: string, recipients: number, latencySeconds: number): void };
  /** every upstream try (the status page's recent deliveries) */
  readonly onTry?: (meta: SpoolMeta, attempt: Try) => void;
  /** told after a message moved to failed/ (failure notices); its problems are logged, never thrown */
  readonly notifier?: FailureNotifier;
}

export class OutcomeRecorder {
  constructor(private readonly deps: RecordDeps) {}

  /**
   * One step of an attempt, as it happens: a try gives one delivery log line per recipient,
   * upstream health and metrics; a skip over the upstream's attachment limits is logged.
   * Health: only a sent recipient marks the upstream healthy; a try that failed as a whole
   * (failover or deferred) records the failure (and takes the upstream out for a while when
   * the rule says so); a per-recipient refusal or a bounce says nothing about the upstream.
   */
  attempted(meta: SpoolMeta, attempt: Attempt): void {
    const log = this.deps.logger.child({ qid: meta.qid });
    if (attempt.kind === 'skip') {
      if (attempt.why === 'limits') log.info({ relay: attempt.relay }, 'upstream.skipped-limits');
      return;
    }
    this.deps.onTry?.(meta, attempt);
    if (attempt.outcome === 'sent') this.deps.health.markSuccess(attempt.relay);
    // the upstream's own answer (or the connection error), not the rule's sentence: /status shows it
    else if (attempt.failure !== undefined) this.deps.health.markFailure(attempt.relay, attempt.response || (attempt.reason ?? ''), attempt.failure.markDown);
    const delayMs = this.deps.clock.now() - Date.parse(meta.receivedAt);
    this.deps.metrics?.outcome(attempt.outcome, attempt.relay, attempt.recipients.length, delayMs / 1000);
    if (this.deps.trace() === 'off') return;
    const level = attempt.outcome === 'sent' ? 'info' : 'warn';
    for (const to of attempt.recipients) {
      log[level](
        {
          to,
          ...senders(meta),
          relay: attempt.relay,
          attempt: meta.attempts + 1,
          delayMs,
          durationMs: attempt.durationMs,
          ...(attempt.failure !== undefined ? { errorCode: attempt.failure.errorCode, reason: attempt.reason } : {}),
          dsn: attempt.dsn,
          status: attempt.outcome,
          response: attempt.response,
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
      if (res === undefined || res.outcome === 'deferred') return r;
      return { address: r.address, status: res.outcome === 'sent' ? 'delivered' : 'failed', ...(res.relay !== undefined ? { relay: res.relay } : {}), response: res.response };
    });
    const delivered = recipients.filter((r) => r.status === 'delivered').map((r) => r.address);
    const failed = recipients.filter((r) => r.status === 'failed');
    const pending = recipients.filter((r) => r.status === 'pending');
    const lastError = [...results.values()].find((r) => r.outcome !== 'sent')?.response ?? meta.lastError;

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
    const log = this.deps.logger.child({ qid: meta.qid });
    log.error({ ...senders(meta), reason, recipients: failure.recipients }, 'failed');
    await this.deps.notifier?.failed({ ...meta, recipients }, failure).catch((err: unknown) => log.error({ err }, 'notice.failed'));
  }
}

/** The sender as sent upstream and as the application gave it (envelope and header From), for every line about a message. */
export function senders(meta: SpoolMeta): { from: string; originalSender?: string; originalFrom?: string } {
  return {
    from: meta.envelope.mailFrom,
    ...(meta.originalMailFrom !== undefined ? { originalSender: meta.originalMailFrom } : {}),
    ...(meta.facts.from !== undefined ? { originalFrom: meta.facts.from } : {}),
  };
}
