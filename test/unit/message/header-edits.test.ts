import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../../src/core/errors.js';
import { applyHeaderEdits, formatHeaderField, headerFieldValues } from '../../../src/message/header-edits.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const s = (buf: Buffer): string => buf.toString('latin1');

// Odd but real: folded Subject with a tab, 8-bit bytes (latin1 é), lower-case name, obs "Name :".
const HEADER = b(
  'Received: from app\r\n\tby relay\r\n' +
    'from: Old <old@example.com>\r\n' +
    'Subject: caf\xe9\r\n   continued\r\n' +
    'X-Obs : value\r\n' +
    'Cc: a@example.com\r\n' +
    'To: t@example.com\r\n' +
    'CC: b@example.com\r\n',
);

describe(applyHeaderEdits.name, () => {
  it('returns the header byte-identical when there are no edits', () => {
    expect(applyHeaderEdits(HEADER, []).equals(HEADER)).toBe(true);
  });

  it('set replaces every field of that name (case-insensitive) with one, where the first was', () => {
    const out = s(applyHeaderEdits(HEADER, [{ op: 'set', name: 'Cc', value: 'c@example.com' }]));
    expect(out).toBe(
      'Received: from app\r\n\tby relay\r\n' +
        'from: Old <old@example.com>\r\n' +
        'Subject: caf\xe9\r\n   continued\r\n' +
        'X-Obs : value\r\n' +
        'Cc: c@example.com\r\n' +
        'To: t@example.com\r\n',
    );
  });

  it('set prepends when the field is absent', () => {
    const out = s(applyHeaderEdits(HEADER, [{ op: 'set', name: 'Sensitivity', value: 'Company-Confidential' }]));
    expect(out).toBe(`Sensitivity: Company-Confidential\r\n${s(HEADER)}`);
  });

  it('add prepends even when the field exists; later adds go above earlier ones', () => {
    const out = s(
      applyHeaderEdits(HEADER, [
        { op: 'add', name: 'To', value: 'x@example.com' },
        { op: 'add', name: 'X-Second', value: '2' },
      ]),
    );
    expect(out).toBe(`X-Second: 2\r\nTo: x@example.com\r\n${s(HEADER)}`);
  });

  it('setIfAbsent adds only when no field of that name exists', () => {
    const present = s(applyHeaderEdits(HEADER, [{ op: 'setIfAbsent', name: 'FROM', value: 'n@example.com' }]));
    expect(present).toBe(s(HEADER));
    const absent = s(applyHeaderEdits(HEADER, [{ op: 'setIfAbsent', name: 'Reply-To', value: 'n@example.com' }]));
    expect(absent).toBe(`Reply-To: n@example.com\r\n${s(HEADER)}`);
  });

  it('remove drops every field of that name, folded lines included', () => {
    const out = s(
      applyHeaderEdits(HEADER, [
        { op: 'remove', name: 'cc' },
        { op: 'remove', name: 'Received' },
        { op: 'remove', name: 'x-obs' },
      ]),
    );
    expect(out).toBe('from: Old <old@example.com>\r\nSubject: caf\xe9\r\n   continued\r\nTo: t@example.com\r\n');
  });

  it('keeps every untouched field byte for byte, 8-bit bytes and odd folding included', () => {
    const out = applyHeaderEdits(HEADER, [{ op: 'set', name: 'From', value: 'New <new@example.com>' }]);
    expect(s(out)).toBe(s(HEADER).replace('from: Old <old@example.com>', 'From: New <new@example.com>'));
  });

  it('never matches a line without a colon, and keeps it', () => {
    const header = b('Subject: a\r\nNoColonHere\r\nTo: t@x\r\n');
    const out = s(applyHeaderEdits(header, [{ op: 'remove', name: 'NoColonHere' }, { op: 'remove', name: 'Subject' }]));
    expect(out).toBe('NoColonHere\r\nTo: t@x\r\n');
  });

  it('works on an empty header block and on a last field without a line ending', () => {
    expect(s(applyHeaderEdits(Buffer.alloc(0), [{ op: 'add', name: 'Date', value: 'x' }]))).toBe('Date: x\r\n');
    expect(s(applyHeaderEdits(b('Subject: a\r\nTo: t'), [{ op: 'set', name: 'To', value: 'u' }]))).toBe('Subject: a\r\nTo: u\r\n');
  });

  it('throws when a value contains CR, LF or NUL, or a name is not a field name', () => {
    for (const value of ['a\r\nBcc: evil@x', 'a\nb', 'a\rb', 'a\0b']) {
      expect(() => applyHeaderEdits(HEADER, [{ op: 'set', name: 'X', value }])).toThrow(RelayError);
      expect(() => applyHeaderEdits(HEADER, [{ op: 'setIfAbsent', name: 'From', value }])).toThrow(RelayError);
    }
    expect(() => applyHeaderEdits(HEADER, [{ op: 'add', name: 'Bad Name', value: 'x' }])).toThrow(RelayError);
    expect(() => applyHeaderEdits(HEADER, [{ op: 'remove', name: 'X:' }])).toThrow(RelayError);
  });
});

