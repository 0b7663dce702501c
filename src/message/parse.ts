/**
 * Streaming facts parser: what policies need to know about a message.
 *
 * Does: run mailparser's streaming MailParser over the message and settle one promise
 *   with MessageFacts: addresses, subject, Message-ID, the raw Date text, top-level header
 *   names in order, and attachment count and decoded bytes (inline ones also counted apart).
 * Never: use simpleParser; keep attachment contents (each stream is drained and released);
 *   let `input` emit 'error' (the facts promise is the one error channel; after a failure
 *   `input` accepts and discards the rest so the caller's feed loop never stalls);
 *   leave the promise unsettled (end → resolve, limit error → reject, input destroyed → reject).
 * Assumes: the caller writes the message bytes to `input` and ends it (or destroys it).
 *   Malformed MIME gives best-effort facts; only parser limits reject:
 *   EMAXLEN on a MIME header → E_HEADER_TOO_BIG, other limits (more than 1000 MIME parts,
 *   mailsplit's default) and unexpected parser errors → E_MALFORMED_MESSAGE.
 */
import { Writable } from 'node:stream';
import { MailParser } from 'mailparser';
import type { AddressObject, AttachmentStream, EmailAddress, HeaderLines, Headers, HeaderValue, MessageText } from 'mailparser';
import { RelayError } from '../core/errors.js';
import type { Mailbox, MessageFacts } from '../core/types.js';

export interface FactsParserOptions {
  /** Largest header block of any MIME node, in bytes (mailsplit's maxHeadSize; default 1 MiB). */
  readonly maxHeaderBytes?: number;
}

export interface FactsParser {
  readonly input: Writable;
  readonly facts: Promise<MessageFacts>;
}

const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;

interface AttachmentTally {
  count: number;
  totalBytes: number;
  inlineCount: number;
  inlineBytes: number;
}

export function createFactsParser(options: FactsParserOptions = {}): FactsParser {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const parser = new MailParser({
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipImageLinks: true,
    checksumAlgo: false,
    maxHeadSize: maxHeaderBytes,
  });

  let headers: Headers | undefined;
  let headerLines: HeaderLines | undefined;
  const tally: AttachmentTally = { count: 0, totalBytes: 0, inlineCount: 0, inlineBytes: 0 };

  let settled = false;
  let failed = false;
  let resolveFacts!: (facts: MessageFacts) => void;
  let rejectFacts!: (err: RelayError) => void;
  const facts = new Promise<MessageFacts>((resolve, reject) => {
    resolveFacts = resolve;
    rejectFacts = reject;
  });
  // The caller may await `facts` late (after feeding everything): never an unhandled rejection.
  facts.catch(() => undefined);

  let pendingWrite: (() => void) | undefined;
  const fail = (err: RelayError): void => {
    failed = true;
    pendingWrite?.();
    if (!settled) {
      settled = true;
      rejectFacts(err);
    }
    parser.destroy();
  };

  parser.on('headers', (h: Headers) => {
    headers ??= h;
  });
  parser.on('headerLines', (lines: HeaderLines) => {
    headerLines ??= lines;
  });
  parser.on('data', (data: AttachmentStream | MessageText) => {
    if (data.type !== 'attachment') return;
    countAttachment(data, tally);
  });
  parser.on('error', (err: unknown) => fail(toRelayError(err, maxHeaderBytes)));
  parser.on('end', () => {
    if (settled) return;
    settled = true;
    resolveFacts(buildFacts(headers, headerLines, tally));
  });
  // Insurance: a parser that closes without 'end' or 'error' still settles the promise.
  parser.on('close', () => {
    if (!settled) fail(new RelayError('E_MALFORMED_MESSAGE', { logMessage: 'mail parser closed before the message ended' }));
  });

  const input = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (failed) return callback();
      // Callback once the parser has taken the chunk: its backpressure (attachments still
      // being drained) reaches the writer. A write error is reported by the parser's 'error'.
      // A failure while the chunk is in flight releases the writer too (see `fail`).
      let done = false;
      const once = (): void => {
        if (done) return;
        done = true;
        pendingWrite = undefined;
        callback();
      };
      pendingWrite = once;
      parser.write(chunk, once);
    },
    final(callback) {
      if (!failed) parser.end();
      callback();
    },
    destroy(err, callback) {
      if (!settled && !(input.writableFinished || input.writableEnded)) {
        fail(new RelayError('E_INTERNAL', { cause: err ?? undefined, logMessage: 'facts parser input destroyed before the message ended' }));
      }
      callback(null); // never surface as an 'error' event on input
    },
  });

  return { input, facts };
}

