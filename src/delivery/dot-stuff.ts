/**
 * The DATA encoder of the raw SMTP sender: dot-stuffing and line-end repair on the way out.
 *
 * Does: produce exactly the bytes nodemailer's DataStream (smtp-connection/data-stream.js,
 *   nodemailer 10.6.0) produces for any input and any chunking: a dot at the start of a line is
 *   doubled, a bare LF becomes CRLF, a bare CR becomes CRLF (and a dot after it is stuffed like
 *   at any line start), and the data ends with CRLF "." CRLF. The spooled message already has
 *   only CRLF line ends (intake/line-endings.ts), so the common chunk is checked with `indexOf`
 *   (native) instead of DataStream's per-byte loop and passes through uncopied unless a line
 *   starts with a dot; a chunk with a bare CR or LF takes the per-byte path.
 * Never: lets anything in the message end the DATA phase early (SMTP smuggling): after
 *   encoding, "CRLF . CRLF" occurs only as the terminator, and no bare CR or LF is left for a
 *   lenient server to read as a line end (test/unit/delivery/dot-stuff.test.ts checks both
 *   against DataStream itself with generated inputs).
 * Assumes: it is piped into the socket once the server answered DATA with 354 (smtp-raw.ts).
 */
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** the previous byte before the first chunk: a dot there is at a line start */
const START = -1;

const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');

/**
 * Positions of the dots that start a line, when every LF in `chunk` follows a CR and every CR
 * is followed by an LF (a CR in the last byte is completed or not by the next chunk, which
 * sees it as `lastByte`); undefined when the chunk has a bare CR or LF.
 */
function cleanLineStartDots(chunk: Buffer, lastByte: number): number[] | undefined {
  if (lastByte === CR && chunk[0] !== LF) return undefined;
  const dots: number[] = [];
  if ((lastByte === LF || lastByte === START) && chunk[0] === DOT) dots.push(0);
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
    if ((i === 0 ? lastByte : chunk[i - 1]) !== CR) return undefined;
    if (chunk[i + 1] === DOT) dots.push(i + 1);
  }
  for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
    if (i + 1 < chunk.length && chunk[i + 1] !== LF) return undefined;
  }
  return dots;
}

/** Inserts a dot before each position (ascending). */
function stuffAt(chunk: Buffer, dots: readonly number[]): Buffer {
  if (dots.length === 0) return chunk;
  const parts: Buffer[] = [];
  let from = 0;
  for (const at of dots) {
    parts.push(chunk.subarray(from, at), INSERT_DOT);
    from = at;
  }
  parts.push(chunk.subarray(from));
  return Buffer.concat(parts, chunk.length + dots.length);
}

/** DataStream's per-byte algorithm (nodemailer 10.6.0), for chunks with a bare CR or LF. */
function encodeAnyChunk(chunk: Buffer, lastByte: number): Buffer {
  const parts: Buffer[] = [];
  let length = 0;
  let lastPos = 0;
  for (let i = 0; i < chunk.length; i++) {
    const byte = chunk[i]!;
    const prev = i > 0 ? chunk[i - 1] : lastByte;
    let insert: Buffer | undefined;
    if (prev === CR && byte !== LF) {
      // a bare CR becomes CRLF; a dot right after it starts a line, so it is stuffed too
      insert = byte === DOT ? INSERT_LF_DOT : INSERT_LF;
    } else if (byte === LF && prev !== CR) {
      insert = INSERT_CR;
    } else if (byte === DOT && (prev === LF || prev === START)) {
      insert = INSERT_DOT;
    }
    if (insert !== undefined) {
      if (i > lastPos) {
        parts.push(chunk.subarray(lastPos, i));
        length += i - lastPos;
      }
      parts.push(insert);
      length += insert.length;
      lastPos = i;
    }
  }
  if (parts.length === 0) return chunk;
  parts.push(chunk.subarray(lastPos));
  length += chunk.length - lastPos;
  return Buffer.concat(parts, length);
}

/** Message bytes in, DATA bytes out (without the 354 before or the reply after). */
export class DotStuffer extends Transform {
  /** bytes of the message (the counters nodemailer's SMTPConnection reads from its data stream) */
  inByteCount = 0;
  /** bytes written to the server, terminator included */
  outByteCount = 0;
  private lastByte = START;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (chunk.length === 0) return done();
    this.inByteCount += chunk.length;
    const dots = cleanLineStartDots(chunk, this.lastByte);
    const out = dots !== undefined ? stuffAt(chunk, dots) : encodeAnyChunk(chunk, this.lastByte);
    this.lastByte = chunk[chunk.length - 1]!;
    this.outByteCount += out.length;
    this.push(out);
    done();
  }

  override _flush(done: TransformCallback): void {
    const end = this.lastByte === LF ? '.\r\n' : this.lastByte === CR ? '\n.\r\n' : '\r\n.\r\n';
    this.outByteCount += end.length;
    this.push(Buffer.from(end, 'latin1'));
    done();
  }
}
