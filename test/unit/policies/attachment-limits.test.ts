import { describe, expect, it } from 'vitest';
import { attachmentLimitsPolicy, checkAttachmentLimits } from '../../../src/policies/attachment-limits.js';
import { makeFacts, makeInput } from './helpers.js';

const MB = 1_048_576;
const facts = (count: number, totalBytes: number, inlineCount = 0, inlineBytes = 0) =>
  makeFacts({ attachments: { count, totalBytes, inlineCount, inlineBytes } });

describe(checkAttachmentLimits.name, () => {
  it('passes within the limits', () => {
    expect(checkAttachmentLimits(facts(50, 10 * MB), { maxAttachments: 50, maxAttachmentsTotalMB: 10 })).toEqual({ kind: 'pass' });
  });

  it('rejects too many attachments with E_ATTACHMENT_COUNT naming the count and the limit', () => {
    expect(checkAttachmentLimits(facts(60, 1000), { maxAttachments: 50 })).toEqual({
      kind: 'reject',
      code: 'E_ATTACHMENT_COUNT',
      detail: 'Message has 60 attachments; the limit is 50',
    });
  });

  it('rejects too many bytes with E_ATTACHMENT_SIZE in MB (1 MB = 1,048,576 bytes)', () => {
    expect(checkAttachmentLimits(facts(2, Math.round(12.4 * MB)), { maxAttachmentsTotalMB: 10 })).toEqual({
      kind: 'reject',
      code: 'E_ATTACHMENT_SIZE',
      detail: 'Attachments total 12.4 MB; the limit is 10 MB',
    });
    expect(checkAttachmentLimits(facts(1, 10 * MB), { maxAttachmentsTotalMB: 10 }).kind).toBe('pass');
    expect(checkAttachmentLimits(facts(1, 10 * MB + 1), { maxAttachmentsTotalMB: 10 }).kind).toBe('reject');
  });

  it('shows enough decimals that a size just over the limit does not read as equal to it', () => {
    const verdict = checkAttachmentLimits(facts(1, 10 * MB + 20_000), { maxAttachmentsTotalMB: 10 });
    expect(verdict).toMatchObject({ detail: 'Attachments total 10.02 MB; the limit is 10 MB' });
  });

  it('0 means no attachments allowed', () => {
    expect(checkAttachmentLimits(facts(1, 10), { maxAttachments: 0 })).toMatchObject({
      code: 'E_ATTACHMENT_COUNT',
      detail: 'Message has 1 attachment; the limit is 0',
    });
    expect(checkAttachmentLimits(facts(0, 0), { maxAttachments: 0, maxAttachmentsTotalMB: 0 }).kind).toBe('pass');
  });

  it('counts inline parts by default and leaves them out with countInlineParts: false', () => {
    const f = facts(3, 3 * MB, 2, 2.5 * MB);
    expect(checkAttachmentLimits(f, { maxAttachments: 2 }).kind).toBe('reject');
    expect(checkAttachmentLimits(f, { maxAttachments: 2, countInlineParts: false }).kind).toBe('pass');
    expect(checkAttachmentLimits(f, { maxAttachmentsTotalMB: 1 }).kind).toBe('reject');
    expect(checkAttachmentLimits(f, { maxAttachmentsTotalMB: 1, countInlineParts: false }).kind).toBe('pass');
  });

  it('treats unset limits as no limit (per-upstream partial limits)', () => {
    expect(checkAttachmentLimits(facts(10_000, 1000 * MB), {}).kind).toBe('pass');
  });
});

describe('attachmentLimitsPolicy', () => {
  it('uses the configured limits (defaults 50 and 10 MB)', () => {
    expect(attachmentLimitsPolicy.apply(makeInput({ facts: { attachments: { count: 51, totalBytes: 1, inlineCount: 0, inlineBytes: 0 } } }))).toMatchObject({
      code: 'E_ATTACHMENT_COUNT',
      detail: 'Message has 51 attachments; the limit is 50',
    });
    expect(attachmentLimitsPolicy.apply(makeInput({ limits: { maxAttachments: 100 }, facts: { attachments: { count: 51, totalBytes: 1, inlineCount: 0, inlineBytes: 0 } } })).kind).toBe('pass');
  });
});
