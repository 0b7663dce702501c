import { describe, expect, it } from 'vitest';
import { edit, pass, reject } from '../../../src/core/verdict.js';
import { DEFAULT_POLICIES, runPolicies } from '../../../src/policies/index.js';
import type { Policy, PolicyInput } from '../../../src/policies/types.js';
import { makeInput } from './helpers.js';

describe(runPolicies.name, () => {
  it('keeps the documented order', () => {
    expect(DEFAULT_POLICIES.map((p) => p.name)).toEqual(['attachment-limits', 'strip-bcc', 'header-defaults', 'global-from', 'confidential', 'always-cc-bcc', 'date-message-id']);
  });

  it('accumulates edits in order and passes envelope edits on to the next policy', () => {
    const seen: PolicyInput['envelope'][] = [];
    const policies: Policy[] = [
      { name: 'one', apply: () => edit([{ op: 'add', name: 'X-One', value: '1' }], { mailFrom: 'new@example.com', addRecipients: ['B@example.com'] }) },
      { name: 'skip', apply: () => pass() },
      {
        name: 'two',
        apply: ({ envelope }) => {
          seen.push(envelope);
          return edit([{ op: 'remove', name: 'X-Two' }], { addRecipients: ['b@EXAMPLE.com', 'user@example.com', 'c@example.com', 'C@example.com'] });
        },
      },
    ];
    const outcome = runPolicies(makeInput(), policies);
    expect(seen).toEqual([{ mailFrom: 'new@example.com', rcptTo: ['user@example.com', 'B@example.com'] }]);
    expect(outcome).toEqual({
      kind: 'accept',
      headerEdits: [
        { op: 'add', name: 'X-One', value: '1' },
        { op: 'remove', name: 'X-Two' },
      ],
      envelope: { mailFrom: 'new@example.com', rcptTo: ['user@example.com', 'B@example.com', 'c@example.com'] },
      applied: ['one', 'two'],
    });
  });

  it('stops at the first reject', () => {
    let laterRan = false;
    const policies: Policy[] = [
      { name: 'editor', apply: () => edit([{ op: 'add', name: 'X', value: '1' }]) },
      { name: 'gate', apply: () => reject('E_ATTACHMENT_COUNT', 'Message has 2 attachments; the limit is 1') },
      { name: 'later', apply: () => ((laterRan = true), pass()) },
    ];
    expect(runPolicies(makeInput(), policies)).toEqual({
      kind: 'reject',
      policy: 'gate',
      code: 'E_ATTACHMENT_COUNT',
      detail: 'Message has 2 attachments; the limit is 1',
    });
    expect(laterRan).toBe(false);
  });

  it('runs the default policies end to end', () => {
    const outcome = runPolicies(
      makeInput({
        message: { globalFrom: 'noreply@example.com', confidential: { enabled: true }, alwaysCc: ['audit@example.com'], alwaysBcc: ['archive@example.com'] },
        facts: { headerNames: ['from', 'to', 'subject'], messageId: undefined, date: undefined },
      }),
    );
    expect(outcome).toEqual({
      kind: 'accept',
      headerEdits: [
        { op: 'set', name: 'From', value: 'App <noreply@example.com>' },
        { op: 'setIfAbsent', name: 'Reply-To', value: 'App <app@internal.example>' },
        { op: 'set', name: 'Sensitivity', value: 'Company-Confidential' },
        { op: 'set', name: 'Cc', value: 'audit@example.com' },
        { op: 'setIfAbsent', name: 'Date', value: 'Thu, 01 Jan 2026 12:30:05 +0000' },
        { op: 'setIfAbsent', name: 'Message-ID', value: '<fixed-id@relay.test>' },
      ],
      envelope: { mailFrom: 'noreply@example.com', rcptTo: ['user@example.com', 'audit@example.com', 'archive@example.com'] },
      applied: ['global-from', 'confidential', 'always-cc-bcc', 'date-message-id'],
    });
  });

  it('rejects over-limit messages before any other policy edits', () => {
    const outcome = runPolicies(
      makeInput({ message: { globalFrom: 'noreply@example.com' }, limits: { maxAttachments: 1 }, facts: { attachments: { count: 2, totalBytes: 2, inlineCount: 0, inlineBytes: 0 } } }),
    );
    expect(outcome).toMatchObject({ kind: 'reject', policy: 'attachment-limits', code: 'E_ATTACHMENT_COUNT' });
  });
});
