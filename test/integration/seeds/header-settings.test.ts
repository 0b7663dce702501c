/**
 * Header settings of the seed systems, end to end with Python's smtplib as the app (a client
 * nobody here wrote) and a real fake upstream: Bcc fields never leave the relay (the blind
 * copies still arrive, they are in the envelope), stripBcc false relays them, and PeopleSoft's
 * SMTPSender / SMTPBlackberryReplyTo become a From and a Reply-To added only when missing.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../../helpers/fake-upstream.js';
import { Cleanup, relayWith, upstream } from '../delivery-half/support.js';

const run = promisify(execFile);
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** sendmail(from, rcpts, message) with smtplib (rejects when smtplib raises). */
async function smtplibSend(port: number, from: string, rcpts: readonly string[], message: string): Promise<void> {
  const script = [
    'import smtplib, sys, json',
    'a = json.loads(sys.argv[2])',
    's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)',
    's.sendmail(a[0], a[1], a[2].encode())',
    's.quit()',
  ].join('\n');
  await run('python3', ['-c', script, String(port), JSON.stringify([from, rcpts, message])], { timeout: 30_000 });
}

const WITH_BCC = [
  'From: Argus Safety <argus@app.internal>',
  'To: cases@dest.test',
  'Bcc: Hidden Auditor <auditor@dest.test>',
  'Resent-Bcc: resent@dest.test',
  'Subject: expedited report',
  '',
  'body',
  '',
].join('\r\n');

describe('Bcc header fields (message.stripBcc)', () => {
  it('are removed by default; every envelope recipient still gets the message', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('mail', up.port)]), (r) => r.stop());
    await smtplibSend(relay.port, 'argus@app.internal', ['cases@dest.test', 'auditor@dest.test', 'resent@dest.test'], WITH_BCC);
    const [got] = await up.waitForMessages(1);
    expect(got!.envelope.rcptTo).toEqual(['cases@dest.test', 'auditor@dest.test', 'resent@dest.test']);
    const header = got!.raw.toString('utf8').split('\r\n\r\n')[0]!;
    expect(header).not.toMatch(/bcc/i);
    expect(header).toMatch(/^To: cases@dest\.test$/m);
  });

  it('are relayed as they are with stripBcc false', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('mail', up.port)], { message: { stripBcc: false } }), (r) => r.stop());
    await smtplibSend(relay.port, 'argus@app.internal', ['cases@dest.test', 'auditor@dest.test'], WITH_BCC);
    const [got] = await up.waitForMessages(1);
    expect(got!.raw.toString('utf8')).toContain('\r\nBcc: Hidden Auditor <auditor@dest.test>\r\nResent-Bcc: resent@dest.test\r\n');
  });
});

describe('PeopleSoft SMTPSender and SMTPBlackberryReplyTo (message.defaultFrom, message.defaultReplyTo)', () => {
  it('add From and Reply-To to a message without them, and never rewrite existing ones', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('mail', up.port)], { message: { defaultFrom: 'psoft@corp.test', defaultReplyTo: 'helpdesk@corp.test' } }),
      (r) => r.stop(),
    );
    await smtplibSend(relay.port, 'psappsrv@app.internal', ['user@dest.test'], 'To: user@dest.test\r\nSubject: no sender\r\n\r\nbody\r\n');
    await smtplibSend(
      relay.port,
      'psappsrv@app.internal',
      ['user@dest.test'],
      'From: Workflow <workflow@app.internal>\r\nReply-To: owner@app.internal\r\nTo: user@dest.test\r\nSubject: own sender\r\n\r\nbody\r\n',
    );
    const [bare, own] = await up.waitForMessages(2);
    const headerOf = (m: typeof bare) => m!.raw.toString('utf8').split('\r\n\r\n')[0]!;
    expect(headerOf(bare).match(/^(From|Reply-To): .*$/gm)?.sort()).toEqual(['From: psoft@corp.test', 'Reply-To: helpdesk@corp.test']);
    expect(bare!.envelope.mailFrom).toBe('psappsrv@app.internal');
    expect(headerOf(own).match(/^(From|Reply-To): .*$/gm)?.sort()).toEqual(['From: Workflow <workflow@app.internal>', 'Reply-To: owner@app.internal']);
  });
});
