/**
 * The receive conductor on a ManualClock with an in-memory spool and a scripted DeliveryPort:
 * what gets spooled (policy edits applied, envelope, facts), the reply for each first-attempt
 * outcome, and refusals (a policy, a spool that cannot write) that leave nothing behind.
 */
import { Readable, Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { ManualClock } from '../../../src/core/clock.js';
import { isRelayError } from '../../../src/core/errors.js';
import type { DeliveryPort, FirstAttemptOutcome } from '../../../src/core/ports.js';
import type { SpoolEntry } from '../../../src/core/types.js';
import { createReceiver } from '../../../src/intake/receive.js';
import type { IntakeSession } from '../../../src/intake/smtp-listener.js';
import { MemorySpool } from '../../helpers/memory-spool.js';

const MESSAGE = ['From: App <app@legacy.test>', 'To: <user@dest.test>', 'Subject: report', 'Message-ID: <m1@legacy.test>', 'Date: Thu, 01 Jan 2026 00:00:00 +0000', '', 'hello', ''].join('\r\n');

const session: IntakeSession = { id: 's1', remoteAddress: '127.0.0.1', remotePort: 40000, heloName: 'app.local', protocol: 'ESMTP', envelope: { mailFrom: 'app@legacy.test', rcptTo: ['user@dest.test'] } };

function setup(first: FirstAttemptOutcome, config: Record<string, unknown> = {}) {
  const spool = new MemorySpool();
  const submitted: { entry: SpoolEntry; options: { waitMs: number; neverQueue: boolean } }[] = [];
  const delivery: DeliveryPort = {
    submit: async (entry, options) => {
      submitted.push({ entry, options });
      return first;
    },
  };
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }));
  const rejected: string[] = [];
  const receive = createReceiver({ config: () => parseConfig(config), spool, delivery, clock: new ManualClock(Date.parse('2026-01-01T00:00:05.000Z')), logger, onRejected: (r) => rejected.push(r) });
  return { spool, submitted, lines, rejected, receive: (text = MESSAGE) => receive(Readable.from([Buffer.from(text)]), session) };
}

