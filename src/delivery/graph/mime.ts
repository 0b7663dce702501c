/**
 * The MIME work the Graph upstream needs, streaming with @zone-eu/mailsplit: scan a message's
 * parts, write it again without some parts (and with rewritten recipient headers), and decode
 * one part's content.
 *
 * Does: `scanMime` reads the message once and lists its leaf parts (type, name, Content-ID,
 *   encoded and decoded size, whether it is an attachment) and the top-level To/Cc/Bcc/From
 *   values; `rewriteMime` writes the message with chosen leaves left out (their boundary
 *   delimiter with them) and top-level header edits applied, every other byte unchanged;
 *   `decodedLeaf` yields one leaf's decoded bytes as the file is read.
 * Never: holds more than one part's chunk in memory at a time (the rewritten message is built in
 *   memory only by callers that checked it fits a Graph request); descends into attached
 *   messages (message/rfc822 is one leaf: `ignoreEmbedded`).
 * Assumes: the source is the spooled message (CRLF line ends, as intake stores it). Leaf indexes
 *   count non-multipart nodes in stream order, which is the same for every read of the same bytes.
 */
import { Readable, Transform, Writable, pipeline } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { Joiner, Splitter, type MimeNode } from '@zone-eu/mailsplit';
import type { RawSource } from '../../core/ports.js';
import { openRaw } from '../../core/raw-source.js';

export interface MimeLeaf {
  /** position among the message's leaf parts, in stream order */
  readonly index: number;
  readonly contentType: string;
  /** decoded file name, or '' */
  readonly filename: string;
  /** Content-ID without the angle brackets, or '' */
  readonly contentId: string;
  readonly inline: boolean;
  /** a part Graph can carry as a file attachment (anything but the text/html bodies and the root) */
  readonly attachment: boolean;
  /** bytes this part takes in the message: its header block and its encoded body */
  readonly partBytes: number;
  /** decoded content bytes (counted for attachments only; 0 for others) */
  readonly decodedBytes: number;
}

export interface MimeScan {
  readonly leaves: readonly MimeLeaf[];
  /** unfolded raw values of the top-level fields, in order (a field may occur more than once) */
  readonly headers: { readonly to: readonly string[]; readonly cc: readonly string[]; readonly bcc: readonly string[]; readonly from: readonly string[] };
}

/** A top-level header change: `value` undefined removes every field of that name. */
export interface TopHeaderEdit {
  readonly name: string;
  readonly value: string | undefined;
}

type Chunk = MimeNode | { readonly type: 'data' | 'body'; readonly value: Buffer };

/** A Splitter fed from `source`; destroying it (or breaking out of its iteration) closes the file. */
function split(source: RawSource): Splitter {
  const splitter = new Splitter({ ignoreEmbedded: true });
  pipeline(openRaw(source), splitter, () => undefined);
  return splitter;
}

const BODY_TYPES = new Set(['text/plain', 'text/html']);

function isAttachment(node: MimeNode): boolean {
  if (node.root) return false;
  if (node.disposition === 'attachment') return true;
  return !BODY_TYPES.has(node.contentType || 'text/plain');
}

function contentIdOf(node: MimeNode): string {
  const raw = node.headers === false ? '' : node.headers.getFirst('content-id');
  return raw.trim().replace(/^<|>$/g, '');
}

function headerValues(node: MimeNode, key: string): string[] {
  return node.headers === false ? [] : node.headers.getDecoded(key).map((h) => h.value);
}