function countAttachment(attachment: AttachmentStream, tally: AttachmentTally): void {
  const inline = attachment.related === true || attachment.contentDisposition?.toLowerCase() === 'inline';
  tally.count += 1;
  if (inline) tally.inlineCount += 1;
  const release = (): void => {
    const fn = attachment.release;
    if (fn) fn.call(attachment);
  };
  attachment.content.on('data', (chunk: Buffer) => {
    tally.totalBytes += chunk.length;
    if (inline) tally.inlineBytes += chunk.length;
  });
  attachment.content.once('end', release);
  attachment.content.once('error', release);
}

function toRelayError(err: unknown, maxHeaderBytes: number): RelayError {
  if (err instanceof RelayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'EMAXLEN' && /header/i.test(message)) {
    return new RelayError('E_HEADER_TOO_BIG', { cause: err, detail: `Message header block exceeds ${maxHeaderBytes} bytes` });
  }
  if (code === 'EMAXLEN' && /child nodes/i.test(message)) {
    return new RelayError('E_MALFORMED_MESSAGE', { cause: err, detail: 'Message has too many MIME parts' });
  }
  return new RelayError('E_MALFORMED_MESSAGE', { cause: err, logMessage: `message could not be parsed: ${message}` });
}

function buildFacts(headers: Headers | undefined, headerLines: HeaderLines | undefined, tally: AttachmentTally): MessageFacts {
  const get = (key: string): HeaderValue | undefined => headers?.get(key);
  return {
    from: mailboxes(get('from')),
    sender: mailboxes(get('sender'))[0],
    replyTo: mailboxes(get('reply-to')),
    to: mailboxes(get('to')),
    cc: mailboxes(get('cc')),
    subject: firstString(get('subject')),
    messageId: firstString(get('message-id')),
    date: rawValue(headerLines, 'date'),
    attachments: { ...tally },
    headerNames: (headerLines ?? []).map((l) => l.key.toLowerCase()).filter((k) => k !== ''),
  };
}

function isAddressObject(value: unknown): value is AddressObject {
  return typeof value === 'object' && value !== null && Array.isArray((value as { value?: unknown }).value);
}

/** Every mailbox of an address header (repeated headers and groups flattened). */
function mailboxes(value: HeaderValue | undefined): Mailbox[] {
  const objects = Array.isArray(value) ? value : [value];
  const out: Mailbox[] = [];
  const visit = (entries: readonly EmailAddress[]): void => {
    for (const entry of entries) {
      if (entry.group) visit(entry.group);
      else if (entry.address) out.push({ name: entry.name ?? '', address: entry.address });
    }
  };
  for (const object of objects) if (isAddressObject(object)) visit(object.value);
  return out;
}

function firstString(value: HeaderValue | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : undefined;
}

/** The raw (unfolded, trimmed) text of the first top-level field with this name. */
function rawValue(lines: HeaderLines | undefined, key: string): string | undefined {
  const line = lines?.find((l) => l.key.toLowerCase() === key)?.line;
  if (line === undefined) return undefined;
  return line
    .slice(line.indexOf(':') + 1)
    .replace(/\r?\n(?=[ \t])/g, '')
    .trim();
}
