/**
 * Per-upstream sender: an upstream that authenticates as one mailbox may only send as that
 * mailbox (Exchange Online's Send-As check), so `upstreams[].from` replaces the From address of
 * messages sent through it, keeping the display name.
 *
 * Does: rewrite the top-level From of the final bytes. Never: touches the body.
 * Assumes: it runs only when an upstream sets `from` (it reads the whole message; large
 * messages through such an upstream cost one extra read).
 */
import { readFile } from 'node:fs/promises';
import { parseAddressHeader } from 'mailparser';
import type { RawSource } from '../core/ports.js';
import { formatMailbox } from '../core/address.js';
import { applyHeaderEdits, headerFieldValues } from './header-edits.js';

/** Index just past the CRLF that ends the last header field (the blank line is not included). */
export function headerBlockEnd(bytes: Buffer): number {
  if (bytes.subarray(0, 2).equals(Buffer.from('\r\n'))) return 0;
  const at = bytes.indexOf('\r\n\r\n');
  return at === -1 ? bytes.length : at + 2;
}

export async function overrideSender(raw: RawSource, address: string): Promise<Buffer> {
  const bytes = Buffer.isBuffer(raw) ? raw : await readFile(raw.path);
  const end = headerBlockEnd(bytes);
  const header = bytes.subarray(0, end);
  const current = headerFieldValues(header, 'from')[0];
  // mailparser decodes RFC 2047 display names, so formatMailbox encodes them once, not twice
  const name = current === undefined ? '' : (parseAddressHeader(current).value[0]?.name ?? '');
  const edited = applyHeaderEdits(header, [{ op: 'set', name: 'From', value: formatMailbox({ name, address }) }]);
  return Buffer.concat([edited, bytes.subarray(end)]);
}
