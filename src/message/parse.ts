/**
 * Streaming facts parser: what policies need to know about a message.
 *
 * Does: split the message into MIME parts with @zone-eu/mailsplit's Splitter and settle one
 *   promise with MessageFacts: addresses, subject, Message-ID, the raw Date text, top-level
 *   header names in order, and attachment count and decoded bytes (inline ones also counted
 *   apart). Attachment sizes come from each part's ENCODED length (see `EncodedSize`): no part
 *   is decoded (and a leaf part's body does not go through the splitter's per-byte loop: see
 *   body-skip.ts), and no body byte is kept once counted, so the memory a message costs here is
 *   its MIME header blocks plus a few buffers, whatever the size or kind of its bodies (text,
 *   HTML, attachments, malformed). The top-level header fields are decoded as mailparser
 *   decodes them (see `buildFacts`), from the lines the splitter already parsed.
 * Never: keep body bytes (text bodies included); decode an attachment; let `input` emit
 *   'error' (the facts promise is the one error channel; after a failure `input` accepts and
 *   discards the rest so the caller's feed loop never stalls); leave the promise unsettled
 *   (end → resolve, limit error → reject, input destroyed → reject).
 * Assumes: the caller writes the message bytes to `input` and ends it (or destroys it).
 *   Malformed MIME gives best-effort facts; only parser limits reject:
 *   EMAXLEN on a MIME header → E_HEADER_TOO_BIG, other limits (more than 1000 MIME parts,
 *   mailsplit's default) and unexpected parser errors → E_MALFORMED_MESSAGE.
 *
 * What counts as an attachment is what mailparser reports as one, so `limits` keep their
 * meaning: a leaf part whose type is not text/plain, text/html or message/delivery-status, or
 * whose disposition is not `inline` (an unknown disposition counts as `attachment`; a non-text
 * part without one too). An attached message/rfc822 counts as one attachment; one the splitter
 * descends into (disposition inline, 7bit/8bit/binary) is a container and its parts count.
 * Inline (counted apart, for `limits.countInlineParts: false`): disposition `inline`, or a part
 * with a Content-ID under a multipart/related.
 */
import { Writable } from 'node:stream';
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode } from '@zone-eu/mailsplit';
import libmime from 'libmime';
import { decodeWords, parseMailboxes } from '../core/address-list.js';
import { RelayError } from '../core/errors.js';
import type { MessageFacts } from '../core/types.js';
import { BodySkipper } from './body-skip.js';

export interface FactsParserOptions {
  /** Largest header block of any MIME node, in bytes (mailsplit's maxHeadSize; default 1 MiB). */
  readonly maxHeaderBytes?: number;
  /** Read leaf bodies past the splitter (default true; false feeds every byte to it, for tests). */
  readonly skipBodies?: boolean;
}

export interface FactsParser {
  readonly input: Writable;
  readonly facts: Promise<MessageFacts>;
  /** Bytes the splitter parsed and bytes read past it (body-skip.ts), for tests and profiles. */
  readonly stats: { readonly splitBytes: number; readonly skippedBytes: number };
}

/**
 * The splitter's own fields the body skip reads (mailsplit 5.4, message-splitter.js; pinned by
 * test/unit/message/parse.test.ts): the node it is in, its state (BODY = 2), the bytes of the
 * line it holds back (after a line end: the body's last line end, kept for a delimiter that may
 * follow) and the longest delimiter in scope (0: none).
 */
interface SplitterInternals {
  readonly node?: MimeNode | null;
  readonly state?: number;
  readonly lineLength?: number;
  readonly maxBoundaryLength?: () => number;
}
const SPLITTER_BODY = 0x02;
/** most bytes of whole lines the splitter gets per write while it reads structure */
const SPLIT_WINDOW_BYTES = 8 * 1024;

const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;
/** mailsplit's floor for what one header line costs against maxHeadSize */
const HEADER_LINE_MIN_COST = 64;
const TEXT_TYPES = ['text/plain', 'text/html', 'message/delivery-status'];

interface AttachmentTally {
  count: number;
  totalBytes: number;
  inlineCount: number;
  inlineBytes: number;
}

interface HeaderLine {
  readonly key: string;
  readonly line: string;
}

