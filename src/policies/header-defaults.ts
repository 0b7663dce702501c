/**
 * Header defaults: fields the relay adds only when the message has none (PeopleSoft's
 * `SMTPSender` as a default sender, a fixed Reply-To like `SMTPBlackberryReplyTo`).
 *
 * Does: `message.defaultFrom` → add `From: <defaultFrom>` when the message has no From field;
 *   `message.defaultReplyTo` → add `Reply-To: <defaultReplyTo>` when it has no Reply-To field.
 *   Runs before global-from, so an explicit defaultReplyTo wins over keepOriginalFromAs
 *   (both only fill an absent Reply-To; the first one applied wins).
 * Never: rewrite or replace an existing From or Reply-To; change the envelope (the envelope
 *   sender the client gave stays; globalFrom is the key that rewrites senders).
 * Assumes: both keys are plain addresses (validated by the config schema).
 */
import type { HeaderEdit } from '../core/types.js';
import { formatMailbox } from '../core/address.js';
import { edit, pass } from '../core/verdict.js';
import type { Policy } from './types.js';

export const headerDefaultsPolicy: Policy = {
  name: 'header-defaults',
  apply: ({ message, facts }) => {
    const edits: HeaderEdit[] = [];
    const has = (name: string) => facts.headerNames.includes(name);
    if (message.defaultFrom !== undefined && !has('from')) {
      edits.push({ op: 'setIfAbsent', name: 'From', value: formatMailbox({ name: '', address: message.defaultFrom }) });
    }
    if (message.defaultReplyTo !== undefined && !has('reply-to')) {
      edits.push({ op: 'setIfAbsent', name: 'Reply-To', value: formatMailbox({ name: '', address: message.defaultReplyTo }) });
    }
    return edits.length === 0 ? pass() : edit(edits);
  },
};
