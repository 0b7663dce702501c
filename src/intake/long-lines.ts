/**
 * Lines longer than SMTP allows (RFC 5321 4.5.3.1.6 and RFC 5322 2.1.1: 998 characters
 * before the CRLF), which upstreams refuse ("500 Line too long") after the relay said 250.
 *
 * Does: pass the message through, folding every line longer than 998 characters at
 *   whitespace: a CRLF is inserted before a space or tab so that each piece is at most 998
 *   characters (the whitespace starts the next piece). In a header block that is ordinary
 *   folding (a reader unfolds it back to the same field); in a body it is a line break, which
 *   HTML renders the same and text shows as a wrapped line — what Postfix's
 *   smtp_line_length_limit does too. A line that has no whitespace to fold at within 998
 *   characters cannot be fixed: `tooLong` is then set (the longest such run) and the conductor
 *   refuses the message with 550 5.6.0 before anything is acknowledged.
 * Never: change a line of 998 characters or less, or any byte but the inserted CRLFs; hold more
 *   than one line's first 998 bytes (plus one chunk) in memory; copy chunks with no long line.
 * Assumes: lines end with LF (CRLF after line-endings normalisation; bare LF in reject mode).
 */

export const MAX_LINE_CHARS = 998;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HTAB = 0x09;
const CRLF = Buffer.from('\r\n');

export class LongLineFolder {
  /** the unfinished last line of the previous chunks (at most MAX_LINE_CHARS bytes) */
  #pending: Buffer = Buffer.alloc(0);
  /** inside a line that could not be folded: pass it through until its end */
  #unfoldable = false;
  #unfoldableLength = 0;
  /** set when a line had no whitespace to fold at: the longest such line seen so far (at least) */
  tooLong: number | undefined;
  /** how many lines were folded */
  folded = 0;

  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    const out: Buffer[] = [];
    let at = 0;
    if (this.#pending.length > 0 || this.#unfoldable) {
      const lf = chunk.indexOf(LF);
      const end = lf < 0 ? chunk.length : lf + 1;
      const line = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk.subarray(0, end)]) : chunk.subarray(0, end);
      this.#pending = Buffer.alloc(0);
      if (this.#unfoldable) {
        out.push(line);
        this.#unfoldableLength += lf < 0 ? line.length : contentLength(line, 0, line.length);
        this.tooLong = Math.max(this.tooLong ?? 0, this.#unfoldableLength);
        if (lf >= 0) this.#unfoldable = false;
      } else if (lf >= 0) {
        this.#line(line, out);
      } else {
        this.#tail(line, out);
      }
      if (lf < 0) return out;
      at = end;
    }
    // complete lines of this chunk: emit untouched runs, fold only the long ones
    let runStart = at;
    for (let lf = chunk.indexOf(LF, at); lf !== -1; lf = chunk.indexOf(LF, at)) {
      if (contentLength(chunk, at, lf) > MAX_LINE_CHARS) {
        if (at > runStart) out.push(chunk.subarray(runStart, at));
        this.#line(chunk.subarray(at, lf + 1), out);
        runStart = lf + 1;
      }
      at = lf + 1;
    }
    if (at > runStart) out.push(runStart === 0 && at === chunk.length ? chunk : chunk.subarray(runStart, at));
    if (at < chunk.length) this.#tail(chunk.subarray(at), out);
    return out;
  }

  /** End of data: what is left of an unfinished last line. */
  end(): Buffer[] {
    const rest = this.#pending;
    this.#pending = Buffer.alloc(0);
    if (rest.length === 0) return [];
    const out: Buffer[] = [];
    this.#line(rest, out);
    return out;
  }

  /** A complete line (with its LF, or the last line of the data): folded while too long. */
  #line(line: Buffer, out: Buffer[]): void {
    let rest = line;
    while (contentLength(rest, 0, rest.length) > MAX_LINE_CHARS) {
      const fold = foldPoint(rest);
      if (fold < 0) {
        this.tooLong = Math.max(this.tooLong ?? 0, contentLength(rest, 0, rest.length));
        break;
      }
      this.folded += 1;
      out.push(rest.subarray(0, fold), CRLF);
      rest = rest.subarray(fold);
    }
    out.push(rest);
  }

  /** The unfinished end of a chunk: kept while it may still fit, folded once it cannot. */
  #tail(tail: Buffer, out: Buffer[]): void {
    let rest = tail;
    while (rest.length > MAX_LINE_CHARS) {
      const fold = foldPoint(rest);
      if (fold < 0) {
        this.tooLong = Math.max(this.tooLong ?? 0, rest.length);
        this.#unfoldable = true;
        this.#unfoldableLength = rest.length;
        out.push(rest);
        return;
      }
      this.folded += 1;
      out.push(rest.subarray(0, fold), CRLF);
      rest = rest.subarray(fold);
    }
    // a copy: a view would pin the whole chunk until the line ends
    this.#pending = Buffer.from(rest);
  }
}

/** Characters of the line in [start, lfIndex) without its CR LF / LF ending. */
function contentLength(buf: Buffer, start: number, end: number): number {
  let stop = end;
  if (stop > start && buf[stop - 1] === LF) stop--;
  if (stop > start && buf[stop - 1] === CR) stop--;
  return stop - start;
}

/**
 * Where to insert the CRLF: before the last space or tab at index 1..998 that has a
 * non-whitespace character before it in the piece (so no piece is whitespace only), or -1.
 */
function foldPoint(line: Buffer): number {
  for (let i = Math.min(MAX_LINE_CHARS, line.length - 1); i >= 1; i--) {
    const byte = line[i];
    if (byte !== SP && byte !== HTAB) continue;
    const before = line[i - 1];
    if (before !== SP && before !== HTAB) return i;
  }
  return -1;
}