/** The part being counted: its size estimator and whether it counts as inline. */
interface CountedPart {
  readonly node: MimeNode;
  readonly size: EncodedSize;
  readonly inline: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const EQUALS = 0x3d;

/**
 * Decoded size of a part estimated from its encoded bytes, without decoding them.
 *
 * - base64: decoded = floor(a × 3 / 4), a = the encoded bytes that are not CR, LF or `=`.
 *   Exact for well-formed base64 (every 4 alphabet characters are 3 bytes; `=` is padding).
 *   Bytes outside the alphabet (spaces, junk), which a decoder skips, are counted as if they
 *   were data: the estimate is never below the decoded size and above it by at most 3/4 of
 *   such bytes (+1 when junk spoils the final group). A limit therefore never lets through
 *   more decoded bytes than it names.
 * - quoted-printable: decoded = encoded − 3 per soft line break (`=` CRLF or `=` LF) − 2 per
 *   other `=` (an `=XX` escape is one byte). Exact except for whitespace before a line end,
 *   which decoders drop and which is counted here (so again never below).
 * - anything else (7bit, 8bit, binary, unknown): decoded = encoded.
 */
class EncodedSize {
  #bytes = 0;
  #lineBreaks = 0;
  #equals = 0;
  #softBreaks = 0;
  /** the previous chunk ended with `=` (quoted-printable: a soft break may straddle chunks) */
  #equalsPending = false;

  constructor(private readonly encoding: string) {}

  add(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.encoding === 'base64') {
      this.#lineBreaks += countByte(chunk, LF) + countByte(chunk, CR);
      this.#equals += countByte(chunk, EQUALS);
    } else if (this.encoding === 'quoted-printable') {
      if (this.#equalsPending && (chunk[0] === CR || chunk[0] === LF)) this.#softBreaks++;
      for (let i = chunk.indexOf(EQUALS); i !== -1; i = chunk.indexOf(EQUALS, i + 1)) {
        this.#equals++;
        const next = chunk[i + 1];
        if (next === CR || next === LF) this.#softBreaks++;
      }
      this.#equalsPending = chunk.length > 0 && chunk[chunk.length - 1] === EQUALS;
    }
  }

  /**
   * The next bytes do not follow the last ones directly (the splitter emits the line end it
   * held back after bytes read past it): a `=` at the end of these is not a soft break.
   */
  breakSequence(): void {
    this.#equalsPending = false;
  }

