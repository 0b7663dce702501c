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
import { countedAttachments, exceededLimit, overLimitText } from '../core/attachments.js';
import type { MessageFacts } from '../core/types.js';
import { pass, reject, type Verdict } from '../core/verdict.js';
import type { Policy } from './types.js';

/** Shared with per-upstream limits (a partial Limits: unset keys are no limit). */
export function checkAttachmentLimits(facts: MessageFacts, limits: Partial<Limits>): Verdict {
  const counted = countedAttachments(facts.attachments, limits.countInlineParts ?? true);
  const exceeded = exceededLimit(counted, limits);
  if (exceeded === 'count') return reject('E_ATTACHMENT_COUNT', overLimitText(counted, exceeded, limits));
  if (exceeded === 'size') return reject('E_ATTACHMENT_SIZE', overLimitText(counted, exceeded, limits));
  return pass();
}

export const attachmentLimitsPolicy: Policy = {
  name: 'attachment-limits',
  apply: (input) => checkAttachmentLimits(input.facts, input.limits),
};
