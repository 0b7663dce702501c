/**
 * Mailbox formatting and address patterns.
 *
 * Does: write one RFC 5322 mailbox (`formatMailbox`) whose display name can never change
 *   which address it parses to, and that the header editor can always fold (no token longer
 *   than 60 characters in the name); encode unstructured header text the same way
 *   (`encodeUnstructured`); match addresses against `user@x`, `*@x` and `*@*.x`
 *   patterns (`matchesAddressPattern`).
 * Never: let a display name carry CR, LF, NUL or other control characters; let a name
 *   that contains `<x@y>`, quotes, commas or a literal encoded-word become address syntax.
 * Assumes: addresses come from config (validated) or from parsed headers (mailparser).
 */
import { domainToASCII } from 'node:url';
import { encodeWord, encodeWords, quoteString } from 'nodemailer/lib/mime-funcs';
import { RelayError } from './errors.js';
import type { Mailbox } from './types.js';

/** C0 controls, DEL and C1 controls. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/g;
/** A name that can go out as a bare phrase: letters, digits, underscore and single spaces. */
const PLAIN_PHRASE = /^[A-Za-z0-9_]+( [A-Za-z0-9_]+)*$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** RFC 5322 dot-atom (ASCII atext, plus any non-ASCII for SMTPUTF8 local parts). */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]+)*$/;
const ASCII_DOMAIN = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$|^\[[\x21-\x5a\x5e-\x7e]+\]$/;

/** Display name as it will be shown: controls removed, whitespace runs collapsed, trimmed. */
export function cleanDisplayName(name: string): string {
  return name.replace(/[\t\r\n]/g, ' ').replace(CONTROL_CHARS, '').replace(/\s+/g, ' ').trim();
}

/**
 * A header line is folded only at whitespace: a token longer than this (a 1,200-character name
 * without spaces, or one decoded from 40 adjacent encoded-words) could not be folded to 78
 * characters, and past 998 an upstream refuses the line. Such names go out as encoded-words,
 * which nodemailer splits into words of at most 75 characters separated by spaces (a reader
 * joins adjacent encoded-words without the space, so the name it shows is unchanged).
 */
const LONGEST_TOKEN = 60;
const hasLongToken = (text: string): boolean => text.split(/[ \t]+/).some((token) => token.length > LONGEST_TOKEN);

/**
 * Unstructured header text (RFC 5322 2.2.1) the header editor can always fold: non-ASCII words
 * RFC 2047-encoded; a text with a token too long to fold (a 1,000-character value without
 * spaces from the config) goes out as split encoded-words, which decode to the same text.
 */
export function encodeUnstructured(text: string): string {
  return hasLongToken(text) ? encodeWord(text, 'Q', 52) : encodeWords(text, 'Q', 52);
}

function encodeDisplayName(name: string): string {
  if (name === '') return '';
  // A literal "=?...?=" could be decoded by a reader as an encoded-word: encode the whole
  // name, so that decoding yields exactly the literal text and nothing more.
  if (name.includes('=?')) return encodeWord(name, 'Q', 52);
  if (PLAIN_PHRASE.test(name) && !hasLongToken(name)) return name;
  if (PRINTABLE_ASCII.test(name) && !hasLongToken(quoteString(name))) return quoteString(name);
  // An encoded-word is one token: whatever it decodes to (`<x@y>`, quotes, commas) is
  // display text, never address syntax.
  return encodeWord(name, 'Q', 52);
}

/** Whether `formatMailbox` can write this address. */
export function isFormattableAddress(address: string): boolean {
  return formatAddress(address) !== undefined;
}

/** RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets. */
const MAX_ADDRESS_CHARS = 254;

function formatAddress(address: string): string | undefined {
  if (/[\u0000-\u001f\u007f]/.test(address)) return undefined;
  if (address.length > MAX_ADDRESS_CHARS) return undefined;
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  const localPart = address.slice(0, at);
  let domain = address.slice(at + 1);
  if (!/^[\x00-\x7f]*$/.test(domain)) {
    domain = domainToASCII(domain); // mailparser decodes punycode; headers want the ASCII form
    if (domain === '') return undefined;
  }
  if (!ASCII_DOMAIN.test(domain)) return undefined;
  if (DOT_ATOM.test(localPart)) return `${localPart}@${domain}`;
  // anything else goes out as a quoted local part ("john doe"@example.com)
  if (/^"(?:[^"\\]|\\.)*"$/.test(localPart)) return `${localPart}@${domain}`;
  return `${quoteString(localPart)}@${domain}`;
}

/**
 * One RFC 5322 mailbox: `Name <address>`, `"Quoted, Name" <address>`,
 * `=?UTF-8?Q?...?= <address>` or a bare `address` when there is no name.
 * Throws RelayError E_BAD_ADDRESS when the address itself cannot be written safely.
 */
export function formatMailbox(mailbox: Mailbox): string {
  const address = formatAddress(mailbox.address.trim());
  if (address === undefined) {
    throw new RelayError('E_BAD_ADDRESS', { logMessage: `cannot format address ${JSON.stringify(mailbox.address)}` });
  }
  const name = encodeDisplayName(cleanDisplayName(mailbox.name));
  return name === '' ? address : `${name} <${address}>`;
}

/**
 * Case-insensitive match of an address against `user@example.com` (exact),
 * `*@example.com` (any user at that domain) or `*@*.example.com` (any user at any
 * subdomain of example.com, not example.com itself).
 */
export function matchesAddressPattern(address: string, pattern: string): boolean {
  const addr = address.trim().toLowerCase();
  const pat = pattern.trim().toLowerCase();
  const addrAt = addr.lastIndexOf('@');
  const patAt = pat.lastIndexOf('@');
  if (addrAt <= 0 || patAt <= 0) return false;
  const [addrLocal, addrDomain] = [addr.slice(0, addrAt), addr.slice(addrAt + 1)];
  const [patLocal, patDomain] = [pat.slice(0, patAt), pat.slice(patAt + 1)];
  if (patLocal !== '*' && patLocal !== addrLocal) return false;
  if (patDomain.startsWith('*.')) {
    const parent = patDomain.slice(1); // ".example.com"
    return addrDomain.length > parent.length && addrDomain.endsWith(parent);
  }
  return patDomain === addrDomain;
}
