/**
 * Queue administration on a spool: list, show, retry, delete queued mail; list, requeue and
 * purge failed mail; one audit line per message an admin action touched.
 *
 * Does: read and change entries only through the Spool port (whose update/remove/requeue are
 *   atomic renames), so it serves `smtp-sidecar queue` on a stopped relay, the running relay's
 *   admin API and the status page alike; tell the running relay's dispatcher about a retry, a
 *   removal or a requeue through the optional callbacks; write an `admin` log line for every
 *   action on a message (action, qid, recipients, who: cli/api/page/relay and the peer, result),
 *   so "what happened to my mail" ends in the log even when an admin deleted it.
 * Never: touch message bytes or files directly; throw for an unknown or malformed qid (that is
 *   "not found", a value); return message bodies (metadata only); read every spool file for
 *   `overview` (it reads at most `limit` entries per section: the status page must stay cheap).
 * Assumes: in the CLI's direct mode no relay is working on the spool (the CLI uses the relay's
 *   HTTP API whenever one answers); inside the relay, the callbacks keep the dispatcher in step.
 */
import type { Clock } from '../core/clock.js';
import type { FailedEntry, FailureReason, Logger, Spool } from '../core/ports.js';
import type { SpoolMeta } from '../core/types.js';
import { isValidQid } from '../spool/qid.js';

/** One queued message as `queue list` shows it (JSON-safe: also the admin API's list item). */
export interface QueueRow {
  readonly qid: string;
  /** ISO 8601 */
  readonly receivedAt: string;
  /** envelope sender sent upstream, after the From policy ('' for the null sender <>) */
  readonly sender: string;
  /** envelope sender the client gave, before any rewrite (undefined for entries spooled by older versions) */
  readonly originalSender: string | undefined;
  /** the header From the client wrote */
  readonly originalFrom: string | undefined;
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

/** One message in failed/ (`queue list --failed`, GET /admin/failed). */
export interface FailedRow {
  readonly qid: string;
  readonly receivedAt: string;
  /** ISO 8601; the reason file's time (undefined when it is unreadable) */
  readonly failedAt: string | undefined;
  readonly sender: string;
  readonly originalSender: string | undefined;
  readonly originalFrom: string | undefined;
  readonly reason: string;
  /** the recipients that failed, each with the upstream's answer */
  readonly recipients: readonly { readonly address: string; readonly response: string }[];
  readonly recipientCount: number;
  readonly attempts: number;
  readonly sizeBytes: number;
}

/** `queue show`: the metadata plus where the message is, and why it failed. */
export type ShownMessage = SpoolMeta & { readonly state: 'queued' | 'failed'; readonly failure?: FailureReason };

/** Who asked: the command line, a script on the admin API, the status page, or the relay itself (retention). */
export interface Actor {
  readonly by: 'cli' | 'api' | 'page' | 'relay';
  /** the HTTP peer (address:port) when the action came over the admin API */
  readonly peer?: string;
  /** the local user the CLI runs as (as the CLI reports it) */
  readonly user?: string;
  /** the HTTP client's User-Agent */
  readonly userAgent?: string;
}

export type AdminAction = 'retry' | 'delete' | 'requeue' | 'purge';

export interface Overview {
  readonly queued: { readonly total: number; readonly messages: readonly QueueRow[] };
  readonly failed: { readonly total: number; readonly messages: readonly FailedRow[] };
}

export interface SpoolAdminDeps {
  readonly spool: Spool;
  readonly clock: Clock;
  /** where the audit lines go (the relay's logger; the CLI's stderr logger in direct mode) */
  readonly logger?: Logger;
  /** the running relay: dispatcher.retryNow(qid) (also after a requeue) */
  readonly onRetry?: (qid: string) => void;
  /** the running relay: dispatcher.forget(qid) */
  readonly onRemove?: (qid: string) => void;
}

function originals(meta: SpoolMeta): { originalSender: string | undefined; originalFrom: string | undefined } {
  return { originalSender: meta.originalMailFrom, originalFrom: meta.facts.from };
}

export function toQueueRow(meta: SpoolMeta): QueueRow {
  const recipients = meta.recipients ?? meta.envelope.rcptTo.map((address) => ({ address, status: 'pending' as const }));
  return {
    qid: meta.qid,
    receivedAt: meta.receivedAt,
    sender: meta.envelope.mailFrom,
    ...originals(meta),
    pendingRecipients: recipients.filter((r) => r.status === 'pending').map((r) => r.address),
    recipientCount: recipients.length,
    attempts: meta.attempts ?? 0,
    nextAttemptAt: meta.nextAttemptAt,
    lastError: meta.lastError,
    sizeBytes: meta.sizeBytes,
  };
}

export function toFailedRow(entry: FailedEntry): FailedRow {
  const { meta, reason } = entry;
  const failed = reason?.recipients ?? (meta.recipients ?? []).filter((r) => r.status === 'failed').map((r) => ({ address: r.address, response: r.response ?? '' }));
  return {
    qid: meta.qid,
    receivedAt: meta.receivedAt,
    failedAt: reason?.failedAt,
    sender: meta.envelope.mailFrom,
    ...originals(meta),
    reason: reason?.reason ?? 'unknown (the reason file is missing or unreadable)',
    recipients: failed,
    recipientCount: (meta.recipients ?? meta.envelope.rcptTo).length,
    attempts: meta.attempts ?? 0,
    sizeBytes: meta.sizeBytes,
  };
}

export class SpoolAdmin {
  constructor(private readonly deps: SpoolAdminDeps) {}

