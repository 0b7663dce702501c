/**
 * Attachment arithmetic, in one place: which parts count (inline parts unless
 * limits.countInlineParts is false), how megabytes are measured, and when a message is over a
 * limit. Used by the global limits (policies/attachment-limits.ts), the spooled facts
 * (intake/receive.ts) and per-upstream limits (routing/limits.ts), so all compare like with like.
 */
import type { MessageFacts } from './types.js';

/** 1 MB = 1,048,576 bytes in every limit. */
export const BYTES_PER_MB = 1_048_576;

export interface CountedAttachments {
  readonly count: number;
  /** decoded bytes */
  readonly bytes: number;
}

export interface AttachmentLimits {
  readonly maxAttachments?: number | undefined;
  readonly maxAttachmentsTotalMB?: number | undefined;
}

export function countedAttachments(attachments: MessageFacts['attachments'], countInlineParts: boolean): CountedAttachments {
  return countInlineParts
    ? { count: attachments.count, bytes: attachments.totalBytes }
    : { count: attachments.count - attachments.inlineCount, bytes: attachments.totalBytes - attachments.inlineBytes };
}

/** Which limit the counted attachments exceed first (the count, then the size), or undefined. Unset limits are no limit. */
export function exceededLimit(counted: CountedAttachments, limits: AttachmentLimits): 'count' | 'size' | undefined {
  if (limits.maxAttachments !== undefined && counted.count > limits.maxAttachments) return 'count';
  if (limits.maxAttachmentsTotalMB !== undefined && counted.bytes > limits.maxAttachmentsTotalMB * BYTES_PER_MB) return 'size';
  return undefined;
}

/**
 * The public text for a message over a limit ("Message has 60 attachments; the limit is 50",
 * "Attachments total 12.4 MB; the limit is 10 MB"): the global limits and the per-upstream
 * limits refused at DATA say it the same way.
 */
export function overLimitText(counted: CountedAttachments, exceeded: 'count' | 'size', limits: AttachmentLimits): string {
  if (exceeded === 'count') {
    const noun = counted.count === 1 ? 'attachment' : 'attachments';
    return `Message has ${counted.count} ${noun}; the limit is ${limits.maxAttachments ?? 0}`;
  }
  const limitMB = limits.maxAttachmentsTotalMB ?? 0;
  return `Attachments total ${formatMB(counted.bytes, limitMB)} MB; the limit is ${limitMB} MB`;
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
