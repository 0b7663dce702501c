/**
 * One delivery attempt for a message: route groups → each group's upstreams in order (failover)
 * → every failure classified (classify.ts). The one copy of this loop: the dispatcher runs it for
 * queued mail, `send-test` runs it for its test message, and a new protocol takes part by
 * implementing the transport interface (core/ports.ts), nothing here.
 *
 * Does: plan the recipients' routes (routing/route.ts, health order), skip an upstream over its
 *   own attachment limits, wait for an upstream's rate cap (the message stays queued), send the
 *   final bytes (with the upstream's required sender), and return every try and skip in order
 *   plus each recipient's result. Each try is also handed to `onAttempt` as soon as it ends
 *   (the dispatcher records it then: log line, health, metrics).
 * Never: touches the spool, logs, or changes health or rate state other than taking a rate slot
 *   (the caller records); throws for a delivery failure (a thrown error is a bug, and the caller
 *   keeps the message).
 * Assumes: `message.envelope.rcptTo` holds only the recipients still pending.
 */
import type { Clock } from '../core/clock.js';
import type { DeliveryCheckpoint, RawSource, UpstreamSet } from '../core/ports.js';
import type { Attempt, Envelope, Outcome, RecipientResult, SpoolMeta, Try } from '../core/types.js';
import type { RouteConfig } from '../config/schema.js';
import { rawHeader, rawLength, withHeader } from '../core/raw-source.js';
import { overrideSender } from '../message/sender-override.js';
import { fitsLimits } from '../routing/limits.js';
import { planRoutes } from '../routing/route.js';
import { classifyError, classifyRejection, toErrorShape } from './classify.js';

/** What the attempt loop reads: the upstreams, health (for the order), the rate caps, the clock and the routes. */
export interface AttemptPorts {
  readonly upstreams: UpstreamSet;
  readonly health: { isDown(upstream: string): boolean };
  readonly rate: { tryTake(upstream: string, maxPerMinute: number | undefined): { ok: true } | { ok: false; retryAtMs: number } };
  readonly clock: Clock;
  readonly routes: readonly RouteConfig[];
  /** each try or skip as soon as it happened */
  readonly onAttempt?: (attempt: Attempt) => void;
  /** where an upstream's transport keeps its progress on this message (the spool entry; none for send-test) */
  readonly checkpoint?: (upstream: string) => DeliveryCheckpoint;
}

export interface AttemptMessage {
  readonly qid: string;
  /** rcptTo: the recipients still pending */
  readonly envelope: Envelope;
  /** for per-upstream attachment limits */
  readonly facts: SpoolMeta['facts'];
  /** the final bytes (their size is what the upstream is told: rawLength) */
  readonly raw: RawSource;
}

export interface AttemptReport {
  readonly attempts: readonly Attempt[];
  /** every recipient of the message's envelope has one */
  readonly results: ReadonlyMap<string, RecipientResult>;
  /** whether this counts as a failed attempt for the backoff (false when only a rate cap held it back) */
  readonly countsAsAttempt: boolean;
  /** not before this time (a rate cap, or an upstream's Retry-After): the next attempt waits at least until then */
  readonly notBeforeMs?: number;
}

const deferred = (relay: string | undefined, response: string, dsn = '4.4.1'): RecipientResult => ({ outcome: 'deferred', relay, response, dsn });

