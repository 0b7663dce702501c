/**
 * A message's final bytes (RawSource, core/types.ts) read the same way everywhere: the
 * transports, the outbox, the Graph MIME scanner, the notices and the admin's view.
 *
 * Does: open a source as one byte stream (the header, then the body range of its spool file),
 *   give its header block and length, and swap its header (a per-upstream From) without
 *   touching the body.
 * Never: reads a body byte to get or replace the header; keeps a file open once the stream has
 *   ended or been destroyed; lets a file that ends before its range pass as a shorter message
 *   (the stream fails instead).
 * Assumes: CRLF line endings (the intake normalises them); a file source's range was written by
 *   the spool.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { RawSource } from './types.js';

const CRLF = Buffer.from('\r\n');

/** Index just past the CRLF that ends the last header field (the blank line is not included). */
export function headerBlockEnd(bytes: Buffer): number {
  if (bytes.subarray(0, 2).equals(CRLF)) return 0;
  const at = bytes.indexOf('\r\n\r\n');
  return at === -1 ? bytes.length : at + 2;
}

/** The top-level header block (up to and including the last field's CRLF). */
export function rawHeader(source: RawSource): Buffer {
  return Buffer.isBuffer(source) ? source.subarray(0, headerBlockEnd(source)) : source.header;
}

/** The message's size in bytes. */
export function rawLength(source: RawSource): number {
  return Buffer.isBuffer(source) ? source.length : source.header.length + (source.bodyEnd - source.bodyStart);
}

/** The bytes of the source held in memory (all of an in-memory message, the header of a file's). */
export function rawBytesInMemory(source: RawSource): number {
  return Buffer.isBuffer(source) ? source.length : source.header.length;
}

/** The same message with another header block; a file source keeps its body range (nothing is read). */
export function withHeader(source: RawSource, header: Buffer): RawSource {
  if (!Buffer.isBuffer(source)) return { ...source, header };
  return Buffer.concat([header, source.subarray(headerBlockEnd(source))]);
}

async function* fileSourceChunks(source: Exclude<RawSource, Buffer>): AsyncGenerator<Buffer> {
  if (source.header.length > 0) yield source.header;
  const wanted = source.bodyEnd - source.bodyStart;
  if (wanted <= 0) return;
  let got = 0;
  // destroying the outer stream returns this generator, which destroys the file stream
  for await (const chunk of createReadStream(source.path, { start: source.bodyStart, end: source.bodyEnd - 1 }) as AsyncIterable<Buffer>) {
    got += chunk.length;
    yield chunk;
  }
  if (got !== wanted) throw new Error(`spool file ${source.path} ends ${wanted - got} bytes before the message does (truncated)`);
}

/** The message as one byte stream; a file is opened only once the stream is read. */
export function openRaw(source: RawSource): Readable {
  return Buffer.isBuffer(source) ? Readable.from([source], { objectMode: false }) : Readable.from(fileSourceChunks(source), { objectMode: false });
}

/** The whole message in memory (for the callers that need it whole and checked that it fits). */
export async function readRaw(source: RawSource): Promise<Buffer> {
  if (Buffer.isBuffer(source)) return source;
  const chunks: Buffer[] = [];
  for await (const chunk of openRaw(source) as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