  get decodedBytes(): number {
    if (this.encoding === 'base64') return Math.floor(((this.#bytes - this.#lineBreaks - this.#equals) * 3) / 4);
    if (this.encoding === 'quoted-printable') return Math.max(0, this.#bytes - 2 * this.#equals - this.#softBreaks);
    return this.#bytes;
  }
}

function countByte(chunk: Buffer, byte: number): number {
  let n = 0;
  for (let i = chunk.indexOf(byte); i !== -1; i = chunk.indexOf(byte, i + 1)) n++;
  return n;
}

function isAttachment(node: MimeNode): boolean {
  const contentType = node.contentType || 'text/plain';
  let disposition = node.disposition || '';
  if (disposition !== '' && disposition !== 'attachment' && disposition !== 'inline') disposition = 'attachment';
  if (disposition === '') disposition = TEXT_TYPES.includes(contentType) ? 'inline' : 'attachment';
  return !TEXT_TYPES.includes(contentType) || disposition !== 'inline';
}

function isInline(node: MimeNode): boolean {
  if (node.disposition === 'inline') return true;
  if (node.headers === false || !node.headers.hasHeader('Content-ID')) return false;
  for (let parent = node.parentNode; parent !== false; parent = parent.parentNode) {
    if (parent.contentType === 'multipart/related') return true;
  }
  return false;
}

export function createFactsParser(options: FactsParserOptions = {}): FactsParser {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const skipBodies = options.skipBodies ?? true;
  const splitter = new Splitter({ maxHeadSize: maxHeaderBytes });

  let rootLines: readonly HeaderLine[] | undefined;
  const tally: AttachmentTally = { count: 0, totalBytes: 0, inlineCount: 0, inlineBytes: 0 };
  let part: CountedPart | undefined;
  /** the last node the splitter emitted (a skip starts only in the body of this one) */
  let lastNode: MimeNode | undefined;
  const closePart = (): void => {
    if (part === undefined) return;
    const bytes = part.size.decodedBytes;
    tally.totalBytes += bytes;
    if (part.inline) tally.inlineBytes += bytes;
    part = undefined;
  };

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
    splitter.destroy();
  };

  splitter.on('data', (data: MimeNode | { type: 'body' | 'data'; node: MimeNode; value: Buffer }) => {
    if (data.type === 'node') {
      closePart();
      const node = data;
      lastNode = node;
      if (node.root && node.headers !== false) rootLines ??= node.headers.getList();
      if (node.multipart !== false) return;
      // an embedded message the splitter descends into is a container: its parts are counted
      if (node.contentType === 'message/rfc822' && node.messageNode === true) return;
      if (!isAttachment(node)) return;
      const inline = isInline(node);
      tally.count += 1;
      if (inline) tally.inlineCount += 1;
      part = { node, inline, size: new EncodedSize(node.encoding || '') };
      return;
    }
    if (data.type === 'body' && part !== undefined && data.node === part.node) part.size.add(data.value);
  });
  // mailsplit's typings declare only the 'data' event; the stream events go through the base type
  const events: NodeJS.EventEmitter = splitter;
  events.on('error', (err: unknown) => fail(toRelayError(err, maxHeaderBytes, headerBytesOfFailedNode(splitter))));
  events.on('end', () => {
    if (settled) return;
    closePart();
    let result: MessageFacts;
    try {
      result = buildFacts(rootLines ?? [], tally);
    } catch (err) {
      fail(toRelayError(err, maxHeaderBytes, undefined));
      return;
    }
    settled = true;
    resolveFacts(result);
  });
  // Insurance: a splitter that closes without 'end' or 'error' still settles the promise.
  events.on('close', () => {
    if (!settled && !splitter.readableEnded) fail(new RelayError('E_MALFORMED_MESSAGE', { logMessage: 'message splitter closed before the message ended' }));
  });

  // The splitter reads the structure (header blocks, delimiter lines); the body of a leaf part
  // is read past it by a BodySkipper, which counts the bytes and gives back any line that could
  // be a delimiter, with the line end in front of it. The splitter is fed up to a line end
  // before a skip starts: it holds back at most that line end, and emits it as body when the
  // next line it gets is body (after the bytes read past: a quoted-printable soft break split
  // there counts as one more byte, never one less).
  const stats = { splitBytes: 0, skippedBytes: 0 };
  let skipper: BodySkipper | undefined;
  /** the size counter of the part being read past (undefined: the part is not counted) */
  let skippedPart: EncodedSize | undefined;

  /** Resolves once the splitter has taken the bytes (its backpressure reaches the writer), or on failure. */
  const toSplitter = (bytes: Buffer): Promise<void> =>
    new Promise((resolve) => {
      if (failed || bytes.length === 0) return resolve();
      stats.splitBytes += bytes.length;
      // A write error is reported by the splitter's 'error'. A failure while the bytes are in
      // flight releases the writer too (see `fail`).
      let done = false;
      const once = (): void => {
        if (done) return;
        done = true;
        pendingWrite = undefined;
        resolve();
      };
      pendingWrite = once;
      splitter.write(bytes, once);
    });

  /** A skipper for the body the splitter is in, when it is a leaf part's; undefined otherwise. */
  const skipperForCurrentBody = (): BodySkipper | undefined => {
    if (!skipBodies || failed) return undefined;
    const internals = splitter as unknown as SplitterInternals;
    const node = internals.node;
    if (internals.state !== SPLITTER_BODY || node === undefined || node === null || node !== lastNode || node.multipart !== false) return undefined;
    // fed up to a line end, the splitter holds back at most that line end (else: no skip)
    if (typeof internals.lineLength !== 'number' || internals.lineLength > 2) return undefined;
    const counter = part !== undefined && part.node === node ? part.size : undefined;
    skippedPart = counter;
    const sink = (bytes: Buffer): void => {
      stats.skippedBytes += bytes.length;
      counter?.add(bytes);
    };
    const delimiters = typeof internals.maxBoundaryLength === 'function' ? internals.maxBoundaryLength() > 0 : true;
    return new BodySkipper(sink, delimiters);
  };

  const feed = async (chunk: Buffer): Promise<void> => {
    let rest: Buffer | undefined = chunk;
    while (rest !== undefined && rest.length > 0 && !failed) {
      if (skipper !== undefined) {
        rest = skipper.push(rest);
        if (rest === undefined) return;
        // a line that may be a delimiter, with the line end in front of it: the splitter reads
        // it (alone: when it was body after all, the skip resumes on the next line)
        const withheld = skipper.takeWithheld();
        skipper = undefined;
        skippedPart?.breakSequence();
        const lineEnd = rest.indexOf(LF);
        if (lineEnd === -1) return toSplitter(Buffer.concat([withheld, rest]));
        await toSplitter(Buffer.concat([withheld, rest.subarray(0, lineEnd + 1)]));
        rest = rest.subarray(lineEnd + 1);
      } else {
        // structure: whole lines, a window at a time, so a skip starts soon after a part's header
        let lineEnd = rest.lastIndexOf(LF, Math.min(rest.length, SPLIT_WINDOW_BYTES) - 1);
        if (lineEnd === -1) lineEnd = rest.indexOf(LF);
        if (lineEnd === -1) return toSplitter(rest);
        await toSplitter(rest.subarray(0, lineEnd + 1));
        rest = rest.subarray(lineEnd + 1);
      }
      skipper = skipperForCurrentBody();
    }
  };

  const input = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (failed) return callback();
      feed(chunk).then(
        () => callback(),
        (err: unknown) => {
          fail(toRelayError(err, maxHeaderBytes, undefined));
          callback();
        },
      );
    },
    final(callback) {
      const withheld = skipper?.takeWithheld();
      skipper = undefined;
      skippedPart?.breakSequence();
      if (failed) return callback();
      if (withheld !== undefined && withheld.length > 0) splitter.write(withheld);
      splitter.end();
      callback();
    },
    destroy(err, callback) {
      if (!settled && !(input.writableFinished || input.writableEnded)) {
        fail(new RelayError('E_INTERNAL', { cause: err ?? undefined, logMessage: 'facts parser input destroyed before the message ended' }));
      }
      callback(null); // never surface as an 'error' event on input
    },
  });

