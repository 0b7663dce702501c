/**
 * Per-upstream sender: an upstream that authenticates as one mailbox may only send as that
 * mailbox (Exchange Online's Send-As check), so `upstreams[].from` replaces the From address of
 * messages sent through it, keeping the display name.
 *
 * Does: rewrite the From field of a top-level header block: a pure function of the header
 *   (the caller swaps the header of the message's source: the body is never read, so a retry
 *   through such an upstream costs the header's bytes, not the message's).
 * Never: touches the body; reads a file.
 * Assumes: `header` is the final header block (CRLF-terminated fields, no blank line).
 */
import addressparser from 'nodemailer/lib/addressparser';
import { formatMailbox } from '../core/address.js';
import { decodeWords } from '../core/address-list.js';
import { applyHeaderEdits, headerFieldValues } from './header-edits.js';

/**
 * The display name of the first mailbox (or group) of a From value, RFC 2047 decoded as
 * mailparser decodes it (addressparser, then libmime: a name that fails to decode stays as
 * written), so formatMailbox encodes it once, not twice.
 */
function displayName(value: string): string {
  const name = (addressparser(value)[0]?.name ?? '').toString().trim();
  return name === '' ? '' : decodeWords(name);
}

/** The header block with its From set to `address` (the first From's display name kept). */
export function overrideSender(header: Buffer, address: string): Buffer {
  const current = headerFieldValues(header, 'from')[0];
  const name = current === undefined ? '' : displayName(current);
  return applyHeaderEdits(header, [{ op: 'set', name: 'From', value: formatMailbox({ name, address }) }]);
}
