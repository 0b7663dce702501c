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
import type { MessageFacts } from '../core/types.js';
import { pass, reject, type Verdict } from '../core/verdict.js';
import type { Policy } from './types.js';

const BYTES_PER_MB = 1_048_576;

/** Shared with per-upstream limits (a partial Limits: unset keys are no limit). */
export function checkAttachmentLimits(facts: MessageFacts, limits: Partial<Limits>): Verdict {
  const countInline = limits.countInlineParts ?? true;
  const { count, totalBytes, inlineCount, inlineBytes } = facts.attachments;
  const counted = countInline ? count : count - inlineCount;
  const countedBytes = countInline ? totalBytes : totalBytes - inlineBytes;

  if (limits.maxAttachments !== undefined && counted > limits.maxAttachments) {
    const noun = counted === 1 ? 'attachment' : 'attachments';
    return reject('E_ATTACHMENT_COUNT', `Message has ${counted} ${noun}; the limit is ${limits.maxAttachments}`);
  }
  if (limits.maxAttachmentsTotalMB !== undefined && countedBytes > limits.maxAttachmentsTotalMB * BYTES_PER_MB) {
    return reject(
      'E_ATTACHMENT_SIZE',
      `Attachments total ${formatMB(countedBytes, limits.maxAttachmentsTotalMB)} MB; the limit is ${limits.maxAttachmentsTotalMB} MB`,
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
