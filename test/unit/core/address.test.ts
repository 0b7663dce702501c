import fc from 'fast-check';
import { parseAddressHeader } from 'mailparser';
import addressparser from 'nodemailer/lib/addressparser';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../../src/core/errors.js';
import { formatMailbox, isFormattableAddress, matchesAddressPattern } from '../../../src/core/address.js';

/** Re-parses with both parsers (nodemailer's raw one, and mailparser's which decodes encoded-words). */
function reparse(formatted: string): { raw: { name: string; address: string }[]; decoded: { name: string; address: string | undefined }[] } {
  const raw = addressparser(formatted, { flatten: true }).map((m) => ({ name: m.name, address: m.address }));
  const decoded = parseAddressHeader(formatted).value.map((m) => ({ name: m.name, address: m.address }));
  return { raw, decoded };
}

function expectExactlyOne(formatted: string, address: string): { name: string } {
  const { raw, decoded } = reparse(formatted);
  expect(raw, formatted).toHaveLength(1);
  expect(raw[0]?.address, formatted).toBe(address);
  expect(decoded, formatted).toHaveLength(1);
  expect(decoded[0]?.address, formatted).toBe(address);
  return { name: decoded[0]?.name ?? '' };
}

describe(formatMailbox.name, () => {
  it('writes a bare address without a name and a plain name as a phrase', () => {
    expect(formatMailbox({ name: '', address: 'noreply@example.com' })).toBe('noreply@example.com');
    expect(formatMailbox({ name: 'Build Server', address: 'noreply@example.com' })).toBe('Build Server <noreply@example.com>');
  });

  it('quotes names with specials', () => {
    expect(formatMailbox({ name: 'Doe, John', address: 'j@example.com' })).toBe('"Doe, John" <j@example.com>');
    // Exchange Online refuses an unquoted @ in a display name
    expect(formatMailbox({ name: 'ops@corp.example', address: 'j@example.com' })).toBe('"ops@corp.example" <j@example.com>');
    expect(formatMailbox({ name: 'a "quoted" \\ name', address: 'j@example.com' })).toBe('"a \\"quoted\\" \\\\ name" <j@example.com>');
  });

  it('RFC 2047-encodes non-ASCII names and they decode back', () => {
    const out = formatMailbox({ name: 'Jürgen Müller', address: 'j@example.com' });
    expect(out).toMatch(/^=\?UTF-8\?Q\?.*\?= <j@example\.com>$/);
    expect(expectExactlyOne(out, 'j@example.com').name).toBe('Jürgen Müller');
  });

  it('strips CR, LF, NUL and other control characters from names', () => {
    const out = formatMailbox({ name: 'Evil\r\nBcc: victim@x\0\x07\x1b\x7f\x85', address: 'j@example.com' });
    expect(out).not.toMatch(/[\r\n\0\x07\x1b\x7f\x85]/);
    expect(expectExactlyOne(out, 'j@example.com').name).toBe('Evil Bcc: victim@x');
  });

  it('neutralises names that look like addresses, lists or encoded-words', () => {
    const hostile = [
      '<evil@x>',
      'Boss <evil@x>',
      'a@b.c, evil@x',
      '"evil@x" <evil@x>',
      'x" <evil@x>, "y',
      'evil@x;',
      '=?UTF-8?Q?=3Cevil=40x=3E?=',
      '=?UTF-8?B?PGV2aWxAeD4=?= <evil@x>',
      'Jürgen <evil@x>',
      'Ünïcode, "quoted" =?x?= <evil@x>',
      '\\',
      '(comment) evil@x',
    ];
    for (const name of hostile) {
      const out = formatMailbox({ name, address: 'good@example.com' });
      const { name: decodedName } = expectExactlyOne(out, 'good@example.com');
      // the name a reader sees is exactly the text we were given (after control-char cleaning)
      expect(decodedName, out).toBe(name);
    }
  });

  it('property: any display name re-parses into exactly one mailbox with the intended address', () => {
    const chars = fc.constantFrom(...'ab <>@,;:"\\()[]=?Qü\r\n\t\0.'.split(''), '=?UTF-8?Q?=3Cx=40y=3E?=', '<x@y>');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 30 }), (parts) => {
        expectExactlyOne(formatMailbox({ name: parts.join(''), address: 'good@example.com' }), 'good@example.com');
      }),
      { seed: 42, numRuns: 400 },
    );
  });

  it('writes an internationalised domain in its ASCII form and quotes odd local parts', () => {
    expect(formatMailbox({ name: '', address: 'user@bücher.example' })).toBe('user@xn--bcher-kva.example');
    expect(formatMailbox({ name: '', address: 'john doe@example.com' })).toBe('"john doe"@example.com');
  });

  it('throws E_BAD_ADDRESS for an address it cannot write safely', () => {
    for (const address of ['', 'no-at-sign', 'a@b\r\nBcc: x@y', 'a@exa mple.com', 'a@<x>']) {
      expect(isFormattableAddress(address)).toBe(false);
      expect(() => formatMailbox({ name: 'x', address })).toThrow(RelayError);
    }
  });
});

describe(matchesAddressPattern.name, () => {
  it('matches an exact address case-insensitively', () => {
    expect(matchesAddressPattern('User@Example.COM', 'user@example.com')).toBe(true);
    expect(matchesAddressPattern('other@example.com', 'user@example.com')).toBe(false);
  });

  it('matches *@domain for any user at exactly that domain', () => {
    expect(matchesAddressPattern('anyone@example.com', '*@example.com')).toBe(true);
    expect(matchesAddressPattern('anyone@EXAMPLE.com', '*@Example.com')).toBe(true);
    expect(matchesAddressPattern('anyone@sub.example.com', '*@example.com')).toBe(false);
    expect(matchesAddressPattern('anyone@badexample.com', '*@example.com')).toBe(false);
  });

  it('matches *@*.domain for any subdomain, not the domain itself nor look-alikes', () => {
    expect(matchesAddressPattern('a@mail.example.com', '*@*.example.com')).toBe(true);
    expect(matchesAddressPattern('a@deep.mail.example.com', '*@*.example.com')).toBe(true);
    expect(matchesAddressPattern('a@example.com', '*@*.example.com')).toBe(false);
    expect(matchesAddressPattern('a@evilexample.com', '*@*.example.com')).toBe(false);
  });

  it('does not match malformed addresses', () => {
    expect(matchesAddressPattern('', '*@example.com')).toBe(false);
    expect(matchesAddressPattern('example.com', '*@example.com')).toBe(false);
  });
});
