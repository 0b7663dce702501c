import { describe, expect, it } from 'vitest';
import { recipientEdits, senderEdit } from '../../../src/delivery/graph/recipients.js';

const headers = (to: string[], cc: string[] = [], bcc: string[] = []) => ({ to, cc, bcc });

describe(recipientEdits.name, () => {
  it('changes nothing when the header recipients are the envelope (any case, any order)', () => {
    expect(recipientEdits(headers(['Anna <Anna@Dest.test>'], ['b@dest.test']), ['b@dest.test', 'anna@dest.test'])).toEqual([]);
  });

  it('adds envelope-only recipients as Bcc and leaves intact To/Cc untouched', () => {
    expect(recipientEdits(headers(['Anna <anna@dest.test>']), ['anna@dest.test', 'audit@corp.test'])).toEqual([{ name: 'Bcc', value: 'audit@corp.test' }]);
  });

  it('drops header-only addresses from To and Cc (a field left empty is removed) and replaces the Bcc field', () => {
    const edits = recipientEdits(headers(['Anna <anna@dest.test>, "Not, Asked" <x@dest.test>'], ['cc@dest.test'], ['old@dest.test']), ['anna@dest.test']);
    expect(edits).toEqual([
      { name: 'To', value: 'Anna <anna@dest.test>' },
      { name: 'Cc', value: undefined },
      { name: 'Bcc', value: undefined },
    ]);
  });

  it('keeps an RFC 2047 display name decodable and names group members', () => {
    const edits = recipientEdits(headers(['=?utf-8?Q?J=C3=BCrgen?= <j@dest.test>, team: a@dest.test, z@dest.test;']), ['j@dest.test', 'a@dest.test']);
    expect(edits).toHaveLength(2);
    expect(edits[0]).toMatchObject({ name: 'To' });
    expect(edits[0]!.value).toMatch(/^=\?(utf-8|UTF-8)\?Q\?J=C3=BCrgen\?= <j@dest\.test>, a@dest\.test$/);
    expect(edits[1]).toEqual({ name: 'Bcc', value: undefined });
  });
});

describe(senderEdit.name, () => {
  it('rewrites a different From to the mailbox, keeping the display name; leaves the mailbox itself alone', () => {
    expect(senderEdit(['"Legacy, App" <app@legacy.local>'], 'relay@contoso.com')).toEqual([{ name: 'From', value: '"Legacy, App" <relay@contoso.com>' }]);
    expect(senderEdit(['Relay <RELAY@contoso.com>'], 'relay@contoso.com')).toEqual([]);
    expect(senderEdit([], 'relay@contoso.com')).toEqual([{ name: 'From', value: 'relay@contoso.com' }]);
  });
});
