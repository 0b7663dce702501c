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