describe(formatHeaderField.name, () => {
  it('writes short fields on one line with CRLF', () => {
    expect(formatHeaderField('Subject', 'hello')).toBe('Subject: hello\r\n');
  });

  it('folds long values at whitespace so lines stay within 78 characters', () => {
    const value = Array.from({ length: 12 }, (_, i) => `"Person ${i}" <person${i}@example.com>`).join(', ');
    const out = formatHeaderField('Cc', value);
    const lines = out.slice(0, -2).split('\r\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    for (const line of lines.slice(1)) expect(line).toMatch(/^[ \t]\S/);
    // unfolding gives the value back
    expect(out.slice(0, -2).replace(/\r\n(?=[ \t])/g, '')).toBe(`Cc: ${value}`);
  });

  it('never breaks inside an encoded-word; a word longer than the line stays whole', () => {
    const word = `=?UTF-8?Q?${'=C3=A9'.repeat(20)}?=`;
    const out = formatHeaderField('From', `${word} ${word} <x@example.com>`);
    const lines = out.slice(0, -2).split('\r\n');
    expect(lines).toEqual([`From: ${word}`, ` ${word}`, ' <x@example.com>']);
  });

  it('does not fold right after the colon or into whitespace-only lines', () => {
    const out = formatHeaderField('X-Long-Name', `${'a'.repeat(100)}    `);
    expect(out).toBe(`X-Long-Name: ${'a'.repeat(100)}    \r\n`);
  });
});

describe('header edit properties', () => {
  it('property: folding never changes the unfolded value and never leaves a whitespace-only line', () => {
    const piece = fc.constantFrom('a', 'bb', ' ', '\t', '=?UTF-8?Q?=C3=A9?=', 'x'.repeat(40), ',', '<a@b.c>', 'ü');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
        const value = parts.join('');
        const out = formatHeaderField('X-Test', value);
        expect(out.endsWith('\r\n')).toBe(true);
        const lines = out.slice(0, -2).split('\r\n');
        for (const line of lines.slice(1)) expect(line).toMatch(/^[ \t].*[^ \t]/);
        expect(out.slice(0, -2).replace(/\r\n(?=[ \t])/g, '')).toBe(`X-Test: ${value}`);
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('property: editing a field that is absent leaves every other byte of any header as it was', () => {
    const byte = fc.constantFrom(0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x41, 0x61, 0xe9);
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 120 }), (bytes) => {
        const header = Buffer.from(bytes);
        expect(applyHeaderEdits(header, [{ op: 'remove', name: 'X-Absent-Zz' }]).equals(header)).toBe(true);
        const added = applyHeaderEdits(header, [{ op: 'add', name: 'X-New', value: 'v' }]);
        if (header[0] === 0x20 || header[0] === 0x09) {
          // a block that opens with an orphan continuation line: the new field goes below it,
          // so the orphan can never become part of (and inject into) the new field
          expect(added.includes(Buffer.from('X-New: v\r\n'))).toBe(true);
          expect(added.indexOf('X-New: v\r\n')).toBeGreaterThan(0);
        } else {
          expect(added.equals(Buffer.concat([Buffer.from('X-New: v\r\n'), header]))).toBe(true);
        }
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});

describe(headerFieldValues.name, () => {
  it('returns unfolded, trimmed values of every field with that name (case-insensitive)', () => {
    expect(headerFieldValues(HEADER, 'CC')).toEqual(['a@example.com', 'b@example.com']);
    expect(headerFieldValues(HEADER, 'received')).toEqual(['from app\tby relay']);
    expect(headerFieldValues(HEADER, 'x-obs')).toEqual(['value']);
    expect(headerFieldValues(HEADER, 'Bcc')).toEqual([]);
  });

  it('decodes values as UTF-8', () => {
    const header = Buffer.from('From: Jürgen <j@example.com>\r\n', 'utf8');
    expect(headerFieldValues(header, 'from')).toEqual(['Jürgen <j@example.com>']);
  });
});
