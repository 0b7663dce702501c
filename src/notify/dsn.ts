/**
 * A failure notice as an RFC 3464 delivery status notification: a multipart/report
 * (report-type=delivery-status, RFC 6522) with three parts:
 *   1. text/plain for people: which recipients failed, the upstream's answer, what to do;
 *   2. message/delivery-status: per-message fields (Reporting-MTA, Original-Envelope-Id
 *      is not used, Arrival-Date) and one block per failed recipient (Final-Recipient,
 *      Action: failed, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date);
 *   3. text/rfc822-headers: the failed message's header block (never its body).
 *
 * Does: build the whole notice as CRLF bytes, 7bit-safe (an 8-bit original header block is
 *   sent base64-encoded), with Auto-Submitted: auto-replied (RFC 3834) so that well-behaved
 *   software never answers it.
 * Never: include the failed message's body or attachments; put CR or LF from an answer into a
 *   header field (upstream answers are folded into one line).
 * Assumes: addresses are plain (validated by the schema or the SMTP listener).
 */
import { randomBytes } from 'node:crypto';
import { encodeWord } from 'nodemailer/lib/mime-funcs';

export interface FailedRecipient {
  readonly address: string;
  /** the upstream's answer (e.g. "550 5.1.1 <x@y>: user unknown") or the relay's reason (expiry) */
  readonly response: string;
  /** the upstream that answered, when one did */
  readonly relay?: string | undefined;
}

export interface NoticeInput {
  /** the notice's own qid (for Message-ID) */
  readonly qid: string;
  /** the failed message's qid */
  readonly originalQid: string;
  readonly from: string;
  readonly to: readonly string[];
  /** listen.hostname: the Reporting-MTA */
  readonly reportingMta: string;
  readonly arrivalDate: Date;
  readonly now: Date;
  /** why the message failed as a whole ("rejected by the upstream", "maximum queue lifetime ... exceeded") */
  readonly reason: string;
  readonly failed: readonly FailedRecipient[];
  /** the original envelope sender and subject, for the text part ('' for the null sender) */
  readonly originalSender: string;
  readonly originalSubject: string | undefined;
  /** the failed message's header block (up to and without the blank line) */
  readonly originalHeader: Buffer;
}

const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '').trim();

/** The enhanced status code at the start of an answer, else one that fits its class. */
export function statusOf(response: string): string {
  const answered = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(response)?.[1];
  if (answered !== undefined) return answered;
  // the queue lifetime ran out (RFC 3463 X.4.7 "delivery time expired")
  if (/expired|lifetime/i.test(response)) return '4.4.7';
  return /\b([45]\.\d{1,3}\.\d{1,3})\b/.exec(response)?.[1] ?? '5.0.0';
}

/** What the reader can do about a failure, from its status code. */
export function adviceFor(status: string): string {
  if (status.startsWith('5.1.')) return 'The address does not exist or is mistyped at the receiving side: correct it and send the message again.';
  if (status === '5.2.2') return 'The mailbox is full: ask the recipient to make room, then send again.';
  if (status.startsWith('5.2.') || status.startsWith('5.3.')) return 'The message is too large or has too many attachments for the receiving side: send it smaller or as a link.';
  if (status.startsWith('5.7.')) return 'The receiving side refused it by policy (sender not permitted, authentication, spam rules): check the sending address and the upstream account with the mail administrator.';
  if (status === '4.4.7' || status.startsWith('4.')) return 'The relay could not deliver it within delivery.retry.maxLifetimeHours (the upstream kept failing): check the upstream (smtp-sidecar validate --connect), then resend or requeue it (smtp-sidecar queue requeue).';
  return 'Ask the mail administrator: the relay keeps the message in its failed/ folder (smtp-sidecar queue list --failed).';
}

function wrapBase64(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

export function buildFailureNotice(input: NoticeInput): Buffer {
  const boundary = `=_smtp-sidecar-report-${randomBytes(12).toString('hex')}`;
  const date = input.now.toUTCString().replace('GMT', '+0000');
  const subject = input.originalSubject === undefined ? '' : `: ${oneLine(input.originalSubject).slice(0, 120)}`;
  const human = [
    `This is the mail relay at ${input.reportingMta} (smtp-sidecar).`,
    '',
    `A message could not be delivered to ${input.failed.length === 1 ? 'this recipient' : `these ${input.failed.length} recipients`}:`,
    '',
    ...input.failed.flatMap((f) => {
      const status = statusOf(f.response);
      return [`  <${f.address}>`, `    answer: ${oneLine(f.response)}${f.relay !== undefined ? ` (from upstream ${f.relay})` : ''}`, `    what to do: ${adviceFor(status)}`, ''];
    }),
    `Why: ${oneLine(input.reason)}.`,
    `Queue id: ${input.originalQid} (received ${input.arrivalDate.toISOString()}); sender: ${input.originalSender === '' ? '<>' : `<${input.originalSender}>`}.`,
    'The message is kept in the relay\'s failed/ folder; its headers are attached below.',
    '',
  ];
  const perRecipient = input.failed.flatMap((f) => [
    '',
    `Final-Recipient: rfc822; ${f.address}`,
    'Action: failed',
    `Status: ${statusOf(f.response)}`,
    ...(f.relay !== undefined ? [`Remote-MTA: dns; ${oneLine(f.relay)}`] : []),
    `Diagnostic-Code: smtp; ${oneLine(f.response).slice(0, 900)}`,
    `Last-Attempt-Date: ${date}`,
  ]);
  const eightBit = input.originalHeader.some((b) => b >= 0x80);
  const lines = [
    `From: Mail Delivery System <${input.from}>`,
    `To: ${input.to.map((t) => `<${t}>`).join(', ')}`,
    `Subject: ${/^[\x20-\x7e]*$/.test(subject) ? `Undelivered mail${subject}` : encodeWord(`Undelivered mail${subject}`, 'Q', 52)}`,
    `Date: ${date}`,
    `Message-ID: <${input.qid}.notice@${input.reportingMta}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a delivery status notification (RFC 3464).',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    'Content-Description: Notification',
    '',
    ...human,
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `X-Smtp-Sidecar-Queue-ID: ${input.originalQid}`,
    `Arrival-Date: ${input.arrivalDate.toUTCString().replace('GMT', '+0000')}`,
    ...perRecipient,
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Description: Undelivered message headers',
    ...(eightBit ? ['Content-Transfer-Encoding: base64', '', wrapBase64(input.originalHeader)] : ['', input.originalHeader.toString('latin1').replace(/\r?\n$/, '')]),
    '',
    `--${boundary}--`,
    '',
  ];
  // the original header block is either ASCII (as text) or base64: the whole notice is UTF-8 text
  return Buffer.from(lines.join('\r\n').replace(/\r?\n/g, '\r\n'), 'utf8');
}
