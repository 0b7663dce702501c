/**
 * Per-upstream attachment limits: can this upstream take this message?
 * Does: compare the spooled facts with an upstream's own `limits`. Never: rejects a message
 * (an upstream that cannot take it is skipped; the global limits were applied at intake).
 */
import type { Limits } from '../config/schema.js';
import type { SpoolMeta } from '../core/types.js';

const MB = 1024 * 1024;

export function fitsLimits(facts: SpoolMeta['facts'], limits: Partial<Limits>): boolean {
  if (limits.maxAttachments !== undefined && facts.attachments > limits.maxAttachments) return false;
  if (limits.maxAttachmentsTotalMB !== undefined && facts.attachmentsBytes > limits.maxAttachmentsTotalMB * MB) return false;
  return true;
}
