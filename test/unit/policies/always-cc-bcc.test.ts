import { describe, expect, it } from 'vitest';
import { alwaysCcBccPolicy } from '../../../src/policies/always-cc-bcc.js';
import { makeInput } from './helpers.js';

describe('alwaysCcBccPolicy', () => {
  it('does nothing without alwaysCc/alwaysBcc', () => {
    expect(alwaysCcBccPolicy.apply(makeInput())).toEqual({ kind: 'pass' });
  });

  it('adds alwaysCc to the Cc header (after the existing mailboxes) and to the envelope', () => {
    const verdict = alwaysCcBccPolicy.apply(
      makeInput({ message: { alwaysCc: ['audit@example.com'] }, facts: { cc: [{ name: 'Doe, Jane', address: 'jane@example.com' }] } }),
    );
    expect(verdict).toEqual({
      kind: 'edit',
      headers: [{ op: 'set', name: 'Cc', value: '"Doe, Jane" <jane@example.com>, audit@example.com' }],
      envelope: { addRecipients: ['audit@example.com'] },
    });
  });

  it('does not duplicate an address already in Cc (case-insensitive), but still adds it to the envelope', () => {
    const verdict = alwaysCcBccPolicy.apply(
      makeInput({ message: { alwaysCc: ['Audit@Example.com'] }, facts: { cc: [{ name: '', address: 'audit@example.com' }] } }),
    );
    expect(verdict).toEqual({ kind: 'edit', headers: [], envelope: { addRecipients: ['Audit@Example.com'] } });
  });

  it('puts alwaysBcc in the envelope only, never in a header', () => {
    const verdict = alwaysCcBccPolicy.apply(makeInput({ message: { alwaysBcc: ['archive@example.com'] } }));
    expect(verdict).toEqual({ kind: 'edit', headers: [], envelope: { addRecipients: ['archive@example.com'] } });
  });

  it('writes a Cc field when the message had none', () => {
    const verdict = alwaysCcBccPolicy.apply(makeInput({ message: { alwaysCc: ['a@example.com', 'b@example.com'], alwaysBcc: ['c@example.com'] } }));
    expect(verdict).toEqual({
      kind: 'edit',
      headers: [{ op: 'set', name: 'Cc', value: 'a@example.com, b@example.com' }],
      envelope: { addRecipients: ['a@example.com', 'b@example.com', 'c@example.com'] },
    });
  });
});
