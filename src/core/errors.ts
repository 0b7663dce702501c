/**
 * The one table of error codes. Every refusal the relay can give a client, and every
 * unexpected failure, has a row here: whether it is transient, the public SMTP reply
 * (code, enhanced status code, text a client can act on) and the stage it comes from.
 *
 * Does: give each code one public reply. Never: put secrets, upstream hostnames or
 * config internals into a public reply (those go to the log through `cause`/`detail`).
 */

export type Stage = 'config' | 'intake' | 'message' | 'policies' | 'spool' | 'routing' | 'delivery' | 'outcome' | 'ops';

export interface ErrorRow {
  readonly transient: boolean;
  readonly smtpCode: number;
  readonly enhanced: string;
  readonly text: string;
  readonly stage: Stage;
}

export const ERROR_CODES = {
  E_CLIENT_DENIED: { transient: false, smtpCode: 554, enhanced: '5.7.1', text: 'Relay access denied for your address; ask the relay admin to add it to listen.allowedClients', stage: 'intake' },
  E_MESSAGE_TOO_BIG: { transient: false, smtpCode: 552, enhanced: '5.3.4', text: 'Message size exceeds the fixed maximum message size', stage: 'intake' },
  E_TOO_MANY_RECIPIENTS: { transient: true, smtpCode: 452, enhanced: '4.5.3', text: 'Too many recipients; send the rest in another message', stage: 'intake' },
  E_BAD_ADDRESS: { transient: false, smtpCode: 501, enhanced: '5.1.3', text: 'Bad address syntax', stage: 'intake' },
  E_BARE_LINEFEED: { transient: false, smtpCode: 550, enhanced: '5.6.0', text: 'Message contains bare CR or LF characters; lines must end with CRLF', stage: 'intake' },
  E_LINE_TOO_LONG: { transient: false, smtpCode: 550, enhanced: '5.6.0', text: 'Message has a line longer than 998 characters that cannot be folded', stage: 'intake' },
  E_HEADER_TOO_BIG: { transient: false, smtpCode: 552, enhanced: '5.3.4', text: 'Message header block is too large', stage: 'message' },
  E_MALFORMED_MESSAGE: { transient: false, smtpCode: 550, enhanced: '5.6.0', text: 'Message could not be parsed', stage: 'message' },
  E_ATTACHMENT_COUNT: { transient: false, smtpCode: 552, enhanced: '5.3.4', text: 'Too many attachments', stage: 'policies' },
  E_ATTACHMENT_SIZE: { transient: false, smtpCode: 552, enhanced: '5.3.4', text: 'Attachments too large', stage: 'policies' },
  E_BUSY: { transient: true, smtpCode: 452, enhanced: '4.3.1', text: 'Too much mail in flight; message not accepted, try again later', stage: 'intake' },
  E_SPOOL_WRITE: { transient: true, smtpCode: 452, enhanced: '4.3.1', text: 'Insufficient system storage; message not accepted, try again later', stage: 'spool' },
  E_SPOOL_CORRUPT: { transient: true, smtpCode: 451, enhanced: '4.3.0', text: 'Queue entry unreadable', stage: 'spool' },
  E_SHUTTING_DOWN: { transient: true, smtpCode: 421, enhanced: '4.3.2', text: 'Relay is shutting down; try again later', stage: 'intake' },
  E_UPSTREAM_TEMPORARY: { transient: true, smtpCode: 451, enhanced: '4.4.1', text: 'Upstream temporarily unavailable; try again later', stage: 'delivery' },
  E_UPSTREAM_REJECTED: { transient: false, smtpCode: 550, enhanced: '5.0.0', text: 'Rejected by the upstream server', stage: 'delivery' },
  E_TOKEN: { transient: true, smtpCode: 451, enhanced: '4.7.0', text: 'Upstream authentication token unavailable', stage: 'delivery' },
  E_CONFIG: { transient: false, smtpCode: 451, enhanced: '4.3.5', text: 'Relay configuration error', stage: 'config' },
  E_SECRET: { transient: false, smtpCode: 451, enhanced: '4.3.5', text: 'Secret could not be decrypted', stage: 'config' },
  E_INTERNAL: { transient: true, smtpCode: 451, enhanced: '4.3.0', text: 'Local error in processing; try again later', stage: 'intake' },
} as const satisfies Record<string, ErrorRow>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class. `detail` replaces the public text when set (it must be safe to show a client). */
export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly row: ErrorRow;
  readonly detail: string | undefined;
  private readonly smtpCodeOverride: number | undefined;
  private readonly verbatim: string | undefined;

  /**
   * `detail` replaces the row's text after the row's enhanced code; `smtpCode` + `verbatim`
   * pass an upstream's own reply through unchanged (its text already has its enhanced code).
   */
  constructor(code: ErrorCode, options: { detail?: string; cause?: unknown; logMessage?: string; smtpCode?: number; verbatim?: string } = {}) {
    const row = ERROR_CODES[code];
    super(options.logMessage ?? options.verbatim ?? options.detail ?? row.text, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RelayError';
    this.code = code;
    this.row = row;
    this.detail = options.detail;
    this.smtpCodeOverride = options.smtpCode;
    this.verbatim = options.verbatim;
  }

  get transient(): boolean {
    return this.row.transient;
  }

  /** The reply line smtp-server sends: `responseCode` plus the enhanced code in the text. */
  get smtpReply(): { code: number; text: string } {
    const code = this.smtpCodeOverride ?? this.row.smtpCode;
    return { code, text: this.verbatim ?? `${this.row.enhanced} ${this.detail ?? this.row.text}` };
  }
}

/** An Error shaped for smtp-server callbacks (it reads `responseCode`). */
export function toSmtpError(err: RelayError): Error & { responseCode: number } {
  const reply = err.smtpReply;
  return Object.assign(new Error(reply.text), { responseCode: reply.code });
}

export function isRelayError(value: unknown): value is RelayError {
  return value instanceof RelayError;
}
