/**
 * Entries of the previous spool layout (`<qid>.eml` = header + body, `<qid>.json` = SpoolMeta,
 * in queue/ and failed/), converted at start-up to one message file (msg-format.ts).
 *
 * Does: find the old entry's header block (its `headerBytes` when the .json has it, else the
 *   blank line), write `tmp/<qid>.msg` (body range copied from the .eml, then header, meta,
 *   footer), fsync it, rename it next to the old pair, fsync that directory, then remove the
 *   .json and the .eml. A crash at any point leaves the old pair whole, or the new file durable
 *   (with or without the old pair, which the next recovery removes): never no copy at all.
 * Never: changes a byte of the message; touches the old pair before the new file is durable.
 * Assumes: the caller checked the .json (meta-check.ts) and owns the spool (its lock); the .eml
 *   is not written to meanwhile.
 */
import { headerBlockEnd } from '../core/raw-source.js';
import type { SpoolMeta } from '../core/types.js';
import { encodeFooter } from './msg-format.js';
import type { SpoolFileHandle, SpoolFs } from './spool-fs.js';

/**
 * How far into an old .eml without `headerBytes` the blank line after the header is looked for:
 * the intake refuses header blocks over 1 MiB.
 */
const HEADER_SCAN_BYTES = 1024 * 1024 + 4;
/** The first look for it (most header blocks are a few KiB). */
const HEADER_FIRST_READ_BYTES = 64 * 1024;

export interface LegacyContext {
  readonly fs: SpoolFs;
  /** writes a new file in tmp/ durably (removing it on failure) */
  writeFileDurably(path: string, options: { readonly exclusive: boolean }, fill: (file: SpoolFileHandle) => Promise<void>): Promise<void>;
  /** fsyncs the spool directory the converted file went to */
  syncDir(subdir: 'queue' | 'failed'): Promise<void>;
}

export interface ConvertedEntry {
  readonly meta: SpoolMeta;
  readonly header: Buffer;
  readonly bodyBytes: number;
}

/** The header block of an old .eml and the file's size. */
async function legacyHeader(fs: SpoolFs, emlPath: string, headerBytes: number | undefined): Promise<{ readonly header: Buffer; readonly sizeBytes: number }> {
  if (headerBytes !== undefined) {
    const read = await fs.readHead(emlPath, headerBytes);
    if (read.head.length !== headerBytes) throw new Error(`${emlPath} has ${read.sizeBytes} bytes, shorter than its ${headerBytes}-byte header`);
    return { header: read.head, sizeBytes: read.sizeBytes };
  }
  let read = await fs.readHead(emlPath, HEADER_FIRST_READ_BYTES);
  if (headerBlockEnd(read.head) === read.head.length && read.head.length < Math.min(read.sizeBytes, HEADER_SCAN_BYTES)) {
    read = await fs.readHead(emlPath, HEADER_SCAN_BYTES); // a long header: look further
  }
  // a copy: the rest of what was read is body, and must not stay in memory with the header
  return { header: Buffer.from(read.head.subarray(0, headerBlockEnd(read.head))), sizeBytes: read.sizeBytes };
}

/** The meta without the previous layout's own field (`headerBytes`: the footer says it now). */
function withoutHeaderBytes(meta: SpoolMeta): SpoolMeta {
  return Object.fromEntries(Object.entries(meta).filter(([key]) => key !== 'headerBytes')) as unknown as SpoolMeta;
}

/**
 * Converts `<dir>/<qid>.eml` + `<dir>/<qid>.json` into `<dir>/<qid>.msg` (through `tmpPath`),
 * then removes the pair. Throws when the new file cannot be written (the pair stays as it was).
 */
export async function convertLegacyEntry(
  ctx: LegacyContext,
  paths: { readonly subdir: 'queue' | 'failed'; readonly eml: string; readonly json: string; readonly msg: string; readonly tmp: string },
  checkedMeta: SpoolMeta,
): Promise<ConvertedEntry> {
  const raw = (checkedMeta as unknown as { readonly headerBytes?: unknown }).headerBytes;
  const { header, sizeBytes } = await legacyHeader(ctx.fs, paths.eml, typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0 ? raw : undefined);
  const meta = withoutHeaderBytes(checkedMeta);
  const metaBytes = Buffer.from(`${JSON.stringify(meta)}\n`, 'utf8');
  const bodyBytes = sizeBytes - header.length;
  await ctx.writeFileDurably(paths.tmp, { exclusive: true }, async (file) => {
    const copied = await file.appendFileContents(paths.eml, { start: header.length, end: sizeBytes });
    if (copied !== bodyBytes) throw new Error(`${paths.eml} changed while it was converted (${copied} of ${bodyBytes} body bytes)`);
    await file.writeAll([header, metaBytes, encodeFooter(bodyBytes, header.length, metaBytes.length)]);
  });
  try {
    await ctx.fs.rename(paths.tmp, paths.msg);
  } catch (err) {
    await ctx.fs.unlink(paths.tmp).catch(() => undefined);
    throw err;
  }
  await ctx.syncDir(paths.subdir);
  // The .json first (an .eml without .json is never an entry of the old layout). Best effort:
  // the new file is durable, and the next recovery removes a pair left next to it.
  for (const path of [paths.json, paths.eml]) await ctx.fs.unlink(path).catch(() => undefined);
  return { meta, header, bodyBytes };
}
