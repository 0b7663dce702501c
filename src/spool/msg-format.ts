/**
 * The layout of a spooled message file (`<qid>.msg`), as bytes:
 *
 *   [ body | final header block | meta JSON | footer ]
 *
 * - body: the body bytes as they arrived (from the blank line after the header on): the
 *   receive half's draft file is written from its first body byte, so it becomes the message
 *   file by appending the rest and one rename, never a copy;
 * - header: the final top-level header block (policy edits applied), up to and including the
 *   CRLF of its last field; the message an upstream gets is header + body;
 * - meta: the SpoolMeta at store time, compact JSON + "\n";
 * - footer: FOOTER_BYTES of ASCII, `smtp-sidecar spool v1 <body:16> <header:10> <meta:10>`,
 *   zero-padded decimal lengths, padded with spaces, ending in "\n".
 *
 * Does: write and parse the footer, and say where each part is. A file whose footer has another
 *   magic, another version or lengths that do not add up to its size is refused with the
 *   reason (the spool quarantines it: a newer relay's file is never misread).
 * Never: does I/O.
 * Assumes: sizes fit the field widths (16 digits for the body, 10 for header and meta: far
 *   beyond any message the intake accepts).
 */

export const FOOTER_BYTES = 64;
const MAGIC = 'smtp-sidecar spool v';
const VERSION = 1;
const FOOTER = /^smtp-sidecar spool v1 (\d{16}) (\d{10}) (\d{10}) *\n$/;

/** Where the parts of a message file are (byte offsets), from its footer and size. */
export interface MsgLayout {
  readonly bodyBytes: number;
  readonly headerStart: number;
  readonly headerBytes: number;
  readonly metaStart: number;
  readonly metaBytes: number;
  /** bytes from the header's start to the end of the file (header + meta + footer) */
  readonly tailBytes: number;
}

export function encodeFooter(bodyBytes: number, headerBytes: number, metaBytes: number): Buffer {
  const text = `${MAGIC}${VERSION} ${String(bodyBytes).padStart(16, '0')} ${String(headerBytes).padStart(10, '0')} ${String(metaBytes).padStart(10, '0')}`;
  return Buffer.from(`${text.padEnd(FOOTER_BYTES - 1, ' ')}\n`, 'latin1');
}

/** The layout from the footer (the file's last FOOTER_BYTES) and the file's size, or why it cannot be read. */
export function parseFooter(footer: Buffer, fileBytes: number): MsgLayout | string {
  if (fileBytes < FOOTER_BYTES || footer.length !== FOOTER_BYTES) return `too short for a message file (${fileBytes} bytes)`;
  const text = footer.toString('latin1');
  if (!text.startsWith(MAGIC)) return 'no message-file footer (not written by this relay)';
  const match = FOOTER.exec(text);
  if (match === null) {
    const version = /^smtp-sidecar spool v(\d+)/.exec(text)?.[1];
    return version !== undefined && Number(version) !== VERSION
      ? `message-file format v${version} is unknown to this relay (written by a newer version?)`
      : 'message-file footer is malformed';
  }
  const [bodyBytes, headerBytes, metaBytes] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (bodyBytes + headerBytes + metaBytes + FOOTER_BYTES !== fileBytes) {
    return `message-file lengths (${bodyBytes} + ${headerBytes} + ${metaBytes} + footer) do not add up to its ${fileBytes} bytes`;
  }
  return { bodyBytes, headerStart: bodyBytes, headerBytes, metaStart: bodyBytes + headerBytes, metaBytes, tailBytes: headerBytes + metaBytes + FOOTER_BYTES };
}