export async function attemptDelivery(ports: AttemptPorts, message: AttemptMessage): Promise<AttemptReport> {
  const attempts: Attempt[] = [];
  const record = (a: Attempt): void => {
    attempts.push(a);
    ports.onAttempt?.(a);
  };
  const groups = planRoutes(message.envelope.rcptTo, ports.routes, ports.upstreams.names, (u) => ports.health.isDown(u));
  const results = new Map<string, RecipientResult>();
  /**
   * the bytes with an upstream's required sender, once per sender for this attempt: only the
   * header block changes (the body range of a spooled message is not read)
   */
  const bytesBySender = new Map<string, RawSource>();
  const bytesFor = (from: string | undefined): RawSource => {
    if (from === undefined) return message.raw;
    let bytes = bytesBySender.get(from);
    if (bytes === undefined) bytesBySender.set(from, (bytes = withHeader(message.raw, overrideSender(rawHeader(message.raw), from))));
    return bytes;
  };
  let notBeforeMs: number | undefined;
  let tried = false;

  for (const group of groups) {
    let remaining = [...group.recipients];
    let last = deferred(undefined, 'no upstream could take the message');
    for (const name of group.upstreams) {
      if (remaining.length === 0) break;
      const upstream = ports.upstreams.get(name);
      if (upstream === undefined) continue;
      const { settings, transport } = upstream;
      if (settings.limits !== undefined && !fitsLimits(message.facts, settings.limits)) {
        last = deferred(name, `skipped ${name}: message exceeds its attachment limits`);
        record({ kind: 'skip', relay: name, recipients: remaining, why: 'limits' });
        continue;
      }
      const slot = ports.rate.tryTake(name, settings.maxMessagesPerMinute);
      if (!slot.ok) {
        for (const rcpt of remaining) results.set(rcpt, deferred(name, `rate limit of ${name} reached (maxMessagesPerMinute)`));
        record({ kind: 'skip', relay: name, recipients: remaining, why: 'rate', retryAtMs: slot.retryAtMs });
        notBeforeMs = Math.max(notBeforeMs ?? 0, slot.retryAtMs);
        remaining = [];
        break;
      }
      tried = true;
      const startedMs = ports.clock.now();
      const tryOf = (recipients: readonly string[], outcome: Outcome, dsn: string, response: string, reason?: string, failure?: Try['failure']): Try => ({
        kind: 'try',
        relay: name,
        recipients,
        outcome,
        dsn,
        response,
        durationMs: ports.clock.now() - startedMs,
        ...(reason === undefined ? {} : { reason }),
        ...(failure === undefined ? {} : { failure }),
      });
      const raw = bytesFor(settings.from);
      try {
        const report = await transport.send({
          qid: message.qid,
          envelope: { ...message.envelope, mailFrom: settings.from ?? message.envelope.mailFrom, rcptTo: remaining },
          raw,
          // what is really sent (a rewritten From changes the header's length)
          sizeBytes: rawLength(raw),
          ...(ports.checkpoint === undefined ? {} : { checkpoint: ports.checkpoint(name) }),
        });
        const accepted = new Set(report.accepted.map((a) => a.toLowerCase()));
        const acceptedList = remaining.filter((r) => accepted.has(r.toLowerCase()));
        if (acceptedList.length > 0) record(tryOf(acceptedList, 'sent', '2.0.0', report.response));
        for (const r of acceptedList) results.set(r, { outcome: 'sent', relay: name, response: report.response, dsn: '2.0.0' });
        const next: string[] = [];
        for (const rejection of report.rejected) {
          const rcpt = remaining.find((r) => r.toLowerCase() === rejection.address.toLowerCase()) ?? rejection.address;
          const decision = classifyRejection(rejection);
          record(tryOf([rcpt], decision.action, decision.dsn, rejection.response, decision.reason));
          if (decision.action === 'bounced') {
            results.set(rcpt, { outcome: 'bounced', relay: name, response: rejection.response, dsn: decision.dsn, smtpCode: rejection.responseCode });
          } else {
            last = deferred(name, rejection.response, decision.dsn);
            next.push(rcpt);
          }
        }
        remaining = next;
      } catch (err) {
        const decision = classifyError(err);
        const response = describeError(err);
        record(tryOf(remaining, decision.action, decision.dsn, response, decision.reason, { errorCode: toErrorShape(err).code, markDown: decision.markDown }));
        if (decision.action === 'bounced') {
          const smtpCode = toErrorShape(err).responseCode;
          for (const r of remaining) results.set(r, { outcome: 'bounced', relay: name, response, dsn: decision.dsn, smtpCode });
          remaining = [];
          break;
        }
        last = deferred(name, `${name}: ${response}`, decision.dsn);
        // an upstream that said when to come back (Graph 429/503 Retry-After): not before then
        const retryAfterMs = (err as { retryAfterMs?: unknown }).retryAfterMs;
        if (decision.action === 'deferred' && typeof retryAfterMs === 'number') notBeforeMs = Math.max(notBeforeMs ?? 0, ports.clock.now() + retryAfterMs);
        if (decision.action === 'deferred') break;
      }
    }
    for (const rcpt of remaining) if (results.get(rcpt)?.outcome !== 'sent' && results.get(rcpt)?.outcome !== 'bounced') results.set(rcpt, last);
  }
  // Nothing was sent and nothing waits for a rate slot: every upstream of some route was
  // skipped (over its own limits, or unknown). That is a failed attempt too, so the backoff
  // applies; otherwise the entry would be due again at once and spin in a loop.
  const countsAsAttempt = tried || (notBeforeMs === undefined && groups.length > 0);
  return { attempts, results, countsAsAttempt, ...(notBeforeMs !== undefined ? { notBeforeMs } : {}) };
}

/** A one-line description of a delivery error, for logs and spool metadata (no secrets: transports scrub their errors). */
export function describeError(err: unknown): string {
  const e = err as { code?: string; response?: string; responseCode?: number; command?: string; message?: string };
  if (typeof e.response === 'string' && e.response !== '') return e.command ? `${e.response} (in reply to ${e.command})` : e.response;
  return [e.code, e.message].filter(Boolean).join(': ') || String(err);
}
