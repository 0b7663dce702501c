import addressparser from 'nodemailer/lib/addressparser';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../../src/core/verdict.js';
import { globalFromPolicy } from '../../../src/policies/global-from.js';
import { makeInput } from './helpers.js';

const GLOBAL = 'noreply@example.com';
const edits = (v: Verdict) => (v.kind === 'edit' ? v.headers : []);

describe('globalFromPolicy', () => {
  it('does nothing without globalFrom', () => {
    expect(globalFromPolicy.apply(makeInput())).toEqual({ kind: 'pass' });
  });

  it('does nothing with rewriteFrom "never"', () => {
    expect(globalFromPolicy.apply(makeInput({ message: { globalFrom: GLOBAL, rewriteFrom: 'never' } }))).toEqual({ kind: 'pass' });
  });

  it('always: sets From (original display name, global address), envelope sender, keeps the original in Reply-To', () => {
    const verdict = globalFromPolicy.apply(makeInput({ message: { globalFrom: GLOBAL } }));
    expect(verdict).toEqual({
      kind: 'edit',
      headers: [
        { op: 'set', name: 'From', value: 'App <noreply@example.com>' },
        { op: 'setIfAbsent', name: 'Reply-To', value: 'App <app@internal.example>' },
      ],
      envelope: { mailFrom: GLOBAL },
    });
  });

  it('does not add Reply-To when the message has one, and honours another keepOriginalFromAs', () => {
    const withReplyTo = globalFromPolicy.apply(
      makeInput({ message: { globalFrom: GLOBAL }, facts: { headerNames: ['from', 'reply-to'], replyTo: [{ name: '', address: 'r@x.example' }] } }),
    );
    expect(edits(withReplyTo).map((e) => e.name)).toEqual(['From']);
    const other = globalFromPolicy.apply(makeInput({ message: { globalFrom: GLOBAL, keepOriginalFromAs: 'X-Original-From' } }));
    expect(edits(other)).toContainEqual({ op: 'setIfAbsent', name: 'X-Original-From', value: 'App <app@internal.example>' });
    const none = globalFromPolicy.apply(makeInput({ message: { globalFrom: GLOBAL, keepOriginalFromAs: 'none' } }));
    expect(edits(none).map((e) => e.name)).toEqual(['From']);
  });

  it('keeps every original From mailbox, formatted safely', () => {
    const verdict = globalFromPolicy.apply(
      makeInput({
        message: { globalFrom: GLOBAL },
        facts: { from: [{ name: 'Boss <evil@x>, "', address: 'a@x.example' }, { name: '', address: 'b@x.example' }] },
      }),
    );
    const replyTo = edits(verdict).find((e) => e.name === 'Reply-To');
    expect(replyTo?.op).toBe('setIfAbsent');
    const value = replyTo && 'value' in replyTo ? replyTo.value : '';
    expect(addressparser(value, { flatten: true }).map((m) => m.address)).toEqual(['a@x.example', 'b@x.example']);
    const from = edits(verdict).find((e) => e.name === 'From');
    expect(from && 'value' in from ? addressparser(from.value, { flatten: true }).map((m) => m.address) : []).toEqual([GLOBAL]);
  });

  it('unless-allowed: keeps allowed senders (address or *@domain) untouched', () => {
    const message = { globalFrom: GLOBAL, rewriteFrom: 'unless-allowed', allowedSenders: ['*@internal.example', 'ceo@example.com'] };
    expect(globalFromPolicy.apply(makeInput({ message }))).toEqual({ kind: 'pass' });
    expect(globalFromPolicy.apply(makeInput({ message, facts: { from: [{ name: '', address: 'CEO@Example.com' }] } }))).toEqual({ kind: 'pass' });
    expect(globalFromPolicy.apply(makeInput({ message, facts: { from: [{ name: '', address: 'other@example.com' }] } })).kind).toBe('edit');
  });

  it('unless-allowed: falls back to the envelope sender when there is no From header', () => {
    const message = { globalFrom: GLOBAL, rewriteFrom: 'unless-allowed', allowedSenders: ['*@internal.example'] };
    expect(globalFromPolicy.apply(makeInput({ message, facts: { from: [], headerNames: ['to'] } }))).toEqual({ kind: 'pass' });
    const rewritten = globalFromPolicy.apply(makeInput({ message, facts: { from: [], headerNames: ['to'] }, envelope: { mailFrom: 'x@elsewhere.example' } }));
    expect(rewritten).toEqual({
      kind: 'edit',
      headers: [
        { op: 'set', name: 'From', value: GLOBAL },
        { op: 'setIfAbsent', name: 'Reply-To', value: 'x@elsewhere.example' },
      ],
      envelope: { mailFrom: GLOBAL },
    });
  });

  it('rewrites a null-sender message too: header From and envelope sender become globalFrom', () => {
    const verdict = globalFromPolicy.apply(makeInput({ message: { globalFrom: GLOBAL }, envelope: { mailFrom: '' }, facts: { from: [], headerNames: [] } }));
    expect(verdict).toEqual({ kind: 'edit', headers: [{ op: 'set', name: 'From', value: GLOBAL }], envelope: { mailFrom: GLOBAL } });
  });

  it('removes a Sender that differs from globalFrom, keeps one that is globalFrom', () => {
    const differs = globalFromPolicy.apply(
      makeInput({ message: { globalFrom: GLOBAL }, facts: { sender: { name: '', address: 'agent@x.example' }, headerNames: ['from', 'sender'] } }),
    );
    expect(edits(differs)).toContainEqual({ op: 'remove', name: 'Sender' });
    const same = globalFromPolicy.apply(
      makeInput({ message: { globalFrom: GLOBAL }, facts: { sender: { name: '', address: 'NoReply@example.com' }, headerNames: ['from', 'sender'] } }),
    );
    expect(edits(same)).not.toContainEqual({ op: 'remove', name: 'Sender' });
    const unparseable = globalFromPolicy.apply(makeInput({ message: { globalFrom: GLOBAL }, facts: { sender: undefined, headerNames: ['from', 'sender'] } }));
    expect(edits(unparseable)).toContainEqual({ op: 'remove', name: 'Sender' });
  });

  it('does not keep globalFrom itself as the original', () => {
    const verdict = globalFromPolicy.apply(makeInput({ message: { globalFrom: GLOBAL }, facts: { from: [{ name: 'X', address: 'NOREPLY@example.com' }] } }));
    expect(edits(verdict).map((e) => e.name)).toEqual(['From']);
  });
});
