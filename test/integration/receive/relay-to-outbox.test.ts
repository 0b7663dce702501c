/**
 * The receive half end to end over real sockets: real clients (nodemailer, Python's smtplib)
 * → the relay → policies → spool → the embedded outbox delivery.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { openTransaction, rawSmtp } from '../../helpers/smtp-client.js';
import { until } from '../../helpers/wait.js';

const run = promisify(execFile);
let relay: TestRelay | undefined;
afterEach(async () => {
  await relay?.stop();
  relay = undefined;
});

async function outboxFiles(r: TestRelay, count: number, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = existsSync(r.outboxDir) ? (await readdir(r.outboxDir)).filter((f) => f.endsWith('.eml')) : [];
    if (files.length >= count) return files.sort();
    if (Date.now() > deadline) throw new Error(`outbox has ${files.length} of ${count} messages`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

const policyConfig = {
  message: {
    globalFrom: 'noreply@corp.test',
    confidential: { enabled: true },
  },
};

describe('relay to outbox', () => {
  it('accepts a message from nodemailer, applies the policies and writes it to the outbox', async () => {
    relay = await startRelay(policyConfig);
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, secure: false, ignoreTLS: true });
    const info = await client.sendMail({
      from: '"Payroll Bot" <erp@legacy.test>',
      to: 'alice@dest.test',
      subject: 'Report',
      text: 'Body line 1\nBody line 2\n',
      headers: { Sensitivity: 'Personal' },
    });
    client.close();
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: (queued|delivered) as [A-Za-z0-9]+/);
    const [file] = await outboxFiles(relay, 1);
    const eml = await readFile(join(relay.outboxDir, file!), 'utf8');
    expect(eml).toMatch(/^From: Payroll Bot <noreply@corp\.test>\r$/m);
    expect(eml).toMatch(/^Reply-To: "?Payroll Bot"? <erp@legacy\.test>\r$/m);
    expect(eml.match(/^Sensitivity:/gim)).toHaveLength(1);
    expect(eml).toMatch(/^Sensitivity: Company-Confidential\r$/m);
    expect(eml).toContain('Body line 1\r\nBody line 2\r\n');
    const received = relay.logs.events('received')[0]!;
    expect(received).toMatchObject({ from: 'noreply@corp.test', to: 1 });
    expect(JSON.stringify(relay.logs.records())).not.toContain('Body line 1');
  });

  it("accepts a message from Python's smtplib (a client nobody here wrote)", async () => {
    relay = await startRelay(policyConfig);
    const script = [
      'import smtplib, sys',
      'from email.message import EmailMessage',
      'm = EmailMessage()',
      "m['From'] = 'Monitor <nagios@legacy.test>'",
      "m['To'] = 'ops@dest.test'",
      "m['Subject'] = 'disk full'",
      "m.set_content('disk /var is 99% full')",
      "s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='legacy.test')",
      'r = s.send_message(m)',
      "print(s.noop()[0]); s.quit()",
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script, String(relay.port)]);
    expect(stdout.trim()).toBe('250');
    const [file] = await outboxFiles(relay, 1);
    const eml = await readFile(join(relay.outboxDir, file!), 'utf8');
    expect(eml).toMatch(/^From: Monitor <noreply@corp\.test>\r$/m);
    expect(eml).toContain('disk /var is 99% full');
  });

  it('relays the body byte for byte (sha256 of everything after the header block)', async () => {
    relay = await startRelay(policyConfig);
    const body = ['', 'line with trailing space ', '..leading dot stays dot-stuffed on the wire only', 'caf\u00e9 8-bit', '\t tab line', 'x'.repeat(998), ''].join('\r\n');
    const header = 'From: a@legacy.test\r\nTo: b@dest.test\r\nSubject: hash\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n';
    const c = await openTransaction(relay.port, 'a@legacy.test', ['b@dest.test']);
    const wire = Buffer.from(header + body, 'utf8').toString('latin1').replace(/\r\n\./g, '\r\n..');
    c.write(Buffer.from(wire, 'latin1'));
    c.write('.\r\n');
    expect(await c.next()).toMatch(/^250 /);
    c.close();
    const [file] = await outboxFiles(relay, 1);
    const out = await readFile(join(relay.outboxDir, file!));
    const outBody = out.subarray(out.indexOf('\r\n\r\n') + 2);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(outBody)).toBe(sha(Buffer.from(body, 'utf8')));
  });

  it('puts nothing in the outbox twice and leaves the spool queue empty after delivery', async () => {
    relay = await startRelay({});
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, ignoreTLS: true, pool: true, maxConnections: 3 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.sendMail({ from: 'a@legacy.test', to: `u${i}@dest.test`, subject: `m${i}`, text: 'x' })));
    client.close();
    const files = await outboxFiles(relay, 20);
    expect(files).toHaveLength(20);
    await relay.logs.waitFor('delivery', () => relay!.logs.events('delivery').length >= 20);
    // the `delivery` line is written before the spool entry is removed (the removal runs behind
    // the reply): wait for the queue to empty rather than look at it once
    const spool = relay.app.spool;
    await until('the spool queue to empty', async () => (await spool.queuedQids()).length === 0);
  });
});

describe('SMTP replies for bad input', () => {
  it('refuses a client outside allowedClients with 554 5.7.1 at connect', async () => {
    relay = await startRelay({ listen: { allowedClients: ['127.0.0.1/32'] } });
    const c = await rawSmtp(relay.port, { localAddress: '127.0.0.2' });
    expect(await c.next()).toMatch(/^554 5\.7\.1 /);
    await c.closed;
    const ok = await rawSmtp(relay.port);
    expect(await ok.next()).toMatch(/^220 /);
    ok.close();
  });

  it('enforces maxRecipients with 452 4.5.3', async () => {
    relay = await startRelay({ listen: { maxRecipients: 2 } });
    const c = await rawSmtp(relay.port);
    await c.next();
    await c.command('EHLO x.test');
    await c.command('MAIL FROM:<a@legacy.test>');
    expect(await c.command('RCPT TO:<r1@dest.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<r2@dest.test>')).toMatch(/^250/);
    expect(await c.command('RCPT TO:<r3@dest.test>')).toMatch(/^452 4\.5\.3 /);
    c.close();
  });

  it('advertises SIZE and refuses an oversized message with 552 5.3.4', async () => {
    relay = await startRelay({ listen: { maxMessageSizeMB: 0.01 } });
    const c = await rawSmtp(relay.port);
    await c.next();
    const ehlo = await c.command('EHLO x.test');
    expect(ehlo).toMatch(/SIZE 10485/);
    await c.command('MAIL FROM:<a@legacy.test>');
    await c.command('RCPT TO:<b@dest.test>');
    await c.command('DATA');
    c.write(`Subject: big\r\n\r\n${'y'.repeat(100)}\r\n`.repeat(200));
    c.write('.\r\n');
    expect(await c.next()).toMatch(/^552 5\.3\.4 /);
    expect(await c.command('NOOP')).toMatch(/^250/);
    c.close();
    expect(existsSync(relay.outboxDir) ? await readdir(relay.outboxDir) : []).toHaveLength(0);
  });

  it('refuses too many attachments with 552 5.3.4 naming the count and the limit', async () => {
    relay = await startRelay({ limits: { maxAttachments: 1 } });
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, ignoreTLS: true });
    const err = await client
      .sendMail({ from: 'a@legacy.test', to: 'b@dest.test', text: 'see attached', attachments: [{ filename: 'a.txt', content: 'a' }, { filename: 'b.txt', content: 'b' }] })
      .catch((e: unknown) => e as { response: string; responseCode: number });
    client.close();
    expect(err).toMatchObject({ responseCode: 552 });
    expect((err as { response: string }).response).toMatch(/^552 5\.3\.4 .*2 attachments.*limit is 1/);
    expect(relay.logs.events('rejected')[0]).toMatchObject({ reason: 'attachment-limits' });
  });

  it('ends DATA only at CRLF.CRLF: a bare LF dot line stays in the body', async () => {
    relay = await startRelay({});
    const c = await openTransaction(relay.port, 'a@legacy.test', ['b@dest.test']);
    c.write('Subject: eod\r\n\r\nfirst\n.\nstill body\r\n.\r\n');
    expect(await c.next()).toMatch(/^250 /);
    c.close();
    const [file] = await outboxFiles(relay, 1);
    const eml = await readFile(join(relay.outboxDir, file!), 'utf8');
    expect(eml).toContain('first\r\n.\r\nstill body\r\n');
  });

  it('rejects bare LF with 550 5.6.0 when listen.bareLineFeeds is "reject"', async () => {
    relay = await startRelay({ listen: { bareLineFeeds: 'reject' } });
    const c = await openTransaction(relay.port, 'a@legacy.test', ['b@dest.test']);
    c.write('Subject: lf\r\n\r\nbare\nline\r\n.\r\n');
    expect(await c.next()).toMatch(/^550 5\.6\.0 /);
    c.close();
  });

  it('survives a session of garbage commands and keeps serving', async () => {
    relay = await startRelay({});
    const c = await rawSmtp(relay.port);
    await c.next();
    const garbage = ['', 'HELO', 'MAIL FROM:<<<>>>', 'RCPT TO:<x@y>', 'DATA', '\u0000\u0001\u0002', 'A'.repeat(5000), 'AUTH PLAIN AAAA', 'STARTTLS', 'XCLIENT ADDR=10.0.0.1', 'BDAT 10 LAST', 'MAIL FROM:<a@b> SIZE=abc', 'RSET', 'QUIT'];
    for (const line of garbage) c.write(`${line}\r\n`);
    await c.closed;
    expect(c.replies.length).toBeGreaterThan(5);
    expect(c.replies.some((r) => r.startsWith('354'))).toBe(false); // never entered DATA
    expect(c.replies.at(-1)).toMatch(/^221 /);
    const again = await openTransaction(relay.port, 'a@legacy.test', ['b@dest.test']);
    again.write('Subject: after garbage\r\n\r\nok\r\n.\r\n');
    expect(await again.next()).toMatch(/^250 /);
    again.close();
  });
});
