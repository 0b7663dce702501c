/** Shared data shapes that flow between stages. Plain data only: no behaviour, no I/O. */

/** SMTP envelope. `mailFrom` is '' for the null sender `<>`. */
export interface Envelope {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  /** BODY= parameter the client used ('7bit' or '8bitmime'); propagated upstream. */
  readonly bodyType?: '7bit' | '8bitmime';
  readonly smtpUtf8?: boolean;
}

export interface Mailbox {
  readonly name: string;
  readonly address: string;
}

/** What the relay knows about a message after parsing; never holds attachment contents. */
export interface MessageFacts {
  readonly from: readonly Mailbox[];
  readonly sender: Mailbox | undefined;
  readonly replyTo: readonly Mailbox[];
  readonly to: readonly Mailbox[];
  readonly cc: readonly Mailbox[];
  readonly subject: string | undefined;
  readonly messageId: string | undefined;
  readonly date: string | undefined;
  readonly attachments: {
    readonly count: number;
    /** decoded bytes of all attachments */
    readonly totalBytes: number;
    /** how many of them are inline parts (related images, disposition inline) */
    readonly inlineCount: number;
    readonly inlineBytes: number;
  };
  /** raw top-level header names in order, lower-cased (used to decide "missing" headers) */
  readonly headerNames: readonly string[];
}

/**
 * One change to the top-level header block. Values are the final header field bodies
 * (already RFC 2047-encoded where needed); the editor folds and CRLF-terminates them.
 * - set: replace every existing field of that name with one field (or add it when absent)
 * - add: add a field without touching existing ones
 * - remove: drop every field of that name
 * - setIfAbsent: add only when no field of that name exists
 */
export type HeaderEdit =
  | { readonly op: 'set'; readonly name: string; readonly value: string }
  | { readonly op: 'add'; readonly name: string; readonly value: string }
  | { readonly op: 'setIfAbsent'; readonly name: string; readonly value: string }
  | { readonly op: 'remove'; readonly name: string };

export interface ClientInfo {
  readonly address: string;
  readonly port?: number;
  readonly heloName?: string;
}

/**
 * The one outcome vocabulary (the words of the Postfix delivery log line admins know), used from
 * classification (delivery/classify.ts) to the record, upstream health, metrics and the logs:
 * - sent:     the upstream accepted the recipient
 * - failover: this upstream cannot take it now; the next upstream is tried at once
 * - deferred: kept in the queue and retried later (on the same upstream order)
 * - bounced:  refused for good; the message goes to failed/ (or the 5xx back to a waiting client)
 */
export type Outcome = 'sent' | 'failover' | 'deferred' | 'bounced';

/** One upstream tried for some recipients, and what came of it. */
export interface Try {
  readonly kind: 'try';
  readonly relay: string;
  readonly recipients: readonly string[];
  readonly outcome: Outcome;
  readonly dsn: string;
  readonly response: string;
  readonly durationMs: number;
  /** for anything but sent: what the classification means, for the admin */
  readonly reason?: string;
  /**
   * Set when the try failed as a whole (the transport threw): the error code (nodemailer's,
   * e.g. EAUTH, ESOCKET, or a RelayError's) and whether the upstream is to be skipped for a
   * while. Unset for per-recipient refusals.
   */
  readonly failure?: { readonly errorCode: string | undefined; readonly markDown: boolean };
}

/** An upstream passed over for this message. */
export interface Skip {
  readonly kind: 'skip';
  readonly relay: string;
  readonly recipients: readonly string[];
  /** limits: over its own attachment limits; rate: its maxMessagesPerMinute is used up until `retryAtMs` */
  readonly why: 'limits' | 'rate';
  readonly retryAtMs?: number;
}

/** One step of a delivery attempt: an upstream tried, or passed over. */
export type Attempt = Try | Skip;

/** Where a recipient stands after the attempt. */
export interface RecipientResult {
  readonly outcome: 'sent' | 'bounced' | 'deferred';
  readonly relay: string | undefined;
  readonly response: string;
  readonly dsn: string;
  readonly smtpCode?: number | undefined;
}

/**
 * Per-recipient delivery state kept in the spool metadata (queue state, not an outcome: these
 * words are on disk). pending: no final outcome yet; delivered: sent; failed: bounced or expired.
 */
export interface RecipientState {
  readonly address: string;
  readonly status: 'pending' | 'delivered' | 'failed';
  readonly relay?: string;
  readonly response?: string;
}

/** The JSON metadata stored next to every spooled message. */
export interface SpoolMeta {
  readonly version: 1;
  readonly qid: string;
  readonly envelope: Envelope;
  readonly client: ClientInfo;
  readonly receivedAt: string; // ISO 8601
  /** the envelope sender the client gave (MAIL FROM), before the From policy rewrote `envelope.mailFrom` */
  readonly originalMailFrom?: string;
  /** set when an admin moved the message back from failed/: the first receipt (receivedAt restarts the lifetime) */
  readonly firstReceivedAt?: string;
  readonly sizeBytes: number;
  readonly facts: {
    readonly from: string | undefined;
    readonly subject: string | undefined;
    readonly messageId: string | undefined;
    readonly attachments: number;
    readonly attachmentsBytes: number;
  };
  readonly recipients: readonly RecipientState[];
  readonly attempts: number;
  readonly nextAttemptAt: string; // ISO 8601
  readonly lastError?: string;
  /**
   * Progress a transport keeps while it works on the message, by upstream name (a Graph draft id:
   * a restart after a crash deletes the half-built draft, or knows the send went through).
   */
  readonly checkpoints?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/**
 * The final bytes of a message as handed to an upstream: whole in memory, or `header` followed
 * by the bytes [bodyStart, bodyEnd) of a spool file. The header block travels apart from the
 * body so a per-upstream header edit (message/sender-override.ts) never reads the body;
 * core/raw-source.ts opens either form as one stream.
 */
export type RawSource =
  | Buffer
  | { readonly path: string; readonly header: Buffer; readonly bodyStart: number; readonly bodyEnd: number };

/** A message in the queue: its metadata and its final bytes (read them through core/raw-source.ts). */
export interface SpoolEntry {
  readonly meta: SpoolMeta;
  readonly source: RawSource;
}
