/**
 * Per-upstream attachment limits: can this upstream take this message?
 * Does: compare the spooled facts with an upstream's own `limits`. Never: rejects a message
 * (an upstream that cannot take it is skipped; the global limits were applied at intake).
 */
import { type AttachmentLimits, exceededLimit } from '../core/attachments.js';
import type { SpoolMeta } from '../core/types.js';

/** `facts` were counted at intake the way the global limits count (core/attachments.ts). */
export function fitsLimits(facts: SpoolMeta['facts'], limits: AttachmentLimits): boolean {
  return exceededLimit({ count: facts.attachments, bytes: facts.attachmentsBytes }, limits) === undefined;
}
