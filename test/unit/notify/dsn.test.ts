/** The RFC 3464 notice builder: status codes, advice, and what goes into the notice (and what never does). */
import { describe, expect, it } from 'vitest';
import { adviceFor, buildFailureNotice, type NoticeInput, statusOf } from '../../../src/notify/dsn.js';

const input = (extra: Partial<NoticeInput> = {}): NoticeInput => ({
  qid: 'n1',
  originalQid: 'q1',
  from: 'postmaster@relay.test',
  to: ['admin@corp.test'],
  reportingMta: 'relay.test',
  arrivalDate: new Date('2026-01-02T03:04:05Z'),
  now: new Date('2026-01-03T03:04:05Z'),
  reason: 'rejected by the upstream',
  failed: [{ address: 'bad@dest.test', response: '550 5.1.1 user unknown', relay: 'm365' }],
  originalSender: 'app@legacy.test',
  originalSubject: 'Invoice',
  originalHeader: Buffer.from('From: app@legacy.test\r\nSubject: Invoice\r\n'),
  ...extra,
});

describe('statusOf', () => {
  it.each([
    ['550 5.1.1 user unknown', '5.1.1'],
    ['552 5.3.4 message too big', '5.3.4'],
    ['expired after 48 h in the queue; last error: 451 4.4.1 try later', '4.4.7'],
    ['554 rejected', '5.0.0'],
    ['550 rejected (see 5.7.1)', '5.7.1'],
  ])('%s → %s', (response, status) => expect(statusOf(response)).toBe(status));
});

describe('adviceFor', () => {
  it('says what to do for each kind of failure', () => {
    expect(adviceFor('5.1.1')).toMatch(/does not exist or is mistyped/);
    expect(adviceFor('5.2.2')).toMatch(/mailbox is full/);
    expect(adviceFor('5.3.4')).toMatch(/too large/);
    expect(adviceFor('5.7.1')).toMatch(/by policy/);
    expect(adviceFor('4.4.7')).toMatch(/maxLifetimeHours.*queue requeue/);
    expect(adviceFor('5.0.0')).toMatch(/failed\//);
  });
});

describe('buildFailureNotice', () => {
  it('folds an answer with line breaks into one header line and keeps control characters out', () => {
    const text = buildFailureNotice(input({ failed: [{ address: 'bad@dest.test', response: '550-5.1.1 first\r\n550 5.1.1 second\u0007', relay: 'm365' }] })).toString('utf8');
    expect(text).toMatch(/^Diagnostic-Code: smtp; 550-5\.1\.1 first 550 5\.1\.1 second\r$/m);
    expect(text).not.toContain('\u0007');
  });

  it('encodes a non-ASCII subject (RFC 2047) and sends an 8-bit original header block as base64', () => {
    const header = Buffer.from('Subject: Grüße\r\n', 'utf8');
    const text = buildFailureNotice(input({ originalSubject: 'Grüße', originalHeader: header })).toString('utf8');
    expect(text).toMatch(/^Subject: =\?UTF-8\?Q\?Undelivered_mail.*\?=\r$/m);
    expect(text).toContain(`Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered message headers\r\nContent-Transfer-Encoding: base64\r\n\r\n${header.toString('base64')}`);
  });

  it('lists every failed recipient with its own status block', () => {
    const text = buildFailureNotice(
      input({ failed: [{ address: 'a@dest.test', response: '550 5.1.1 unknown', relay: 'm365' }, { address: 'b@dest.test', response: 'expired after 48 h in the queue; last error: 451 4.4.1 later', relay: undefined }] }),
    ).toString('utf8');
    expect(text.match(/^Final-Recipient: /gm)).toHaveLength(2);
    expect(text).toMatch(/Final-Recipient: rfc822; b@dest\.test\r\nAction: failed\r\nStatus: 4\.4\.7\r\nDiagnostic-Code/);
    expect(text).toContain('these 2 recipients');
  });
});
