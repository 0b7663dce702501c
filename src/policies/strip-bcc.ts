/**
 * Bcc headers: an app that writes `Bcc:` into the message would disclose the blind copies to
 * every recipient if an upstream relayed the field as it is (not every upstream strips it).
 *
 * Does: with `message.stripBcc` (default true), remove every `Bcc` and `Resent-Bcc` field from
 *   the top-level header block, as Postfix's cleanup does.
 * Never: touch the envelope (the Bcc recipients the client gave in RCPT TO still get the
 *   message); touch anything when the message has no such field or stripBcc is false.
 * Assumes: facts.headerNames lists the top-level field names, lower-cased.
 */
import type { HeaderEdit } from '../core/types.js';
import { edit, pass } from '../core/verdict.js';
import type { Policy } from './types.js';

const BCC_FIELDS = ['Bcc', 'Resent-Bcc'] as const;

export const stripBccPolicy: Policy = {
  name: 'strip-bcc',
  apply: ({ message, facts }) => {
    if (!message.stripBcc) return pass();
    const edits: HeaderEdit[] = BCC_FIELDS.filter((name) => facts.headerNames.includes(name.toLowerCase())).map((name) => ({ op: 'remove', name }));
    return edits.length === 0 ? pass() : edit(edits);
  },
};
