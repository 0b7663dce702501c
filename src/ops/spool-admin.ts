/**
 * Queue administration on a spool: list, show, retry now, retry all, remove.
 *
 * Does: read and change entries only through the Spool port (whose update/remove are atomic
 *   renames), so it serves both `smtp-sidecar queue` on a stopped relay and the running relay's
 *   admin HTTP handlers; tell the running relay's dispatcher about a retry or a removal through
 *   the optional callbacks (`onRetry` → dispatcher.retryNow, `onRemove` → dispatcher.forget).
 * Never: touch message bytes or files directly; throw for an unknown or malformed qid (that is
 *   "not found", a value); return message bodies (list/show give metadata only).
 * Assumes: in the CLI's direct mode no relay is working on the spool (the CLI uses the relay's
 *   HTTP API whenever one answers); inside the relay, the callbacks keep the dispatcher in step.
 */
import type { Clock } from '../core/clock.js';
import type { Spool } from '../core/ports.js';
import type { SpoolMeta } from '../core/types.js';
import { isValidQid } from '../spool/qid.js';

/** One queued message as `queue list` shows it (JSON-safe: also the admin API's list item). */
export interface QueueRow {
  readonly qid: string;
  /** ISO 8601 */
  readonly receivedAt: string;
  /** envelope sender ('' for the null sender <>) */
  readonly sender: string;
  /** recipients still to deliver */
  readonly pendingRecipients: readonly string[];
  /** every recipient of the message */
  readonly recipientCount: number;
  readonly attempts: number;
  /** ISO 8601 */
  readonly nextAttemptAt: string;
  readonly lastError: string | undefined;
  readonly sizeBytes: number;
}

export interface SpoolAdminDeps {
  readonly spool: Spool;
  readonly clock: Clock;
  /** the running relay: dispatcher.retryNow(qid) */
  readonly onRetry?: (qid: string) => void;
  /** the running relay: dispatcher.forget(qid) */
  readonly onRemove?: (qid: string) => void;
}

export function toQueueRow(meta: SpoolMeta): QueueRow {
  const recipients = meta.recipients ?? meta.envelope.rcptTo.map((address) => ({ address, status: 'pending' as const }));
  return {
    qid: meta.qid,
    receivedAt: meta.receivedAt,
    sender: meta.envelope.mailFrom,
    pendingRecipients: recipients.filter((r) => r.status === 'pending').map((r) => r.address),
    recipientCount: recipients.length,
    attempts: meta.attempts ?? 0,
    nextAttemptAt: meta.nextAttemptAt,
    lastError: meta.lastError,
    sizeBytes: meta.sizeBytes,
  };
}

export class SpoolAdmin {
  constructor(private readonly deps: SpoolAdminDeps) {}

  /** Every queued message, oldest first. */
  async list(): Promise<QueueRow[]> {
    const entries = await this.deps.spool.list();
    return entries.map((entry) => toQueueRow(entry.meta));
  }

  /** The metadata of one message, or undefined when there is no such entry. */
  async show(qid: string): Promise<SpoolMeta | undefined> {
    if (!isValidQid(qid)) return undefined;
    return (await this.deps.spool.read(qid))?.meta;
  }

  /** Makes the message due now. Returns the updated metadata, or undefined when not found. */
  async retry(qid: string): Promise<SpoolMeta | undefined> {
    const meta = await this.show(qid);
    if (meta === undefined) return undefined;
    const updated: SpoolMeta = { ...meta, nextAttemptAt: new Date(this.deps.clock.now()).toISOString() };
    await this.deps.spool.update(updated);
    this.deps.onRetry?.(qid);
    return updated;
  }

  /** Makes every queued message due now; returns the qids retried. */
  async retryAll(): Promise<string[]> {
    const retried: string[] = [];
    for (const entry of await this.deps.spool.list()) {
      if ((await this.retry(entry.meta.qid)) !== undefined) retried.push(entry.meta.qid);
    }
    return retried;
  }

  /** Deletes the message from the queue. Returns false when there was no such entry. */
  async remove(qid: string): Promise<boolean> {
    if ((await this.show(qid)) === undefined) return false;
    this.deps.onRemove?.(qid);
    await this.deps.spool.remove(qid);
    return true;
  }
}
