/**
 * Failure notices: when a message moves to failed/ (refused for good, or its queue lifetime
 * ran out, including recipients refused after the client already had its 250), one RFC 3464
 * notice (dsn.ts) goes to the admin addresses of delivery.notify.to and, with
 * delivery.notify.sender, one to the original envelope sender.
 *
 * Does: spool each notice like any message (null sender `<>`, its own qid) and hand it to the
 *   dispatcher, so it goes through the same upstreams, retries and failover; limit each
 *   address to delivery.notify.maxPerHour notices (a sliding hour, in memory); log what it did
 *   (`notice.queued`, `notice.skipped` with the reason, `notice.rate-limited`).
 * Never: send a notice about a notice (a failed message with the null sender gets none, so a
 *   notice that cannot be delivered ends in failed/ and stops there); let a notice problem
 *   affect the failed message (the caller logs and goes on); include the failed message's body.
 * Assumes: the failed message is already in failed/ (its header block comes from there, through
 *   the spool's readFailed: the body is never read).
 */
import type { Clock } from '../core/clock.js';
import type { FailureNotifier, FailureReason, Logger, Spool } from '../core/ports.js';
import { headerBlockEnd, rawHeader } from '../core/raw-source.js';
import { storeMessage } from '../core/store-message.js';
import type { SpoolEntry, SpoolMeta } from '../core/types.js';
import type { Config } from '../config/schema.js';
import { buildFailureNotice } from './dsn.js';

export interface NotifierDeps {
  readonly config: () => Config;
  readonly spool: Spool;
  /** hands a spooled notice to the delivery half (the dispatcher's submit, without waiting) */
  readonly submit: (entry: SpoolEntry) => Promise<unknown>;
  readonly clock: Clock;
  readonly logger: Logger;
}

const HOUR_MS = 3_600_000;
/** the most header bytes of the failed message put in the notice */
const MAX_HEADER_BYTES = 64 * 1024;

/** At most `limit` events per address in any hour. */
class HourlyLimit {
  private readonly sent = new Map<string, number[]>();
  constructor(private readonly clock: Clock) {}
  take(address: string, limit: number): boolean {
    const now = this.clock.now();
    const key = address.toLowerCase();
    const recent = (this.sent.get(key) ?? []).filter((t) => now - t < HOUR_MS);
    if (recent.length >= limit) {
      this.sent.set(key, recent);
      return false;
    }
    recent.push(now);
    this.sent.set(key, recent);
    return true;
  }
}

export function createFailureNotifier(deps: NotifierDeps): FailureNotifier {
  const limit = new HourlyLimit(deps.clock);
  return {
    async failed(meta: SpoolMeta, failure: FailureReason): Promise<void> {
      const log = deps.logger.child({ qid: meta.qid });
      const config = deps.config(); // one snapshot: a reload meanwhile cannot mix two configs in one notice
      const settings = config.delivery.notify;
      const originalSender = meta.originalMailFrom ?? meta.envelope.mailFrom;
      if (meta.envelope.mailFrom === '' || originalSender === '') {
        log.info({ reason: 'the failed message has the null sender (it is itself a notice or a bounce)' }, 'notice.skipped');
        return;
      }
      const audiences: { readonly who: 'admins' | 'sender'; readonly to: string[] }[] = [];
      if (settings.to.length > 0) audiences.push({ who: 'admins', to: [...settings.to] });
      if (settings.sender && !settings.to.some((a) => a.toLowerCase() === originalSender.toLowerCase())) audiences.push({ who: 'sender', to: [originalSender] });
      if (audiences.length === 0) return;

      const failedEntry = await deps.spool.readFailed(meta.qid);
      const header = failedEntry === undefined ? Buffer.alloc(0) : rawHeader(failedEntry.source).subarray(0, MAX_HEADER_BYTES);
      const from = settings.from ?? config.message.globalFrom ?? `postmaster@${config.listen.hostname}`;
      const relays = new Map(meta.recipients.map((r) => [r.address, r.relay]));
      for (const audience of audiences) {
        const to = audience.to.filter((address) => {
          const allowed = limit.take(address, settings.maxPerHour);
          if (!allowed) log.warn({ to: address, maxPerHour: settings.maxPerHour }, 'notice.rate-limited');
          return allowed;
        });
        if (to.length === 0) continue;
        const now = deps.clock.now();
        const qid = deps.spool.newQid();
        const raw = buildFailureNotice({
          qid,
          originalQid: meta.qid,
          from,
          to,
          reportingMta: config.listen.hostname,
          arrivalDate: new Date(meta.receivedAt),
          now: new Date(now),
          reason: failure.reason,
          failed: failure.recipients.map((r) => ({ address: r.address, response: r.response, relay: relays.get(r.address) })),
          originalSender,
          originalSubject: meta.facts.subject,
          originalHeader: header,
        });
        const end = headerBlockEnd(raw);
        const noticeMeta: SpoolMeta = {
          version: 1,
          qid,
          envelope: { mailFrom: '', rcptTo: to, bodyType: raw.some((b) => b >= 0x80) ? '8bitmime' : '7bit' },
          client: { address: 'smtp-sidecar', heloName: 'failure-notice' },
          receivedAt: new Date(now).toISOString(),
          originalMailFrom: '',
          sizeBytes: raw.length,
          facts: { from, subject: `failure notice for ${meta.qid}`, messageId: `<${qid}.notice@${config.listen.hostname}>`, attachments: 0, attachmentsBytes: 0 },
          recipients: to.map((address) => ({ address, status: 'pending' as const })),
          attempts: 0,
          nextAttemptAt: new Date(now).toISOString(),
        };
        const entry = await storeMessage(deps.spool, { header: raw.subarray(0, end), body: raw.subarray(end), meta: noticeMeta });
        log.info({ notice: qid, to, audience: audience.who, recipients: failure.recipients.map((r) => r.address) }, 'notice.queued');
        await deps.submit(entry);
      }
    },
  };
}