/** Reads the message once: its leaves and its top-level recipient and sender fields. */
export async function scanMime(source: RawSource): Promise<MimeScan> {
  const leaves: MimeLeaf[] = [];
  let headers: MimeScan['headers'] = { to: [], cc: [], bcc: [], from: [] };
  let current: { node: MimeNode; index: number; bodyBytes: number; decoded: number; decoder: Transform | undefined } | undefined;
  const finish = (): void => {
    if (current === undefined) return;
    const { node, index, bodyBytes, decoder } = current;
    if (decoder !== undefined) {
      decoder.end();
      for (let c = decoder.read() as Buffer | null; c !== null; c = decoder.read() as Buffer | null) current.decoded += c.length;
    }
    leaves.push({
      index,
      contentType: node.contentType || 'text/plain',
      filename: node.filename || '',
      contentId: contentIdOf(node),
      inline: node.disposition !== 'attachment' && contentIdOf(node) !== '',
      attachment: isAttachment(node),
      partBytes: (node.headers === false ? 0 : node.getHeaders().length) + bodyBytes,
      decodedBytes: current.decoded,
    });
    current = undefined;
  };
  for await (const chunk of split(source) as AsyncIterable<Chunk>) {
    if (chunk.type === 'node') {
      finish();
      if (chunk.root) headers = { to: headerValues(chunk, 'to'), cc: headerValues(chunk, 'cc'), bcc: headerValues(chunk, 'bcc'), from: headerValues(chunk, 'from') };
      if (chunk.multipart) continue;
      current = { node: chunk, index: leaves.length, bodyBytes: 0, decoded: 0, decoder: isAttachment(chunk) ? chunk.getDecoder() : undefined };
    } else if (chunk.type === 'body' && current !== undefined) {
      current.bodyBytes += chunk.value.length;
      if (current.decoder !== undefined) {
        // libbase64/libqp decode synchronously: what one write produced can be read at once
        current.decoder.write(chunk.value);
        for (let c = current.decoder.read() as Buffer | null; c !== null; c = current.decoder.read() as Buffer | null) current.decoded += c.length;
      }
    } else if (chunk.type === 'data') {
      finish();
    }
  }
  finish();
  return { leaves, headers };
}

/** The multipart delimiter line a dropped part leaves behind at the end of the data before it. */
const TRAILING_DELIMITER = /(\r?\n)?--[^\r\n]*\r?\n$/;

/**
 * The message without the leaves in `drop` (each with the delimiter line that opened it) and
 * with `edits` applied to the top-level header; every other byte as in the source.
 */
export async function rewriteMime(source: RawSource, drop: ReadonlySet<number>, edits: readonly TopHeaderEdit[]): Promise<Buffer> {
  let leafIndex = -1;
  let dropping = false;
  let pendingData: Buffer | undefined;
  const out: Buffer[] = [];
  const edit = new Transform({
    objectMode: true,
    transform(chunk: Chunk, _enc, done) {
      if (chunk.type === 'node') {
        if (chunk.root) {
          for (const e of edits) {
            if (chunk.headers === false) break;
            chunk.headers.remove(e.name);
            if (e.value !== undefined) chunk.headers.add(e.name, e.value);
          }
        }
        if (!chunk.multipart) leafIndex += 1;
        dropping = !chunk.multipart && drop.has(leafIndex);
        if (dropping && pendingData !== undefined) pendingData = Buffer.from(pendingData.toString('binary').replace(TRAILING_DELIMITER, ''), 'binary');
        if (pendingData !== undefined) this.push({ type: 'data', value: pendingData });
        pendingData = undefined;
        if (!dropping) this.push(chunk);
      } else if (chunk.type === 'data') {
        dropping = false;
        if (pendingData !== undefined) this.push({ type: 'data', value: pendingData });
        pendingData = chunk.value;
      } else if (!dropping) {
        this.push(chunk);
      }
      done();
    },
    flush(done) {
      if (pendingData !== undefined) this.push({ type: 'data', value: pendingData });
      done();
    },
  });
  await pipelineAsync(
    split(source),
    edit,
    new Joiner(),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(out);
}

/** One leaf's decoded content, chunk by chunk, as the message is read (stops reading when the consumer stops). */
export async function* decodedLeaf(source: RawSource, index: number): AsyncGenerator<Buffer> {
  let leafIndex = -1;
  let decoder: Transform | undefined;
  const drain = function* (d: Transform): Generator<Buffer> {
    for (let c = d.read() as Buffer | null; c !== null; c = d.read() as Buffer | null) yield c;
  };
  for await (const chunk of split(source) as AsyncIterable<Chunk>) {
    if (chunk.type === 'node') {
      if (decoder !== undefined) break;
      if (chunk.multipart) continue;
      leafIndex += 1;
      if (leafIndex === index) decoder = chunk.getDecoder();
    } else if (decoder !== undefined) {
      if (chunk.type === 'data') break;
      decoder.write(chunk.value);
      yield* drain(decoder);
    }
  }
  if (decoder === undefined) throw new Error(`MIME part ${index} not found`);
  decoder.end();
  yield* drain(decoder);
}
