import { describe, expect, it } from 'vitest';
import { applyHeaderEdits } from '../../../src/message/header-edits.js';
import { runPolicies } from '../../../src/policies/index.js';
import { headerDefaultsPolicy } from '../../../src/policies/header-defaults.js';
import { makeInput } from './helpers.js';

describe(headerDefaultsPolicy.name, () => {
  it('adds From and Reply-To to a message that has neither', () => {
    const verdict = headerDefaultsPolicy.apply(
      makeInput({ message: { defaultFrom: 'psoft@corp.example', defaultReplyTo: 'helpdesk@corp.example' }, facts: { from: [], headerNames: ['to', 'subject'] } }),
    );
    expect(verdict).toEqual({
      kind: 'edit',
      headers: [
        { op: 'setIfAbsent', name: 'From', value: 'psoft@corp.example' },
        { op: 'setIfAbsent', name: 'Reply-To', value: 'helpdesk@corp.example' },
      ],
    });
  });

  it('never rewrites an existing From or Reply-To', () => {
    const verdict = headerDefaultsPolicy.apply(
      makeInput({ message: { defaultFrom: 'psoft@corp.example', defaultReplyTo: 'helpdesk@corp.example' }, facts: { headerNames: ['from', 'reply-to', 'to'] } }),
    );
    expect(verdict.kind).toBe('pass');
  });

  it('passes when neither key is set', () => {
    expect(headerDefaultsPolicy.apply(makeInput({ facts: { from: [], headerNames: ['to'] } })).kind).toBe('pass');
  });

  it('a fixed Reply-To wins over keepOriginalFromAs in the full run', () => {
    const outcome = runPolicies(makeInput({ message: { globalFrom: 'noreply@corp.example', defaultReplyTo: 'helpdesk@corp.example' } }));
    if (outcome.kind !== 'accept') throw new Error('rejected');
    const header = applyHeaderEdits(Buffer.from('From: App <app@internal.example>\r\nTo: user@example.com\r\n\r\n'), outcome.headerEdits).toString();
    expect(header.match(/^Reply-To: .*$/gm)).toEqual(['Reply-To: helpdesk@corp.example']);
    expect(header).toMatch(/^From: App <noreply@corp\.example>\r?$/m);
  });
});
