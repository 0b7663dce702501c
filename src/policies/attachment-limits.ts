/**
 * Attachment limits: how many attachments and how many decoded bytes a message may carry.
 *
 * Does: reject with E_ATTACHMENT_COUNT / E_ATTACHMENT_SIZE and a detail a sender can act
 *   on ("Message has 60 attachments; the limit is 50"). Inline parts (embedded images)
 *   count unless `countInlineParts` is false. 0 means none allowed.
 * Never: edit anything.
 * Assumes: facts.attachments counts decoded bytes (1 MB = 1,048,576 bytes).
 */
import type { Limits } from '../config/schema.js';
import { BYTES_PER_MB, countedAttachments, exceededLimit } from '../core/attachments.js';
import type { MessageFacts } from '../core/types.js';
import { pass, reject, type Verdict } from '../core/verdict.js';
import type { Policy } from './types.js';

/** Shared with per-upstream limits (a partial Limits: unset keys are no limit). */
export function checkAttachmentLimits(facts: MessageFacts, limits: Partial<Limits>): Verdict {
  const counted = countedAttachments(facts.attachments, limits.countInlineParts ?? true);
  const exceeded = exceededLimit(counted, limits);
  if (exceeded === 'count') {
    const noun = counted.count === 1 ? 'attachment' : 'attachments';
    return reject('E_ATTACHMENT_COUNT', `Message has ${counted.count} ${noun}; the limit is ${limits.maxAttachments}`);
  }
  if (exceeded === 'size' && limits.maxAttachmentsTotalMB !== undefined) {
    return reject(
      'E_ATTACHMENT_SIZE',
      `Attachments total ${formatMB(counted.bytes, limits.maxAttachmentsTotalMB)} MB; the limit is ${limits.maxAttachmentsTotalMB} MB`,
    );
  }
  return pass();
}

/** One decimal, or more when one decimal would not show that the size is over the limit. */
function formatMB(bytes: number, limitMB: number): string {
  const mb = bytes / BYTES_PER_MB;
  for (const digits of [1, 2, 3, 4, 5, 6]) {
    const text = mb.toFixed(digits);
    if (Number(text) > limitMB) return text;
  }
  return `${mb}`;
}

export const attachmentLimitsPolicy: Policy = {
  name: 'attachment-limits',
  apply: (input) => checkAttachmentLimits(input.facts, input.limits),
};
