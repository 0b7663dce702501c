/**
 * An in-memory Spool for unit tests of the dispatcher, the recorder and the receive conductor:
 * the same contract as FsSpool (store, list, read, update, remove, fail) without a disk.
 * `failNext(op)` makes the next call of that operation throw (a full disk; 'draft' fails the
 * next draft write), and `calls` keeps the order of operations for assertions. Drafts keep
 * their body in memory (`drafts` lists the ones not yet stored or discarded).
 */
import type { FailedEntry, FailureReason, RecoveryReport, Spool, SpoolDraft } from '../../src/core/ports.js';
import type { SpoolEntry, SpoolMeta } from '../../src/core/types.js';
import { RelayError } from '../../src/core/errors.js';

type Op = 'draft' | 'store' | 'update' | 'remove' | 'fail' | 'read';

/** A body kept in memory until stored or discarded. */
class MemoryDraft implements SpoolDraft {
  chunks: Buffer[] = [];
  length = 0;
  done = false;

  constructor(
    readonly qid: string,
    private readonly spool: MemorySpool,
  ) {}

  get bytesInMemory(): number {
    return this.length;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.done) throw new Error(`memory spool: write to the finished draft of ${this.qid}`);
    this.spool.checkDraftWrite(this.qid);
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  async discard(): Promise<void> {
    this.done = true;
    this.chunks = [];
    this.spool.drafts.delete(this);
  }
}

export class MemorySpool implements Spool {
  readonly dir = '/memory-spool';
  readonly queue = new Map<string, { meta: SpoolMeta; bytes: Buffer }>();
  readonly failed = new Map<string, { meta: SpoolMeta; bytes: Buffer; reason: FailureReason }>();
  readonly calls: string[] = [];
  readonly drafts = new Set<SpoolDraft>();
  private readonly failing = new Set<Op>();
  private readonly waiters: (() => void)[] = [];
  private counter = 0;

  /** Resolves once `condition` holds, re-checked after every operation (no polling, no sleep). */
  waitFor(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (condition()) resolve();
        else this.waiters.push(check);
      };
      check();
    });
  }

  private changed(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  failNext(op: Op): void {
    this.failing.add(op);
  }

  private check(op: Op, qid: string): void {
    this.calls.push(`${op} ${qid}`);
    queueMicrotask(() => this.changed());
    if (this.failing.delete(op)) {
      throw new RelayError('E_SPOOL_WRITE', { logMessage: `memory spool: ${op} failed (test)` });
    }
  }

  async recover(): Promise<RecoveryReport> {
    return { removedTmp: 0, quarantined: [], entries: await this.list() };
  }

  newQid(): string {
    this.counter += 1;
    return `MEMQ${String(this.counter).padStart(6, '0')}`;
  }

  draft(qid: string): SpoolDraft {
    const draft = new MemoryDraft(qid, this);
    this.drafts.add(draft);
    return draft;
  }

  /** @internal for MemoryDraft: a failNext('draft') makes this write fail (the draft is then discarded, as FsSpool does). */
  checkDraftWrite(qid: string): void {
    if (this.failing.delete('draft')) {
      for (const draft of this.drafts) if (draft.qid === qid) void draft.discard();
      throw new RelayError('E_SPOOL_WRITE', { logMessage: 'memory spool: draft write failed (test)' });
    }
  }

  async store(input: { readonly draft: SpoolDraft; readonly header: Buffer; readonly meta: SpoolMeta }): Promise<SpoolEntry> {
    const draft = input.draft;
    if (!(draft instanceof MemoryDraft) || draft.done) throw new Error('memory spool: store of a draft that is not an open draft of this spool');
    try {
      this.check('store', input.meta.qid);
    } catch (err) {
      await draft.discard();
      throw err;
    }
    const bytes = Buffer.concat([input.header, ...draft.chunks]);
    await draft.discard();
    this.queue.set(input.meta.qid, { meta: input.meta, bytes });
    this.changed();
    return this.entry(input.meta);
  }

  async list(): Promise<SpoolEntry[]> {
    return [...this.queue.values()].map((e) => this.entry(e.meta));
  }

  async read(qid: string): Promise<SpoolEntry | undefined> {
    this.check('read', qid);
    const found = this.queue.get(qid);
    return found === undefined ? undefined : this.entry(found.meta);
  }

  async update(meta: SpoolMeta): Promise<void> {
    this.check('update', meta.qid);
    const found = this.queue.get(meta.qid);
    if (found === undefined) throw new Error(`memory spool: no entry ${meta.qid}`);
    this.queue.set(meta.qid, { ...found, meta });
    this.changed();
  }

  async remove(qid: string): Promise<void> {
    this.check('remove', qid);
    this.queue.delete(qid);
    this.changed();
  }

  async fail(qid: string, reason: FailureReason): Promise<void> {
    this.check('fail', qid);
    const found = this.queue.get(qid);
    if (found === undefined) throw new Error(`memory spool: no entry ${qid}`);
    this.queue.delete(qid);
    this.failed.set(qid, { ...found, reason });
    this.changed();
  }

  async queuedQids(): Promise<string[]> {
    return [...this.queue.keys()].sort();
  }

  async failedQids(): Promise<string[]> {
    return [...this.failed.keys()].sort();
  }

  async readFailed(qid: string): Promise<FailedEntry | undefined> {
    const found = this.failed.get(qid);
    return found === undefined ? undefined : { meta: found.meta, reason: found.reason, source: found.bytes };
  }

  async requeue(meta: SpoolMeta): Promise<SpoolEntry> {
    const found = this.failed.get(meta.qid);
    if (found === undefined) throw new Error(`memory spool: no failed entry ${meta.qid}`);
    this.failed.delete(meta.qid);
    this.queue.set(meta.qid, { meta, bytes: found.bytes });
    return this.entry(meta);
  }

  async removeFailed(qid: string): Promise<void> {
    this.failed.delete(qid);
  }

  async probeWritable(): Promise<boolean> {
    return true;
  }

  /** The message bytes of a queued entry. */
  bytes(qid: string): Buffer | undefined {
    return this.queue.get(qid)?.bytes;
  }

  private entry(meta: SpoolMeta): SpoolEntry {
    return { meta, source: this.queue.get(meta.qid)?.bytes ?? this.failed.get(meta.qid)?.bytes ?? Buffer.alloc(0) };
  }
}

/** Metadata for a queued message, as the receive half writes it. */
export function queuedMeta(qid: string, overrides: Partial<SpoolMeta> = {}, receivedAt = '2026-01-01T00:00:00.000Z'): SpoolMeta {
  const rcptTo = overrides.envelope?.rcptTo ?? ['a@dest.test'];
  return {
    version: 1,
    qid,
    envelope: { mailFrom: 'app@corp.test', rcptTo },
    client: { address: '127.0.0.1' },
    receivedAt,
    sizeBytes: 100,
    facts: { from: 'app@corp.test', subject: 'hi', messageId: undefined, attachments: 0, attachmentsBytes: 0 },
    recipients: rcptTo.map((address) => ({ address, status: 'pending' as const })),
    attempts: 0,
    nextAttemptAt: receivedAt,
    ...overrides,
  };
}