  return { input, facts, stats };
}

/** Bytes of the MIME header block the splitter was reading when it failed (its own field). */
function headerBytesOfFailedNode(splitter: Splitter): number | undefined {
  const node = (splitter as unknown as { node?: { _headerlen?: unknown } }).node;
  return typeof node?._headerlen === 'number' ? node._headerlen : undefined;
}

/**
 * mailsplit counts every header line as at least 64 bytes against maxHeadSize (a parsed line
 * costs more than its bytes), so a block of many short lines can hit the limit while its bytes
 * are far below it: the reply then names lines, not bytes.
 */
function toRelayError(err: unknown, maxHeaderBytes: number, failedHeaderBytes: number | undefined): RelayError {
  if (err instanceof RelayError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'EMAXLEN' && /header/i.test(message)) {
    if (failedHeaderBytes !== undefined && failedHeaderBytes < maxHeaderBytes - 1024) {
      const maxLines = Math.floor(maxHeaderBytes / HEADER_LINE_MIN_COST);
      return new RelayError('E_HEADER_TOO_BIG', {
        cause: err,
        detail: `Message header has too many lines (more than ${maxLines}: each line counts as at least ${HEADER_LINE_MIN_COST} bytes against the ${maxHeaderBytes}-byte header limit); send fewer header fields`,
      });
    }
    return new RelayError('E_HEADER_TOO_BIG', { cause: err, detail: `Message header block exceeds ${maxHeaderBytes} bytes` });
  }
  if (code === 'EMAXLEN' && /child nodes/i.test(message)) {
    return new RelayError('E_MALFORMED_MESSAGE', { cause: err, detail: 'Message has too many MIME parts' });
  }
  return new RelayError('E_MALFORMED_MESSAGE', { cause: err, logMessage: `message could not be parsed: ${message}` });
}

/**
 * A field's value as mailparser gives it: unfolded and trimmed, its 8-bit bytes read as UTF-8
 * (the splitter keeps header lines as binary strings).
 */
function fieldValue(line: string): string {
  const value = (libmime.decodeHeader(line).value || '').toString().trim();
  return Buffer.from(value, 'binary').toString();
}

/**
 * The facts of the top-level header, with mailparser's rules (so policies see what they saw
 * when mailparser read the header): From, Sender and Reply-To from their first field, To and Cc
 * from every field; Subject the first non-empty one, RFC 2047 decoded; Message-ID the first
 * non-empty one, decoded and put in angle brackets.
 */
function buildFacts(lines: readonly HeaderLine[], tally: AttachmentTally): MessageFacts {
  const values = (key: string): string[] => lines.filter((l) => l.key === key).map((l) => fieldValue(l.line));
  const first = (key: string): string[] => values(key).slice(0, 1);
  const subject = values('subject')
    .map(decodeWords)
    .find((v) => v !== '');
  const messageId = values('message-id')
    .map(decodeWords)
    .find((v) => v !== '');
  return {
    from: parseMailboxes(first('from')),
    sender: parseMailboxes(first('sender'))[0],
    replyTo: parseMailboxes(first('reply-to')),
    to: parseMailboxes(values('to')),
    cc: parseMailboxes(values('cc')),
    subject,
    messageId: messageId === undefined ? undefined : messageIdFormat(messageId),
    date: rawValue(lines, 'date'),
    attachments: { ...tally },
    headerNames: lines.map((l) => l.key.toLowerCase()).filter((k) => k !== ''),
  };
}

/** mailparser's ensureMessageIDFormat: angle brackets added where missing. */
function messageIdFormat(value: string): string {
  return `${value.startsWith('<') ? '' : '<'}${value}${value.endsWith('>') ? '' : '>'}`;
}

/** The raw (unfolded, trimmed) text of the first top-level field with this name. */
function rawValue(lines: readonly HeaderLine[], key: string): string | undefined {
  const line = lines.find((l) => l.key.toLowerCase() === key)?.line;
  if (line === undefined) return undefined;
  return line
    .slice(line.indexOf(':') + 1)
    .replace(/\r?\n(?=[ \t])/g, '')
    .trim();
}
