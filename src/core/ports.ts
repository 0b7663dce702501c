/**
 * The small interfaces that sit between stages and I/O. Conductors depend on these,
 * app.ts supplies the real implementations, tests supply their own.
 */
import type { Logger } from 'pino';
import type { Envelope, RawSource, SpoolEntry, SpoolMeta } from './types.js';

export type { Logger, RawSource };

/** What went wrong with a message for good; written next to it in failed/. */
export interface FailureReason {
  readonly reason: string;
  readonly recipients: readonly { readonly address: string; readonly response: string }[];
  readonly failedAt: string;
}

/**
 * Told when a message has moved to failed/ (src/notify/ sends the failure notices). A problem
 * here must never touch the failed message: the recorder logs it and goes on.
 */
export interface FailureNotifier {
  failed(meta: SpoolMeta, failure: FailureReason): Promise<void>;
}

/** A message in failed/: its metadata, why it failed (when the reason file is readable) and its bytes. */
export interface FailedEntry {
  readonly meta: SpoolMeta;
  readonly reason: FailureReason | undefined;
  readonly source: RawSource;
}

/**
 * A message body while it arrives: the receive conductor hands each chunk to `write` and the
 * spool decides where it goes (memory, or a file of its own once it passes the spill
 * threshold). `store({ draft })` commits it; `discard` drops it (and its file).
 */
export interface SpoolDraft {
  readonly qid: string;
  /** body bytes written so far */
  readonly length: number;
  /** of those, the bytes held in memory (for the in-flight budget); 0 once they went to a file */
  readonly bytesInMemory: number;
  /** Throws RelayError E_SPOOL_WRITE when the bytes cannot be kept (the draft is then discarded). */
  write(chunk: Buffer): Promise<void>;
  /** Drops the bytes; a no-op after a successful store() and when called again. */
  discard(): Promise<void>;
}

export interface RecoveryReport {
  readonly removedTmp: number;
  readonly quarantined: readonly string[];
  readonly entries: readonly SpoolEntry[];
}

/** The durable boundary between the receive half and the delivery half. */
export interface Spool {
  readonly dir: string;
  /** Start-up: delete never-acknowledged files in tmp/, move unreadable entries aside, list the queue. */
  recover(): Promise<RecoveryReport>;
  newQid(): string;
  /** A new body for `qid`, filled while the message arrives. */
  draft(qid: string): SpoolDraft;
  /**
   * Writes header + the draft's body + meta durably (fsync, rename, dir fsync). The entry's
   * source is in memory when the body was. Throws RelayError E_SPOOL_WRITE (the draft is then
   * discarded).
   */
  store(input: { readonly draft: SpoolDraft; readonly header: Buffer; readonly meta: SpoolMeta }): Promise<SpoolEntry>;
  list(): Promise<SpoolEntry[]>;
  read(qid: string): Promise<SpoolEntry | undefined>;
  /** Atomically replaces the entry's metadata. */
  update(meta: SpoolMeta): Promise<void>;
  /** Delivered (or handed back to the client): remove the entry. */
  remove(qid: string): Promise<void>;
  /** Undeliverable: move to failed/ with the reason beside it. */
  fail(qid: string, reason: FailureReason): Promise<void>;
  /** The qids in queue/ from the directory listing alone (no file is read): cheap counts and paging. */
  queuedQids(): Promise<string[]>;
  /** The qids in failed/ from the directory listing alone. */
  failedQids(): Promise<string[]>;
  readFailed(qid: string): Promise<FailedEntry | undefined>;
  /** Moves a failed entry back into queue/ with `meta` (its bytes untouched); the reason file goes. */
  requeue(meta: SpoolMeta): Promise<SpoolEntry>;
  /** Deletes a failed entry for good. */
  removeFailed(qid: string): Promise<void>;
  /** Whether a small file can be written and fsynced right now (readiness). */
  probeWritable(): Promise<boolean>;
}

/**
 * A transport's progress on one message, kept in the spool entry (SpoolMeta.checkpoints) so that
 * the next attempt, after a crash too, can finish or clean up (e.g. delete a half-built Graph draft).
 */
export interface DeliveryCheckpoint {
  /** what an earlier attempt on this upstream left (undefined: nothing) */
  readonly saved: Readonly<Record<string, string>> | undefined;
  /** durably replaces it (undefined: clears it) */
  save(state: Readonly<Record<string, string>> | undefined): Promise<void>;
}

