/**
 * Recipients = the SMTP envelope, exactly, for an upstream that addresses whoever the headers name.
 *
 * Graph has no envelope: sendMail and a draft's send deliver to the message's To, Cc and Bcc.
 * The relay's contract is the SMTP envelope (alwaysBcc and Bcc recipients exist only there; a
 * header may name an address the client never gave as RCPT TO). So when the header recipients
 * and the envelope differ, the top-level recipient fields are rewritten before Graph sees them:
 *   - To and Cc keep only the addresses that are in the envelope (a field is rewritten only when
 *     it loses an address; untouched fields keep their bytes; a field left empty is removed);
 *   - Bcc becomes every envelope address not in the kept To/Cc: those recipients get the
 *     message without appearing to anyone (Exchange removes Bcc from the copies it delivers).
 * Consequence, written down in the README: a header-only address disappears from the visible
 * To/Cc of the copy that goes out, because with Graph naming it means sending to it.
 *
 * Does: compute the header edits (pure). Never: add an address that is not in the envelope.
 * Assumes: header values are raw (unfolded) field bodies; names are RFC 2047-decoded by
 *   core/address-list.ts (mailparser's rules) and encoded again by core/address.ts formatMailbox.
 */
import { parseMailboxes } from '../../core/address-list.js';
import { formatMailbox } from '../../core/address.js';
import type { Mailbox } from '../../core/types.js';
import type { TopHeaderEdit } from './mime.js';

/** Every mailbox of address-list field values (groups flattened), names decoded. */
export const mailboxes = (values: readonly string[]): Mailbox[] => parseMailboxes(values);

const key = (address: string): string => address.toLowerCase();

function formatList(list: readonly Mailbox[]): string {
  return list.map((m) => formatMailbox(m)).join(', ');
}

/**
 * Edits that make the header recipients equal the envelope; [] when they already are.
 * `headers` holds the raw values of the top-level To, Cc and Bcc fields.
 */
export function recipientEdits(
  headers: { readonly to: readonly string[]; readonly cc: readonly string[]; readonly bcc: readonly string[] },
  envelope: readonly string[],
): TopHeaderEdit[] {
  const wanted = new Set(envelope.map(key));
  const to = mailboxes(headers.to);
  const cc = mailboxes(headers.cc);
  const bcc = mailboxes(headers.bcc);
  const named = new Set([...to, ...cc, ...bcc].map((m) => key(m.address)));
  if (named.size === wanted.size && [...named].every((a) => wanted.has(a))) return [];

  const edits: TopHeaderEdit[] = [];
  const visible = new Set<string>();
  for (const [name, list] of [['To', to], ['Cc', cc]] as const) {
    const kept = list.filter((m) => wanted.has(key(m.address)));
    for (const m of kept) visible.add(key(m.address));
    if (kept.length !== list.length) edits.push({ name, value: kept.length === 0 ? undefined : formatList(kept) });
  }
  const seen = new Set<string>();
  const hidden = envelope.filter((a) => {
    const k = key(a);
    if (visible.has(k) || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const namesByAddress = new Map(bcc.map((m) => [key(m.address), m.name] as const));
  edits.push({ name: 'Bcc', value: hidden.length === 0 ? undefined : formatList(hidden.map((a) => ({ name: namesByAddress.get(key(a)) ?? '', address: a }))) });
  return edits;
}

/**
 * The From edit that makes the message go out as `address` (the display name kept), or none when
 * its From already is that address.
 */
export function senderEdit(from: readonly string[], address: string): TopHeaderEdit[] {
  const current = mailboxes(from)[0];
  if (current !== undefined && key(current.address) === key(address)) return [];
  return [{ name: 'From', value: formatMailbox({ name: current?.name ?? '', address }) }];
}
