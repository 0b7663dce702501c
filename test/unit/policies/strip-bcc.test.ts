import { describe, expect, it } from 'vitest';
import { stripBccPolicy } from '../../../src/policies/strip-bcc.js';
import { makeInput } from './helpers.js';

describe(stripBccPolicy.name, () => {
  it('removes Bcc and Resent-Bcc by default, and leaves the envelope alone', () => {
    const verdict = stripBccPolicy.apply(makeInput({ facts: { headerNames: ['from', 'to', 'bcc', 'resent-bcc'] } }));
    expect(verdict).toEqual({ kind: 'edit', headers: [{ op: 'remove', name: 'Bcc' }, { op: 'remove', name: 'Resent-Bcc' }] });
  });

  it('passes a message without Bcc fields', () => {
    expect(stripBccPolicy.apply(makeInput()).kind).toBe('pass');
  });

  it('passes with message.stripBcc false', () => {
    expect(stripBccPolicy.apply(makeInput({ message: { stripBcc: false }, facts: { headerNames: ['from', 'bcc'] } })).kind).toBe('pass');
  });
});