describe('createReceiver: the receive conductor', () => {
  it('spools the message with the policy edits applied and hands the delivery half the entry and its bytes', async () => {
    const { spool, submitted, receive, lines } = setup({ kind: 'queued' }, { message: { globalFrom: 'noreply@corp.test' }, delivery: { waitSeconds: 7 } });
    const reply = await receive();
    const qid = submitted[0]!.entry.meta.qid;
    expect(reply).toBe(`2.0.0 Ok: queued as ${qid}`);
    const stored = spool.bytes(qid)!.toString();
    expect(stored).toMatch(/^Received: from app\.local \(\[127\.0\.0\.1\]\)/);
    expect(stored).toMatch(/^From: .*noreply@corp\.test>?\r$/m);
    expect(stored).toMatch(/\r\n\r\nhello\r\n$/);
    expect(submitted[0]!.entry.source.toString()).toBe(stored); // the bytes in hand, so the first attempt need not re-read them
    expect(submitted[0]!.options).toEqual({ waitMs: 7000, neverQueue: false });
    expect(submitted[0]!.entry.meta).toMatchObject({
      envelope: { mailFrom: 'noreply@corp.test', rcptTo: ['user@dest.test'] },
      originalMailFrom: 'app@legacy.test',
      receivedAt: '2026-01-01T00:00:05.000Z',
      facts: { from: 'app@legacy.test', subject: 'report', messageId: '<m1@legacy.test>', attachments: 0 },
      recipients: [{ address: 'user@dest.test', status: 'pending' }],
    });
    expect(lines.find((l) => l['msg'] === 'received')).toMatchObject({ qid, from: 'noreply@corp.test', originalSender: 'app@legacy.test', to: 1 });
  });

  it('answers with the upstream reply when the first attempt delivered', async () => {
    const { receive, submitted } = setup({ kind: 'delivered', relay: 'primary', response: '250 2.0.0 OK id=1' });
    expect(await receive()).toBe(`2.0.0 Ok: delivered as ${submitted[0]!.entry.meta.qid} (250 2.0.0 OK id=1)`);
  });

  it('passes an upstream refusal back with its code; waitSeconds -1 that did not deliver gets 451 4.4.1', async () => {
    const refused = await setup({ kind: 'rejected', smtpCode: 550, response: '550 5.1.1 no such user' }).receive().catch((e: unknown) => e);
    expect(isRelayError(refused) && refused.smtpReply).toEqual({ code: 550, text: '5.1.1 no such user' });
    const abandoned = await setup({ kind: 'abandoned', response: 'primary: 421 busy' }, { delivery: { waitSeconds: -1 } }).receive().catch((e: unknown) => e);
    expect(isRelayError(abandoned) && abandoned.smtpReply.code).toBe(451);
    expect(isRelayError(abandoned) && abandoned.smtpReply.text).toMatch(/^4\.4\.1 .*primary: 421 busy/);
  });

  it('refuses a message over the attachment limits before spooling anything', async () => {
    const withAttachment = [
      'From: <app@legacy.test>', 'To: <user@dest.test>', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '',
      '--b', 'Content-Type: text/plain', '', 'hi', '--b', 'Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="a.bin"', 'Content-Transfer-Encoding: base64', '', 'AAAA', '--b--', '',
    ].join('\r\n');
    const { spool, submitted, receive, rejected } = setup({ kind: 'queued' }, { limits: { maxAttachments: 0 } });
    const err = await receive(withAttachment).catch((e: unknown) => e);
    expect(isRelayError(err) && err.code).toBe('E_ATTACHMENT_COUNT');
    expect(isRelayError(err) && err.smtpReply.code).toBe(552);
    expect(spool.queue.size).toBe(0);
    expect(submitted).toEqual([]);
    expect(rejected).toEqual(['attachment-limits']);
  });

  it('answers 452 4.3.1 when the spool cannot store the message, and logs it once', async () => {
    const { spool, submitted, receive, lines } = setup({ kind: 'queued' });
    spool.failNext('store');
    const err = await receive().catch((e: unknown) => e);
    expect(isRelayError(err) && err.smtpReply).toMatchObject({ code: 452 });
    expect(isRelayError(err) && err.smtpReply.text).toMatch(/^4\.3\.1 /);
    expect(submitted).toEqual([]);
    expect(lines.filter((l) => l['msg'] === 'spool.write-failed')).toHaveLength(1);
    expect(spool.drafts.size).toBe(0); // the draft went with the failed store
  });

  it('hands every body byte to the spool\'s draft and leaves no draft behind once stored', async () => {
    const { spool, submitted, receive } = setup({ kind: 'queued' });
    await receive();
    const qid = submitted[0]!.entry.meta.qid;
    expect(spool.calls).toEqual([`store ${qid}`]);
    expect(spool.bytes(qid)!.toString()).toMatch(/\r\n\r\nhello\r\n$/);
    expect(submitted[0]!.entry.meta.sizeBytes).toBe(spool.bytes(qid)!.length);
    expect(spool.drafts.size).toBe(0);
  });

  it('answers 452 4.3.1 when the spool cannot keep the body as it arrives (a draft write fails); nothing is stored', async () => {
    const { spool, submitted, receive, rejected } = setup({ kind: 'queued' });
    spool.failNext('draft');
    const err = await receive().catch((e: unknown) => e);
    expect(isRelayError(err) && err.smtpReply.code).toBe(452);
    expect(isRelayError(err) && err.smtpReply.text).toMatch(/^4\.3\.1 /);
    expect(rejected).toEqual(['E_SPOOL_WRITE']);
    expect(submitted).toEqual([]);
    expect(spool.queue.size).toBe(0);
    expect(spool.drafts.size).toBe(0);
  });
});