  private audit(action: AdminAction, actor: Actor, qid: string, recipients: readonly string[], result: string, extra: object = {}): void {
    this.deps.logger?.info({ audit: true, qid, action, recipients, ...actor, result, ...extra }, 'admin');
  }

  /** Runs an admin action on each qid in turn (one at a time: the spool's files are not raced); returns the qids it found. */
  private async each(qids: readonly string[], act: (qid: string) => Promise<SpoolMeta | undefined>): Promise<string[]> {
    const done: string[] = [];
    for (const qid of qids) if ((await act(qid)) !== undefined) done.push(qid);
    return done;
  }

  /** True (and audited as not-found) when the entry an admin action names does not exist. */
  private missing<T>(entry: T | undefined, action: AdminAction, actor: Actor, qid: string): entry is undefined {
    if (entry === undefined) this.audit(action, actor, qid, [], 'not-found');
    return entry === undefined;
  }

  /** Every queued message, oldest first (reads every entry: the CLI's list). */
  async list(): Promise<QueueRow[]> {
    const entries = await this.deps.spool.list();
    return entries.map((entry) => toQueueRow(entry.meta));
  }

  /** Every failed message, oldest first. */
  async listFailed(): Promise<FailedRow[]> {
    const rows: FailedRow[] = [];
    for (const qid of await this.deps.spool.failedQids()) {
      const entry = await this.readFailedQuietly(qid);
      if (entry !== undefined) rows.push(toFailedRow(entry));
    }
    return rows;
  }

  /**
   * Totals from the directory listings, and the details of at most `limit` messages per section
   * (the oldest queued, the newest failed): what the status page shows, at a bounded cost.
   */
  async overview(limit: number): Promise<Overview> {
    const [queuedQids, failedQids] = await Promise.all([this.deps.spool.queuedQids(), this.deps.spool.failedQids()]);
    const queued: QueueRow[] = [];
    for (const qid of queuedQids.slice(0, limit)) {
      const entry = await this.deps.spool.read(qid).catch(() => undefined);
      if (entry !== undefined) queued.push(toQueueRow(entry.meta));
    }
    const failed: FailedRow[] = [];
    for (const qid of failedQids.slice(-limit).reverse()) {
      const entry = await this.readFailedQuietly(qid);
      if (entry !== undefined) failed.push(toFailedRow(entry));
    }
    return { queued: { total: queuedQids.length, messages: queued }, failed: { total: failedQids.length, messages: failed } };
  }

  /**
   * For the queue gauges on every scrape: the depth from the directory listing, and the receipt
   * times of the first `sample` entries only. Qids sort by creation time, so these are the oldest
   * messages; a requeued message keeps its qid but restarts its receivedAt, so the oldest age can
   * read low only while more than `sample` requeued messages head the queue.
   */
  async queueHead(sample: number): Promise<{ readonly depth: number; readonly receivedAt: readonly string[] }> {
    const qids = await this.deps.spool.queuedQids();
    const receivedAt: string[] = [];
    for (const qid of qids.slice(0, sample)) {
      const entry = await this.deps.spool.read(qid).catch(() => undefined);
      if (entry !== undefined) receivedAt.push(entry.meta.receivedAt);
    }
    return { depth: qids.length, receivedAt };
  }

  /** How many messages sit in failed/ (a directory listing: cheap enough for every scrape). */
  async failedCount(): Promise<number> {
    return (await this.deps.spool.failedQids()).length;
  }

  /** The metadata of one message, queued or failed, or undefined when there is no such entry. */
  async show(qid: string): Promise<ShownMessage | undefined> {
    if (!isValidQid(qid)) return undefined;
    const queued = (await this.deps.spool.read(qid))?.meta;
    if (queued !== undefined) return { ...queued, state: 'queued' };
    const failed = await this.deps.spool.readFailed(qid);
    if (failed === undefined) return undefined;
    return { ...failed.meta, state: 'failed', ...(failed.reason !== undefined ? { failure: failed.reason } : {}) };
  }

