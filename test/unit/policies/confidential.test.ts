import { describe, expect, it } from 'vitest';
import { confidentialPolicy } from '../../../src/policies/confidential.js';
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
});
