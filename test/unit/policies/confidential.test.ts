import { describe, expect, it } from 'vitest';
import { confidentialPolicy } from '../../../src/policies/confidential.js';
import { formatHeaderField } from '../../../src/message/header-edits.js';
import { makeInput } from './helpers.js';

describe('confidentialPolicy', () => {
  it('does nothing when disabled (the default)', () => {
    expect(confidentialPolicy.apply(makeInput())).toEqual({ kind: 'pass' });
  });

  it('sets each configured header (set: replaces, never duplicates)', () => {
    const verdict = confidentialPolicy.apply(
      makeInput({ message: { confidential: { enabled: true, headers: { Sensitivity: 'Company-Confidential', 'X-Classification': 'Internal' } } } }),
    );
    expect(verdict).toEqual({
      kind: 'edit',
      headers: [
        { op: 'set', name: 'Sensitivity', value: 'Company-Confidential' },
        { op: 'set', name: 'X-Classification', value: 'Internal' },
      ],
    });
  });

  it('uses the default Sensitivity header when only enabled is given', () => {
    expect(confidentialPolicy.apply(makeInput({ message: { confidential: { enabled: true } } }))).toEqual({
      kind: 'edit',
      headers: [{ op: 'set', name: 'Sensitivity', value: 'Company-Confidential' }],
    });
  });

  it('RFC 2047-encodes a non-ASCII value', () => {
    const verdict = confidentialPolicy.apply(makeInput({ message: { confidential: { enabled: true, headers: { 'X-Class': 'Vertraulich – intern' } } } }));
    expect(verdict).toMatchObject({ headers: [{ op: 'set', name: 'X-Class', value: expect.stringMatching(/^Vertraulich =\?UTF-8\?Q\?.*\?= intern$/) }] });
  });

  it('encodes a value with a token too long to fold, so its header lines stay within 78 characters', () => {
    const value = `TOKEN-${'x'.repeat(1200)}`;
    const verdict = confidentialPolicy.apply(makeInput({ message: { confidential: { enabled: true, headers: { 'X-Label': value } } } }));
    expect(verdict.kind).toBe('edit');
    const written = verdict.kind === 'edit' && verdict.headers[0]?.op === 'set' ? verdict.headers[0].value : '';
    const lines = formatHeaderField('X-Label', written).split('\r\n');
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    // Q encoding: adjacent encoded-words join without the space between them
    const decoded = written
      .split(' ')
      .map((word) => /^=\?UTF-8\?Q\?(.*)\?=$/.exec(word)![1]!)
      .map((q) => Buffer.from(q.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'))
      .join('');
    expect(decoded).toBe(value);
  });
});
