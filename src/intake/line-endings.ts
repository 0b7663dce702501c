/**
 * Bare CR / bare LF handling for message data (SMTP smuggling defence, RFC 5321 §2.3.8).
 *
 * Does: in `normalize` mode turn every bare CR and bare LF into CRLF (lines end at a bare LF,
 * as in Postfix's default); in `reject` mode pass bytes through unchanged and remember that a
 * bare CR or LF was seen. Either way the spooled message has only CRLF line ends, so the bytes
 * stored are the bytes relayed (nodemailer would rewrite bare line ends on the way out anyway).
 * Never: changes a CRLF pair, even when split across chunks.
 */
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');
const CR_ONLY = Buffer.from('\r');

/**
 * True when every LF in `chunk` follows a CR and every CR is followed by an LF (a CR in the
 * last byte may still be, by the next chunk). `afterCR`: the previous chunk ended with a held CR,
 * which only an LF in the first byte completes. Uses indexOf (native) instead of a byte loop.
 */
function isClean(chunk: Buffer, afterCR: boolean): boolean {
  if (afterCR && chunk[0] !== LF) return false;
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
    if (i === 0 ? !afterCR : chunk[i - 1] !== CR) return false;
  }
  for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
    if (i + 1 < chunk.length && chunk[i + 1] !== LF) return false;
  }
  return true;
}

export class LineEndingTransform extends Transform {
  /** true once a bare CR or bare LF was seen (both modes) */
  sawBareLineEnd = false;
  private pendingCR = false;

  constructor(private readonly mode: 'normalize' | 'reject') {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (chunk.length === 0) return done();
    if (isClean(chunk, this.pendingCR)) {
      // The common case (a client that speaks CRLF): no byte changes, no byte loop, no copy,
      // except re-attaching a CR held back from the previous chunk.
      const held = this.pendingCR;
      this.pendingCR = chunk[chunk.length - 1] === CR;
      const body = this.pendingCR ? chunk.subarray(0, chunk.length - 1) : chunk;
      const out = held ? Buffer.concat([CR_ONLY, body]) : body;
      if (out.length > 0) this.push(out);
      return done();
    }
    const out: Buffer[] = [];
    let start = 0;
    let i = 0;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (chunk[0] === LF) {
        out.push(CRLF);
        start = i = 1;
      } else {
        this.bare(out, Buffer.from('\r'));
      }
    }
    for (; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === CR) {
        if (i + 1 === chunk.length) {
          out.push(chunk.subarray(start, i));
          this.pendingCR = true;
          start = chunk.length;
          break;
        }
        if (chunk[i + 1] === LF) {
          i++;
          continue;
        }
        out.push(chunk.subarray(start, i));
        this.bare(out, chunk.subarray(i, i + 1));
        start = i + 1;
      } else if (byte === LF) {
        out.push(chunk.subarray(start, i));
        this.bare(out, chunk.subarray(i, i + 1));
        start = i + 1;
      }
    }
    if (start < chunk.length) out.push(start === 0 ? chunk : chunk.subarray(start));
    const joined = out.length === 1 ? out[0]! : Buffer.concat(out);
    if (joined.length > 0) this.push(joined);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.pendingCR) {
      const out: Buffer[] = [];
      this.bare(out, Buffer.from('\r'));
      this.push(Buffer.concat(out));
    }
    done();
  }

  private bare(out: Buffer[], original: Buffer): void {
    this.sawBareLineEnd = true;
    out.push(this.mode === 'normalize' ? CRLF : original);
  }
}
