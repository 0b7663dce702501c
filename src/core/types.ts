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

/** Per-recipient delivery state kept in the spool metadata. */
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
}

/** A message in the queue: its metadata and where its final bytes are. */
export interface SpoolEntry {
  readonly meta: SpoolMeta;
  readonly emlPath: string;
}

/** The message body as the receive half holds it before spooling. */
export type BodySource =
  | { readonly kind: 'memory'; readonly chunks: readonly Buffer[]; readonly length: number }
  | { readonly kind: 'file'; readonly path: string; readonly length: number };
