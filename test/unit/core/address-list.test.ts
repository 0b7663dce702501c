import fc from 'fast-check';
import { parseAddressHeader } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { parseMailboxes } from '../../../src/core/address-list.js';
import type { Mailbox } from '../../../src/core/types.js';

/** What the relay read from these values when it used mailparser (groups flattened, empty addresses left out). */
function viaMailparser(values: string[]): Mailbox[] {
  const out: Mailbox[] = [];
  const walk = (entries: readonly { name?: string; address?: string; group?: readonly unknown[] }[]): void => {
    for (const e of entries) {
      if (Array.isArray(e.group)) walk(e.group as typeof entries);
      else if (typeof e.address === 'string' && e.address !== '') out.push({ name: e.name ?? '', address: e.address });
    }
  };
  walk(parseAddressHeader(values).value as unknown as { name?: string; address?: string; group?: readonly unknown[] }[]);
  return out;
}

describe(parseMailboxes.name, () => {
  it('decodes encoded-word names, flattens groups and repeated fields, skips empty mailboxes', () => {
    const values = ['=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@example.com>, "Ops" <ops@example.com>', 'Team: a@example.com, =?ISO-8859-1?Q?Andr=E9?= <b@example.com>;, undisclosed-recipients:;'];
    expect(parseMailboxes(values)).toEqual([
      { name: 'Jürgen Müller', address: 'j@example.com' },
      { name: 'Ops', address: 'ops@example.com' },
      { name: '', address: 'a@example.com' },
      { name: 'André', address: 'b@example.com' },
    ]);
  });

  it('never takes an address from an encoded word (RFC 2047 keeps them out of the addr-spec)', () => {
    expect(parseMailboxes(['<=?utf-8?B?Y2VvQGJhbmsuY29t?=>'])).toEqual([]);
    expect(parseMailboxes(['=?utf-8?B?Y2VvQGJhbmsuY29t?=@x.example, x <=?utf-8?Q?ceo=40bank.com?=@x>'])).toEqual([]);
  });

  it('decodes a punycode domain to Unicode', () => {
    expect(parseMailboxes(['Büro <info@xn--bro-hoa.example>'])).toEqual([{ name: 'Büro', address: 'info@büro.example' }]);
  });

  it('reads every value as mailparser did', () => {
    const names = fc.constantFrom('', 'Ops', '"A, B"', '=?UTF-8?Q?J=C3=BCrgen?=', '=?UTF-8?B?w4TDtg==?=', '=?bogus?Q?x?=', 'x <', '"\\"q\\""');
    const addresses = fc.constantFrom('a@example.com', 'b@xn--bro-hoa.example', '=?utf-8?B?Y2VvQGJhbmsuY29t?=', 'no-at', '', 'c@[127.0.0.1]', 'd@sub.xn--bro-hoa.example');
    const mailbox = fc.tuple(names, addresses).map(([n, a]) => (n === '' ? a : `${n} <${a}>`));
    const value = fc.oneof(
      fc.array(mailbox, { maxLength: 4 }).map((l) => l.join(', ')),
      fc.tuple(fc.constantFrom('G', 'Team'), fc.array(mailbox, { maxLength: 3 })).map(([g, l]) => `${g}: ${l.join(', ')};`),
    );
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 3 }), (values) => {
        expect(parseMailboxes(values)).toEqual(viaMailparser(values));
      }),
      { numRuns: 300 },
    );
  });
});