export interface OutgoingMessage {
  readonly qid: string;
  readonly envelope: Envelope;
  readonly raw: RawSource;
  readonly sizeBytes: number;
  /** given by the dispatcher for spooled messages; transports that need none ignore it */
  readonly checkpoint?: DeliveryCheckpoint;
}

export interface RecipientRejection {
  readonly address: string;
  readonly responseCode: number | undefined;
  readonly response: string;
}

export interface SendReport {
  readonly accepted: readonly string[];
  readonly rejected: readonly RecipientRejection[];
  /** the upstream's final answer, e.g. "250 2.0.0 OK <id>" */
  readonly response: string;
}

/** One step of an upstream check (`validate --connect`), e.g. connect, greeting, tls, token, auth. */
export interface VerifyStep {
  readonly step: string;
  readonly status: 'ok' | 'failed' | 'skipped';
  /** one line for the admin: what was seen, or what failed and what to do (never a secret) */
  readonly detail: string;
}

/**
 * The one transport interface: every upstream protocol (SMTP, the outbox, Microsoft Graph, ...)
 * implements it, and nothing else of a protocol is seen outside its own file.
 * - `send` resolves with the per-recipient outcome, or throws an error shaped like nodemailer's
 *   ({code, responseCode, command, response}) or a RelayError, which delivery/classify.ts
 *   turns into a decision. Error texts are already free of secrets.
 * - `verify` talks to the upstream without sending mail and reports each step as it finishes
 *   (through `onStep`) and all of them at the end; it never throws for a failed step.
 * - `close` releases connections; a closed transport is not used again.
 */
export interface UpstreamTransport {
  readonly name: string;
  send(message: OutgoingMessage): Promise<SendReport>;
  verify(onStep?: (step: VerifyStep) => void): Promise<readonly VerifyStep[]>;
  close(): Promise<void>;
}

/** What routing and the attempt loop need to know about an upstream besides its transport. */
export interface UpstreamSettings {
  /** its own attachment limits (a message over them skips this upstream) */
  readonly limits?: { readonly maxAttachments?: number | undefined; readonly maxAttachmentsTotalMB?: number | undefined } | undefined;
  /** its rate cap: messages over it wait in the spool */
  readonly maxMessagesPerMinute?: number | undefined;
  /** the sender it requires (envelope MAIL FROM and the header From are rewritten to it) */
  readonly from?: string | undefined;
}

export interface Upstream {
  readonly name: string;
  readonly transport: UpstreamTransport;
  readonly settings: UpstreamSettings;
}

/**
 * Every upstream of one config, built together (transports, credentials, settings) and
 * replaced together on reload. `names` is the configured order (the default route); with
 * no upstream configured it is just the outbox.
 */
export interface UpstreamSet {
  readonly names: readonly string[];
  get(name: string): Upstream | undefined;
  /** closes every transport and credential source of the set */
  close(): Promise<void>;
}

/** How the first delivery attempt went, as far as the waiting SMTP client is concerned. */
export type FirstAttemptOutcome =
  /** every recipient accepted upstream (or by the outbox) */
  | { readonly kind: 'delivered'; readonly relay: string; readonly response: string }
  /** every recipient refused for good: the message has left the spool, the client owns it again */
  | { readonly kind: 'rejected'; readonly smtpCode: number; readonly response: string }
  /** still in the spool (deferred, or the wait ran out): it will be retried */
  | { readonly kind: 'queued' }
  /**
   * some recipients accepted upstream, others refused for good (the message is in failed/ for
   * them, and a failure notice goes out) and/or still queued: the counts are for the client's 250
   */
  | { readonly kind: 'partial'; readonly delivered: number; readonly refused: number; readonly queued: number; readonly refusal: string | undefined }
  /** waitSeconds -1 and not delivered: removed from the spool, the client must retry */
  | { readonly kind: 'abandoned'; readonly response: string };

/** What the receive conductor asks of the delivery half after spooling. */
export interface DeliveryPort {
  /**
   * Schedules the entry and, when `waitMs` > 0 (or `neverQueue`), runs its first attempt at once
   * (from `entry.source`: in memory when the body was small) and reports how it went within the wait.
   */
  submit(entry: SpoolEntry, options: { readonly waitMs: number; readonly neverQueue: boolean }): Promise<FirstAttemptOutcome>;
}
