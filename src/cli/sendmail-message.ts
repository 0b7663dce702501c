/**
 * The message a sendmail caller writes on stdin, made ready for SMTP: what Postfix's
 * `sendmail` does before it hands a message to its queue.
 *
 * Does: split lines on LF or CRLF (PHP writes LF, some apps mix both) and end every line with
 *   CRLF, the last one too when the input had no trailing newline; without `-i` stop at a line
 *   that is a lone "."; find the header block (a line that is neither a header field nor a
 *   continuation starts the body, and a blank line is put before it); with `-t` collect the
 *   recipients of To/Cc/Bcc (or of Resent-To/Cc/Bcc when the message has any of them) and drop
 *   Bcc/Resent-Bcc; add `From:` (with the `-F` full name) when the message has none, and
 *   qualify a From that names a bare user (`root (Cron Daemon)`, as cron writes it) with the
 *   local domain, as Postfix's cleanup does.
 * Never: change body bytes (8-bit text goes through untouched; the caller declares
 *   BODY=8BITMIME); dot-stuff (the SMTP client does that on the wire).
 * Assumes: the whole message fits in memory (the relay's own limit is tens of MB).
 */
import addressparser from 'nodemailer/lib/addressparser';
import { formatMailbox } from '../core/address.js';

export interface PrepareOptions {
  /** false with -i / -oi: a lone "." line is content, not the end of the message */
  readonly dotEndsMessage: boolean;
  /** -t: read the recipients from the headers */
  readonly recipientsFromHeaders: boolean;
  /** the envelope sender ('' for the null sender) */
  readonly sender: string;
  /** -F: the display name for an added From header */
  readonly fullName: string | undefined;
  /** the domain for a From header that names a bare user ("root (Cron Daemon)", as cron writes it) */
  readonly localDomain: string;
}

export interface PreparedMessage {
  /** the message with CRLF line endings, ending with CRLF, not dot-stuffed */
  readonly data: Buffer;
  /** with -t: the addresses found in the destination headers, in order */
  readonly headerRecipients: readonly ParsedRecipient[];
  /** whether any byte is 8-bit (BODY=8BITMIME) */
  readonly eightBit: boolean;
}

/** One entry of an address list: `address` is '' when the entry has no domain part ("root"). */
export interface ParsedRecipient {
  readonly address: string;
  /** what the caller wrote, for error messages */
  readonly written: string;
}

const CRLF = Buffer.from('\r\n');
const HEADER_FIELD = /^[\x21-\x39\x3b-\x7e]+:/;
const DESTINATION = ['to', 'cc', 'bcc'];
const RESENT_DESTINATION = ['resent-to', 'resent-cc', 'resent-bcc'];

interface HeaderField {
  /** lower-case field name */
  readonly name: string;
  /** the field's lines (first line and continuations), without line endings */
  readonly lines: Buffer[];
}

/** Lines of the input without their line endings; stops at a lone "." when `dotEnds`. */
export function splitLines(input: Buffer, dotEnds: boolean): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < input.length) {
    const lf = input.indexOf(0x0a, start);
    const end = lf === -1 ? input.length : lf;
    const line = end > start && input[end - 1] === 0x0d ? input.subarray(start, end - 1) : input.subarray(start, end);
    if (dotEnds && line.length === 1 && line[0] === 0x2e) break;
    lines.push(line);
    if (lf === -1) break;
    start = lf + 1;
  }
  return lines;
}

/** Parses an address list (a header value or a command-line argument) with nodemailer's addressparser. */
export function parseAddressList(text: string): ParsedRecipient[] {
  const out: ParsedRecipient[] = [];
  for (const entry of addressparser(text, { flatten: true })) {
    const address = entry.address.trim();
    if (address.includes('@')) out.push({ address, written: address });
    // addressparser reads a token without "@" ("root", "<root>") as a display name
    else if (entry.name.trim() !== '' || address !== '') out.push({ address: '', written: (address || entry.name).trim() });
  }
  return out;
}

/** `root`, `root (Cron Daemon)`, `Cron Daemon <root>`: a mailbox without a domain. */
const BARE_USER = /^([^\s@<>(),;:"]+)\s*(?:\(([^()]*)\))?$/;
const NAMED_BARE_USER = /^"?([^"<>]*?)"?\s*<([^\s@<>(),;:"]+)>$/;

/** The From field rewritten with `@domain` when it names a bare user; undefined when it names a full address (or anything else). */
function qualifiedFrom(field: HeaderField, domain: string): Buffer | undefined {
  const value = headerValue(field);
  const bare = BARE_USER.exec(value);
  const named = bare === null ? NAMED_BARE_USER.exec(value) : null;
  const user = bare?.[1] ?? named?.[2];
  if (user === undefined) return undefined;
  const name = (bare?.[2] ?? named?.[1] ?? '').trim();
  return Buffer.from(`From: ${formatMailbox({ name, address: `${user}@${domain}` })}`, 'utf8');
}

function headerValue(field: HeaderField): string {
  const joined = Buffer.concat(field.lines.flatMap((l, i) => (i === 0 ? [l] : [Buffer.from(' '), l])));
  const text = joined.toString('utf8');
  return text.slice(text.indexOf(':') + 1).trim();
}

export function prepareMessage(input: Buffer, options: PrepareOptions): PreparedMessage {
  const lines = splitLines(input, options.dotEndsMessage);
  const headers: HeaderField[] = [];
  let bodyStart = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length === 0) {
      bodyStart = i + 1;
      break;
    }
    const first = line[0];
    if ((first === 0x20 || first === 0x09) && headers.length > 0) {
      headers[headers.length - 1]!.lines.push(line);
      continue;
    }
    const text = line.toString('latin1');
    if (!HEADER_FIELD.test(text)) {
      bodyStart = i; // no blank line between headers and body: the body starts here
      break;
    }
    headers.push({ name: text.slice(0, text.indexOf(':')).trim().toLowerCase(), lines: [line] });
  }

  const resent = headers.some((h) => RESENT_DESTINATION.includes(h.name));
  const destination = resent ? RESENT_DESTINATION : DESTINATION;
  const headerRecipients = options.recipientsFromHeaders
    ? headers.filter((h) => destination.includes(h.name)).flatMap((h) => parseAddressList(headerValue(h)))
    : [];
  const kept = headers.filter((h) => h.name !== 'bcc' && h.name !== 'resent-bcc');
  const headerLines = kept.flatMap((h) => {
    const qualified = h.name === 'from' ? qualifiedFrom(h, options.localDomain) : undefined;
    return qualified === undefined ? h.lines : [qualified];
  });
  if (!headers.some((h) => h.name === 'from') && options.sender !== '') {
    headerLines.unshift(Buffer.from(`From: ${formatMailbox({ name: options.fullName ?? '', address: options.sender })}`, 'utf8'));
  }

  const parts: Buffer[] = [];
  for (const line of headerLines) parts.push(line, CRLF);
  parts.push(CRLF);
  for (const line of lines.slice(bodyStart)) parts.push(line, CRLF);
  const data = Buffer.concat(parts);
  return { data, headerRecipients, eightBit: data.some((b) => b >= 0x80) };
}
