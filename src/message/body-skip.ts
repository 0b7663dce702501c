/**
 * The body of a leaf MIME part, read past without the MIME splitter.
 *
 * Does: hand each body byte to `sink` (the part's size counter) until a line that could be a
 *   multipart delimiter, and give back the bytes from that line on, for the splitter to decide.
 *   A delimiter line starts with `--`, or with one CR and then `--` (mailsplit accepts a line
 *   end in front of the delimiter), so a line is given back when its first byte is `-`, or CR
 *   not followed by LF (a CR that ends the chunk too: the next byte is unknown). Base64 has
 *   neither; a text body gives back its `-- ` signature lines and the like, which the splitter
 *   then reads as body again. With no delimiter in scope (a single-part message) every byte is
 *   body. Two `indexOf` scans per chunk instead of the splitter's per-byte loop, line slices
 *   and a callback per line.
 *   The line end before a delimiter belongs to the delimiter (RFC 2046): the last line end of
 *   the bytes read past is held back until body follows it, then handed to the splitter with
 *   the line given back, which decides (as it does for the line end it holds itself).
 * Never: give a byte to `sink` that belongs to a line it gives back; keep more than a line end.
 * Assumes: it starts at the beginning of a line (the splitter was fed up to a line end) inside
 *   a leaf part's body; it gets the input in order. A lone CR or LF reaches it only in a message
 *   the intake refuses (bareLineFeeds: `normalize` makes each a CRLF, `reject` refuses the message
 *   before its facts are used): for a delimiter behind a lone CR the splitter alone gives counts
 *   that depend on the chunking, so no count is promised there (the line is given back all the same).
 */
const LF = 0x0a;
const CR = 0x0d;
const NEWLINE_DASH = Buffer.from('\n-');
const NEWLINE_CR = Buffer.from('\n\r');
const EMPTY = Buffer.alloc(0);

export class BodySkipper {
  /** the next byte starts a line */
  #atLineStart = true;
  /** the line end the bytes given to `sink` so far finish with, held back: it belongs to a delimiter, if one follows */
  #withheld: Buffer = EMPTY;

  constructor(
    private readonly sink: (bytes: Buffer) => void,
    /** false when no multipart delimiter can end this part (it is the message's only part) */
    private readonly delimitersInScope: boolean,
  ) {}

  /** Bytes of `chunk` from the first line that could be a delimiter on, or undefined when all were body. */
  push(chunk: Buffer): Buffer | undefined {
    if (chunk.length === 0) return undefined;
    const at = this.delimitersInScope ? this.#firstCandidateLine(chunk) : -1;
    if (at === -1) {
      this.#body(chunk);
      this.#atLineStart = chunk[chunk.length - 1] === LF;
      return undefined;
    }
    if (at > 0) this.#body(chunk.subarray(0, at));
    return chunk.subarray(at);
  }

  /**
   * The line end held back (0-2 bytes), for the splitter: it goes in front of the line given
   * back (the splitter drops it if that line is a delimiter, else counts it as body), or at the
   * end of the message (body).
   */
  takeWithheld(): Buffer {
    const withheld = this.#withheld;
    this.#withheld = EMPTY;
    return withheld;
  }

  /** Gives body bytes to the sink, the line end they finish with held back (as the splitter does). */
  #body(bytes: Buffer): void {
    const tail = lineEndLength(bytes);
    if (tail === bytes.length) {
      // only a line end (or the LF of a CRLF split between chunks): together with what is held
      const combined = Buffer.concat([this.#withheld, bytes]);
      const end = lineEndLength(combined);
      if (combined.length > end) this.sink(combined.subarray(0, combined.length - end));
      this.#withheld = combined.subarray(combined.length - end);
      return;
    }
    if (this.#withheld.length > 0) this.sink(this.#withheld);
    this.sink(bytes.subarray(0, bytes.length - tail));
    this.#withheld = Buffer.from(bytes.subarray(bytes.length - tail)); // a copy: the chunk is not kept
  }

  /** Index of the first line start whose line may be a delimiter, -1 if none. */
  #firstCandidateLine(chunk: Buffer): number {
    if (this.#atLineStart && mayBeDelimiter(chunk, 0)) return 0;
    const dash = chunk.indexOf(NEWLINE_DASH);
    let cr = chunk.indexOf(NEWLINE_CR);
    // "\n\r\n" is an empty line: body
    while (cr !== -1 && chunk[cr + 2] === LF) cr = chunk.indexOf(NEWLINE_CR, cr + 2);
    // (a line that starts at the chunk's last byte is found too: "\n-" and "\n\r" end the chunk)
    if (dash === -1 && cr === -1) return -1;
    const first = dash === -1 ? cr : cr === -1 ? dash : Math.min(dash, cr);
    return first + 1;
  }
}

/** Length of the line end (CRLF, LF, or a CR whose LF may follow) that `bytes` finishes with. */
function lineEndLength(bytes: Buffer): number {
  const last = bytes[bytes.length - 1];
  if (last === CR) return 1;
  if (last !== LF) return 0;
  return bytes.length >= 2 && bytes[bytes.length - 2] === CR ? 2 : 1;
}

/** The line starting at `at` may be a delimiter (given back) rather than body. */
function mayBeDelimiter(chunk: Buffer, at: number): boolean {
  const first = chunk[at];
  if (first === 0x2d) return true;
  return first === CR && chunk[at + 1] !== LF;
}
