/**
 * The mail policy, in order. This list is where the order lives:
 *   1. attachment limits (reject before doing any work)
 *   2. strip Bcc / Resent-Bcc header fields
 *   3. header defaults (From, Reply-To when missing)
 *   4. global From (may change the envelope sender)
 *   5. confidential marking
 *   6. always Cc / Bcc
 *   7. Date / Message-ID when missing
 *
 * Does: run the policies in order; the first reject wins; header edits accumulate in
 *   order; envelope edits apply to the envelope the next policy sees (mailFrom replaced,
 *   recipients appended without duplicates, case-insensitive).
 * Never: apply header edits (message/header-edits.ts does, once) or do I/O.
 * Assumes: policies are pure functions of their input.
 */
import type { Envelope, HeaderEdit } from '../core/types.js';
import type { EnvelopeEdit } from '../core/verdict.js';
import { alwaysCcBccPolicy } from './always-cc-bcc.js';
import { attachmentLimitsPolicy } from './attachment-limits.js';
import { confidentialPolicy } from './confidential.js';
import { dateMessageIdPolicy } from './date-message-id.js';
import { globalFromPolicy } from './global-from.js';
import { headerDefaultsPolicy } from './header-defaults.js';
import { stripBccPolicy } from './strip-bcc.js';
import type { Policy, PolicyInput, PolicyOutcome } from './types.js';

export type { Policy, PolicyInput, PolicyOutcome } from './types.js';
export { checkAttachmentLimits } from './attachment-limits.js';

export const DEFAULT_POLICIES: readonly Policy[] = [
  attachmentLimitsPolicy,
  stripBccPolicy,
  headerDefaultsPolicy,
  globalFromPolicy,
  confidentialPolicy,
  alwaysCcBccPolicy,
  dateMessageIdPolicy,
];

export function applyEnvelopeEdit(envelope: Envelope, change: EnvelopeEdit | undefined): Envelope {
  if (change === undefined) return envelope;
  let next = envelope;
  if (change.mailFrom !== undefined) next = { ...next, mailFrom: change.mailFrom };
  if (change.addRecipients !== undefined && change.addRecipients.length > 0) {
    const seen = new Set(next.rcptTo.map((r) => r.toLowerCase()));
    const added: string[] = [];
    for (const rcpt of change.addRecipients) {
      const key = rcpt.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      added.push(rcpt);
    }
    if (added.length > 0) next = { ...next, rcptTo: [...next.rcptTo, ...added] };
  }
  return next;
}

export function runPolicies(input: PolicyInput, policies: readonly Policy[] = DEFAULT_POLICIES): PolicyOutcome {
  let envelope = input.envelope;
  const headerEdits: HeaderEdit[] = [];
  const applied: string[] = [];
  for (const policy of policies) {
    const verdict = policy.apply({ ...input, envelope });
    if (verdict.kind === 'pass') continue;
    if (verdict.kind === 'reject') return { kind: 'reject', policy: policy.name, code: verdict.code, detail: verdict.detail };
    headerEdits.push(...verdict.headers);
    envelope = applyEnvelopeEdit(envelope, verdict.envelope);
    applied.push(policy.name);
  }
  return { kind: 'accept', headerEdits, envelope, applied };
}
