/**
 * Streaming splitter for the top-level header block of a message.
 *
 * Does: find where the top-level header block ends, across any chunking, and hand back
 *   every byte after it unchanged. `header` is the bytes up to and including the line
 *   ending of the last header field; the body bytes returned by `push` start with the
 *   blank separator line. For any input and any chunking: header + concat(rest) === input.
 * Never: copy, inspect or change body bytes (once the separator is found, chunks are
 *   returned as they are); hold more than `maxHeaderBytes` (+ one chunk) of header.
 * Assumes: CRLF line endings (the intake normalises them), but a bare-LF blank line
 *   (`\n\n`) also ends the header block and a bare CR is ordinary content, so odd input
 *   never crashes the reader.
 */
import { RelayError } from '../core/errors.js';

const LF = 0x0a;
const CR = 0x0d;

type ReaderState = 'header' | 'body' | 'ended' | 'failed';

export class HeaderBlockReader {
  readonly #maxHeaderBytes: number;
  #state: ReaderState = 'header';
  /** Bytes received while still inside the header block (the last byte may be a pending CR). */
  #headerChunks: Buffer[] = [];
  #headerChunkBytes = 0;
  /** Set once the block is complete: the final header bytes. */
  #header: Buffer | undefined;
  /** Scanner state, carried across chunk boundaries. */
  #atLineStart = true;
  #crAtLineStart = false;

  constructor(maxHeaderBytes: number) {
    if (!Number.isFinite(maxHeaderBytes) || maxHeaderBytes < 0) {
      throw new RangeError(`maxHeaderBytes must be a non-negative number, got ${maxHeaderBytes}`);
    }
    this.#maxHeaderBytes = maxHeaderBytes;
  }

  /** True once the end of the header block has been found (or the input has ended). */
  get complete(): boolean {
    return this.#header !== undefined;
  }

  /**
   * The header block. Final once `complete` is true; before that, the header bytes seen so far.
   */
  get header(): Buffer {
    return this.#header ?? Buffer.concat(this.#headerChunks, this.#headerChunkBytes);
  }

  /** Feeds the next chunk; returns the body bytes it contains (empty while inside the header). */
  push(chunk: Buffer): Buffer[] {
    switch (this.#state) {
      case 'body':
        return chunk.length === 0 ? [] : [chunk];
      case 'ended':
        throw new RelayError('E_INTERNAL', { logMessage: 'HeaderBlockReader.push called after end()' });
      case 'failed':
        throw this.#tooBig();
      case 'header':
        return this.#scan(chunk);
    }
  }

  /** End of data: without a blank line, the whole message is header. */
  end(): void {
    if (this.#state === 'header') {
      this.#header = Buffer.concat(this.#headerChunks, this.#headerChunkBytes);
      this.#headerChunks = [];
    }
    if (this.#state !== 'failed') this.#state = 'ended';
  }

  #scan(chunk: Buffer): Buffer[] {
    // Offset (in the combined header bytes) where the blank separator line starts, if found.
    let separatorAt = -1;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (this.#crAtLineStart) {
        this.#crAtLineStart = false;
        if (byte === LF) {
          separatorAt = this.#headerChunkBytes + i - 1; // the CR may sit in an earlier chunk
          break;
        }
        // A bare CR at a line start is content of that line; this byte continues it
        // (a CR here may begin the CRLF that ends the line, which the LF case below sees).
        continue;
      }
      if (this.#atLineStart) {
        if (byte === LF) {
          separatorAt = this.#headerChunkBytes + i; // bare-LF blank line
          break;
        }
        this.#atLineStart = false;
        if (byte === CR) this.#crAtLineStart = true;
        continue;
      }
      if (byte === LF) this.#atLineStart = true;
    }

    if (separatorAt < 0) {
      this.#headerChunks.push(chunk);
      this.#headerChunkBytes += chunk.length;
      // A CR that may start the separator is not yet known to be header.
      const knownHeaderBytes = this.#headerChunkBytes - (this.#crAtLineStart ? 1 : 0);
      if (knownHeaderBytes > this.#maxHeaderBytes) {
        this.#state = 'failed';
        this.#headerChunks = [];
        throw this.#tooBig();
      }
      return [];
    }

    if (separatorAt > this.#maxHeaderBytes) {
      this.#state = 'failed';
      this.#headerChunks = [];
      throw this.#tooBig();
    }
    const seen = Buffer.concat([...this.#headerChunks, chunk], this.#headerChunkBytes + chunk.length);
    this.#header = seen.subarray(0, separatorAt);
    this.#headerChunks = [];
    this.#state = 'body';
    return [seen.subarray(separatorAt)];
  }

  #tooBig(): RelayError {
    return new RelayError('E_HEADER_TOO_BIG', { detail: `Message header block exceeds ${this.#maxHeaderBytes} bytes` });
  }
}
