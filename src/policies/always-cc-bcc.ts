/**
 * Always Cc / Bcc: copies of every message go to fixed addresses.
 *
 * Does: `alwaysCc` → `set Cc` to the message's Cc mailboxes plus the new ones (formatted,
 *   no duplicates, case-insensitive) and add them to the envelope; `alwaysBcc` → envelope only.
 * Never: put a Bcc address in any header; touch Cc when every alwaysCc address is already
 *   in it; drop an existing Cc mailbox that can be written safely (one with control
 *   characters or an invalid domain is left out of the rewritten field: it was never
 *   deliverable, and writing it back could corrupt the field).
 * Assumes: facts.cc holds every mailbox of every Cc field (groups flattened). Rewriting Cc
 *   from facts loses group syntax and comments of the original field, which is fine for a
 *   relay that only needs the addresses to be right.
 */
import type { HeaderEdit } from '../core/types.js';
import { edit, pass } from '../core/verdict.js';
import { formatMailbox, isFormattableAddress } from '../core/address.js';
import type { Policy } from './types.js';

export const alwaysCcBccPolicy: Policy = {
  name: 'always-cc-bcc',
  apply: ({ message, facts }) => {
    const { alwaysCc, alwaysBcc } = message;
    if (alwaysCc.length === 0 && alwaysBcc.length === 0) return pass();

    const inCc = new Set(facts.cc.map((m) => m.address.toLowerCase()));
    const newCc = [...new Map(alwaysCc.filter((a) => !inCc.has(a.toLowerCase())).map((a) => [a.toLowerCase(), a])).values()];
    const headers: HeaderEdit[] = [];
    if (newCc.length > 0) {
      const existing = facts.cc.filter((m) => isFormattableAddress(m.address)).map(formatMailbox);
      const added = newCc.map((address) => formatMailbox({ name: '', address }));
      headers.push({ op: 'set', name: 'Cc', value: [...existing, ...added].join(', ') });
    }
    return edit(headers, { addRecipients: [...alwaysCc, ...alwaysBcc] });
  },
};