  private async queuedMeta(qid: string): Promise<SpoolMeta | undefined> {
    return isValidQid(qid) ? (await this.deps.spool.read(qid))?.meta : undefined;
  }

  private async readFailedQuietly(qid: string): Promise<FailedEntry | undefined> {
    if (!isValidQid(qid)) return undefined;
    return this.deps.spool.readFailed(qid).catch((err: unknown) => {
      this.deps.logger?.warn({ qid, err: { message: (err as Error).message } }, 'spool.failed-entry-unreadable');
      return undefined;
    });
  }

  /** Makes a queued message due now. Returns the updated metadata, or undefined when not found. */
  async retry(qid: string, actor: Actor): Promise<SpoolMeta | undefined> {
    const meta = await this.queuedMeta(qid);
    if (this.missing(meta, 'retry', actor, qid)) return undefined;
    const updated: SpoolMeta = { ...meta, nextAttemptAt: new Date(this.deps.clock.now()).toISOString() };
    await this.deps.spool.update(updated);
    this.deps.onRetry?.(qid);
    this.audit('retry', actor, qid, toQueueRow(meta).pendingRecipients, 'scheduled');
    return updated;
  }

  /** Makes every queued message due now; returns the qids retried. */
  async retryAll(actor: Actor): Promise<string[]> {
    return this.each(await this.deps.spool.queuedQids(), (qid) => this.retry(qid, actor));
  }

  /** Deletes a queued or failed message for good. Returns false when there was no such entry. */
  async remove(qid: string, actor: Actor): Promise<boolean> {
    const queued = await this.queuedMeta(qid);
    if (queued !== undefined) {
      this.deps.onRemove?.(qid);
      await this.deps.spool.remove(qid);
      this.audit('delete', actor, qid, toQueueRow(queued).pendingRecipients, 'deleted', { state: 'queued' });
      return true;
    }
    const failed = await this.readFailedQuietly(qid);
    if (this.missing(failed, 'delete', actor, qid)) return false;
    await this.deps.spool.removeFailed(qid);
    this.audit('delete', actor, qid, toFailedRow(failed).recipients.map((r) => r.address), 'deleted', { state: 'failed' });
    return true;
  }

  /**
   * Moves a failed message back into the queue, due now: its failed recipients are pending again
   * (delivered ones stay delivered), attempts restart at 0 and so does its queue lifetime
   * (receivedAt becomes now; the first receipt is kept in firstReceivedAt), as `postsuper -r`
   * gives a message a fresh start. Returns undefined when there is no such failed message.
   */
  async requeue(qid: string, actor: Actor): Promise<SpoolMeta | undefined> {
    const failed = await this.readFailedQuietly(qid);
    if (this.missing(failed, 'requeue', actor, qid)) return undefined;
    const nowIso = new Date(this.deps.clock.now()).toISOString();
    const { meta } = failed;
    const recipients = (meta.recipients ?? meta.envelope.rcptTo.map((address) => ({ address, status: 'failed' as const }))).map((r) =>
      r.status === 'failed' ? { address: r.address, status: 'pending' as const } : r,
    );
    const requeued: SpoolMeta = {
      ...meta,
      recipients,
      attempts: 0,
      receivedAt: nowIso,
      firstReceivedAt: meta.firstReceivedAt ?? meta.receivedAt,
      nextAttemptAt: nowIso,
    };
    await this.deps.spool.requeue(requeued);
    this.deps.onRetry?.(qid);
    this.audit('requeue', actor, qid, recipients.filter((r) => r.status === 'pending').map((r) => r.address), 'queued');
    return requeued;
  }

  /** Requeues every failed message; returns the qids requeued. */
  async requeueAll(actor: Actor): Promise<string[]> {
    return this.each(await this.deps.spool.failedQids(), (qid) => this.requeue(qid, actor));
  }

  /**
   * Deletes failed messages that failed at least `olderThanMs` ago (0: all of them); the age is
   * the reason file's failedAt, else the receipt time. Returns the qids deleted.
   */
  async purgeFailed(olderThanMs: number, actor: Actor): Promise<string[]> {
    const cutoff = this.deps.clock.now() - olderThanMs;
    const purged: string[] = [];
    for (const qid of await this.deps.spool.failedQids()) {
      const entry = await this.readFailedQuietly(qid);
      if (entry === undefined) continue;
      const at = Date.parse(entry.reason?.failedAt ?? entry.meta.receivedAt);
      if (olderThanMs > 0 && !(at <= cutoff)) continue;
      await this.deps.spool.removeFailed(qid);
      purged.push(qid);
      this.audit('purge', actor, qid, toFailedRow(entry).recipients.map((r) => r.address), 'deleted', { failedAt: entry.reason?.failedAt });
    }
    return purged;
  }
}
