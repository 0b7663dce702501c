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

export class LineEndingTransform extends Transform {
  /** true once a bare CR or bare LF was seen (both modes) */
  sawBareLineEnd = false;
  private pendingCR = false;

  constructor(private readonly mode: 'normalize' | 'reject') {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
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
