/**
 * Global From: the relay sends as one address (`message.globalFrom`).
 *
 * Does: with `rewriteFrom: "always"`, or `"unless-allowed"` when the original sender (the
 *   header From address, else the envelope sender) matches none of `allowedSenders`:
 *   - `set From` to the original display name with the globalFrom address;
 *   - set the envelope sender to globalFrom. Also for the null sender `<>` (a bounce or
 *     notice from the app): the relay submits as one mailbox, and a client submission
 *     with `<>` is not something every upstream (Exchange Online) can be relied on to
 *     accept; the price is that a failure of such a notice is reported to globalFrom
 *     instead of being dropped, so globalFrom should not auto-reply (loop risk);
 *   - keep the original From mailbox(es) in `keepOriginalFromAs` (default Reply-To), only
 *     when the message has no such field ("none": not kept);
 *   - remove `Sender` when the message has one that is not globalFrom: Exchange Online
 *     rejects a Sender it cannot Send-As (SendAsDenied), and a Sender naming the old address
 *     would also contradict the new From.
 * Never: rewrite with `rewriteFrom: "never"` or without globalFrom; replace an existing
 *   Reply-To (or whatever keepOriginalFromAs names).
 * Assumes: globalFrom is a plain address (validated by the config schema).
 */
import type { HeaderEdit, Mailbox } from '../core/types.js';
import { edit, pass } from '../core/verdict.js';
import { formatMailbox, isFormattableAddress, matchesAddressPattern } from '../core/address.js';
import type { Policy } from './types.js';

const sameAddress = (a: string, b: string): boolean => a.trim().toLowerCase() === b.trim().toLowerCase();

export const globalFromPolicy: Policy = {
  name: 'global-from',
  apply: ({ message, facts, envelope }) => {
    const globalFrom = message.globalFrom;
    if (globalFrom === undefined || globalFrom === '') return pass();
    if (message.rewriteFrom !== 'always' && message.rewriteFrom !== 'unless-allowed') return pass();

    const headerFrom = facts.from[0];
    const originalSender = headerFrom?.address ?? envelope.mailFrom;
    if (message.rewriteFrom === 'unless-allowed' && originalSender !== '') {
      if (message.allowedSenders.some((pattern) => matchesAddressPattern(originalSender, pattern))) return pass();
    }

    const edits: HeaderEdit[] = [{ op: 'set', name: 'From', value: formatMailbox({ name: headerFrom?.name ?? '', address: globalFrom }) }];

    const hasSender = facts.headerNames.includes('sender');
    if (hasSender && (facts.sender === undefined || !sameAddress(facts.sender.address, globalFrom))) {
      edits.push({ op: 'remove', name: 'Sender' });
    }

    const keepAs = message.keepOriginalFromAs;
    if (keepAs !== 'none' && !facts.headerNames.includes(keepAs.toLowerCase())) {
      // Without a From field the envelope sender is the only original sender there is.
      const originals: readonly Mailbox[] =
        facts.from.length > 0 ? facts.from : envelope.mailFrom !== '' ? [{ name: '', address: envelope.mailFrom }] : [];
      // An address we cannot write safely is left out rather than risk a wrong reply address;
      // so is globalFrom itself (replying to it is what the rewritten From already does).
      const kept = originals.filter((m) => isFormattableAddress(m.address) && !sameAddress(m.address, globalFrom));
      if (kept.length > 0) edits.push({ op: 'setIfAbsent', name: keepAs, value: kept.map(formatMailbox).join(', ') });
    }

    return edit(edits, { mailFrom: globalFrom });
  },
};
