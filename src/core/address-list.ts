/**
 * Address-list header values (From, To, Cc, Bcc, Reply-To, Sender) → mailboxes, decoded the way
 * mail clients show them.
 *
 * Does: parse each value with nodemailer's addressparser; decode RFC 2047 encoded words in
 *   display names (libmime); keep an address part that hides an encoded word only when it
 *   decodes to a plain `local@domain` (RFC 2047 section 5 keeps encoded words out of the
 *   addr-spec, so `=?utf-8?B?...?=@x` naming another address is not taken at its word);
 *   decode punycode (`xn--`) domain labels to Unicode; flatten groups. This is what mailparser's
 *   `parseAddressHeader` does, done with the two small libraries it uses, so the relay does not
 *   load mailparser (and its HTML, link and charset tables) to read a header.
 * Never: return an entry without an address (a group's name, an empty mailbox).
 * Assumes: values are header field bodies as strings (folding may be left in; 8-bit bytes
 *   already decoded to the string).
 */
import { domainToUnicode } from 'node:url';
import libmime from 'libmime';
import addressparser, { type Address } from 'nodemailer/lib/addressparser';
import type { Mailbox } from './types.js';

/** An RFC 2047 encoded word */
const ENCODED_WORD = /[=]\?[^?]+\?[BbQq]\?[^?]*\?[=]/;

/** RFC 2047 encoded words decoded (libmime); text that does not decode stays as written. */
export function decodeWords(text: string): string {
  try {
    return libmime.decodeWords(text);
  } catch {
    return text;
  }
}

/**
 * The address with every `xn--` label of its domain in Unicode (an invalid label stays as is),
 * when its domain starts with one (mailparser's condition).
 */
function unicodeDomain(address: string): string {
  if (!address.includes('@xn--')) return address;
  const at = address.lastIndexOf('@');
  const labels = address
    .slice(at + 1)
    .split('.')
    .map((label) => {
      if (!label.startsWith('xn--')) return label;
      const decoded = domainToUnicode(label);
      return decoded === '' ? label : decoded;
    });
  return `${address.slice(0, at + 1)}${labels.join('.')}`;
}

function decodedAddress(raw: string): string {
  let address = raw;
  if (ENCODED_WORD.test(address)) {
    const decoded = decodeWords(address);
    address = /^[^\s@]+@[^\s@]+$/.test(decoded) && !/[=]\?/.test(decoded) ? decoded : '';
  }
  return address === '' ? '' : unicodeDomain(address);
}

/** Every mailbox of these address-list field values, in order (groups flattened). */
export function parseMailboxes(values: readonly string[]): Mailbox[] {
  const out: Mailbox[] = [];
  const visit = (entries: readonly Address[]): void => {
    for (const entry of entries) {
      if (entry.group !== undefined) {
        visit(entry.group);
        continue;
      }
      const address = decodedAddress(entry.address || '');
      if (address === '') continue;
      const name = (entry.name || '').toString().trim();
      out.push({ name: name === '' ? '' : decodeWords(name), address });
    }
  };
  for (const value of values) if (typeof value === 'string' && value !== '') visit(addressparser(value));
  return out;
}
