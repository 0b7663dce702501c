/**
 * eG Enterprise "mail receiver settings" (POP3-before-SMTP): the SMTP upstream refuses MAIL
 * (530) until the fake POP3 server saw a good login; the POP3 server checks USER and PASS.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { connectCheck } from '../../../src/cli/validate-connect.js';
import { configSchema } from '../../../src/config/schema.js';
import { ManualClock } from '../../../src/core/clock.js';
import { createReceiveBeforeSend, pop3Login } from '../../../src/delivery/pop3-before-smtp.js';
import { createRawSmtpPool } from '../../../src/delivery/smtp-raw.js';
import { startFakePop3, type FakePop3 } from '../../helpers/fake-pop3.js';
import { startFakeUpstream } from '../../helpers/fake-upstream.js';
import { TLS_PATHS, TLS_PEM } from '../../helpers/tls.js';
import { captureIo } from '../cli/support.js';
import { Cleanup, deliveryLines, relayWith, send, upstream } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const PASS = 'Pop-Pa55word!';

/** An SMTP upstream that takes mail only after `pop` saw a good login. */
async function popGatedUpstream(pop: FakePop3) {
  return cleanup.add(
    await startFakeUpstream({
      tls: 'none',
      failMail: () => (pop.loggedIn ? undefined : { code: 530, message: '5.7.1 Relaying denied: log in to POP3 first (POP-before-SMTP)' }),
    }),
    (u) => u.close(),
  );
}

const receiver = (pop: FakePop3, pass = PASS) => ({ host: '127.0.0.1', port: pop.port, security: 'tls', user: 'eguser', pass });

describe('upstreams[].receiveBeforeSend (POP3-before-SMTP, eG "mail receiver settings")', () => {
  it('logs in to POP3 over TLS (USER, PASS, QUIT) before SMTP, then the message is delivered', async () => {
    const pop = cleanup.add(await startFakePop3({ users: { eguser: PASS }, tls: 'implicit' }), (p) => p.close());
    const smtp = await popGatedUpstream(pop);
    const relay = cleanup.add(
      await relayWith([upstream('eg', smtp.port, { tls: { ca: TLS_PATHS.ca }, receiveBeforeSend: receiver(pop) })], { delivery: { waitSeconds: 10 } }),
      (r) => r.stop(),
    );
    const reply = await send(relay.port, { to: 'ops@eg.test' });
    expect(reply.response).toMatch(/^250 2\.0\.0 Ok: delivered/);
    expect(pop.commands).toEqual(['USER eguser', `PASS ${PASS}`, 'QUIT']);
    expect(smtp.messages.map((m) => m.envelope.rcptTo)).toEqual([['ops@eg.test']]);
    expect(relay.logs.lines.join('\n')).not.toContain(PASS);
  });

  it('without the login the upstream refuses MAIL (the gate is real)', async () => {
    const pop = cleanup.add(await startFakePop3({ users: { eguser: PASS } }), (p) => p.close());
    const smtp = await popGatedUpstream(pop);
    const relay = cleanup.add(await relayWith([upstream('eg', smtp.port)], { delivery: { waitSeconds: 10 } }), (r) => r.stop());
    const reply = await send(relay.port, { to: 'ops@eg.test' });
    expect(reply.response).not.toMatch(/^250 2\.0\.0 Ok: delivered/);
    expect(smtp.messages).toHaveLength(0);
  });

  it('a wrong POP3 password fails over to the secondary, with an error that names what to fix', async () => {
    const pop = cleanup.add(await startFakePop3({ users: { eguser: PASS }, tls: 'stls' }), (p) => p.close());
    const primary = await popGatedUpstream(pop);
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([
        upstream('eg', primary.port, { tls: { ca: TLS_PATHS.ca }, receiveBeforeSend: { ...receiver(pop, 'wrong-password'), security: 'starttls' } }),
        upstream('backup', secondary.port),
      ]),
      (r) => r.stop(),
    );
    const { qid } = await send(relay.port, { to: 'ops@eg.test' });
    await relay.logs.waitFor('delivery', (l) => l['qid'] === qid && l['status'] === 'sent');
    expect(pop.commands).toEqual(['STLS', 'USER eguser', 'PASS wrong-password']);
    const lines = deliveryLines(relay, qid!);
    expect(lines.map((l) => [l['relay'], l['status']])).toEqual([
      ['eg', 'failover'],
      ['backup', 'sent'],
    ]);
    expect(JSON.stringify(lines[0])).toMatch(/POP3 server 127\.0\.0\.1:\d+ refused the login: check receiveBeforeSend\.user and receiveBeforeSend\.pass/);
    expect(primary.messages).toHaveLength(0);
    expect(secondary.messages).toHaveLength(1);
    expect(relay.logs.lines.join('\n')).not.toContain('wrong-password');
  });

  it('caches the login for validMinutes: two SMTP connections, one POP3 login; after validMinutes, a new one', async () => {
    const pop = cleanup.add(await startFakePop3({ users: { eguser: PASS } }), (p) => p.close());
    const smtp = await popGatedUpstream(pop);
    const clock = new ManualClock();
    const config = { protocol: 'pop3' as const, host: '127.0.0.1', port: pop.port, security: 'none' as const, user: 'eguser', pass: PASS, allowPlaintext: true, validMinutes: 5 };
    const gate = createReceiveBeforeSend({ config, ca: undefined, rejectUnauthorized: true, minVersion: 'TLSv1.2', connectSeconds: 2, replySeconds: 2 }, clock);
    // maxMessages 1: every message opens a new SMTP connection, each asks the gate first
    const pool = createRawSmtpPool({ connection: { host: '127.0.0.1', port: smtp.port, ignoreTLS: true }, maxConnections: 1, maxMessages: 1, beforeConnect: () => gate.ensure() });
    cleanup.add(pool, (p) => p.close());
    const message = { from: 'app@eg.test', to: ['ops@eg.test'], size: 20, use8BitMime: false };
    await pool.send(message, Buffer.from('Subject: 1\r\n\r\none\r\n'));
    clock.advance(4 * 60_000);
    await pool.send(message, Buffer.from('Subject: 2\r\n\r\ntwo\r\n'));
    expect(smtp.connections).toBe(2);
    expect(pop.logins).toEqual(['eguser']);
    clock.advance(2 * 60_000);
    await pool.send(message, Buffer.from('Subject: 3\r\n\r\nthree\r\n'));
    expect(pop.logins).toEqual(['eguser', 'eguser']);
    expect(smtp.messages).toHaveLength(3);
  });

  it('validate --connect reports the POP3 step, ok and failed', async () => {
    const pop = cleanup.add(await startFakePop3({ users: { eguser: PASS }, tls: 'implicit' }), (p) => p.close());
    const smtp = await popGatedUpstream(pop);
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-pop3-'));
    const path = join(dir, 'config.json');
    const entry = (pass: string) => upstream('eg', smtp.port, { tls: { ca: TLS_PATHS.ca }, receiveBeforeSend: receiver(pop, pass) });
    await writeFile(path, JSON.stringify({ upstreams: [entry(PASS)] }));
    const ok = captureIo();
    expect(await validateCommand({ config: path, connect: true }, ok, connectCheck())).toBe(0);
    expect(ok.out()).toMatch(/eg\s+pop3\s+ok\s+pop3-before-smtp ok: logged in as eguser at 127\.0\.0\.1:\d+/);

    await writeFile(path, JSON.stringify({ upstreams: [entry('wrong-password')] }));
    const failed = captureIo();
    expect(await validateCommand({ config: path, connect: true }, failed, connectCheck())).not.toBe(0);
    expect(failed.out()).toMatch(/eg\s+pop3\s+failed\s+pop3-before-smtp failed: POP3 server .* refused the login: check receiveBeforeSend\.user and receiveBeforeSend\.pass/);
    expect(failed.out() + failed.err()).not.toContain('wrong-password');
  });

  it('IMAP-before-SMTP: LOGIN with quoted strings after STARTTLS, then delivery; a wrong password fails over; validate shows an imap step', async () => {
    const SPECIAL = 'Imap "quoted" \\ pass';
    const imap = cleanup.add(await startFakePop3({ users: { 'eg user': SPECIAL }, tls: 'stls', protocol: 'imap' }), (p) => p.close());
    const smtp = await popGatedUpstream(imap);
    const entry = (name: string, pass: string) =>
      upstream(name, smtp.port, { tls: { ca: TLS_PATHS.ca }, receiveBeforeSend: { protocol: 'imap', host: '127.0.0.1', port: imap.port, security: 'starttls', user: 'eg user', pass } });
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const wrong = cleanup.add(await relayWith([entry('eg', 'wrong'), upstream('backup', secondary.port)]), (r) => r.stop());
    const { qid } = await send(wrong.port, { to: 'ops@eg.test' });
    await wrong.logs.waitFor('delivery', (l) => l['qid'] === qid && l['status'] === 'sent');
    expect(deliveryLines(wrong, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['eg', 'failover'],
      ['backup', 'sent'],
    ]);
    expect(imap.logins).toEqual([]);

    const relay = cleanup.add(await relayWith([entry('eg', SPECIAL)], { delivery: { waitSeconds: 10 } }), (r) => r.stop());
    const reply = await send(relay.port, { to: 'ops@eg.test' });
    expect(reply.response).toMatch(/^250 2\.0\.0 Ok: delivered/);
    expect(imap.logins).toEqual(['eg user']);
    expect(imap.commands.slice(-3)).toEqual(['a1 STARTTLS', 'a2 LOGIN "eg user" "Imap \\"quoted\\" \\\\ pass"', 'a3 LOGOUT']);
    expect(smtp.messages).toHaveLength(1);

    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-imap-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ upstreams: [entry('eg', SPECIAL)] }));
    const io = captureIo();
    expect(await validateCommand({ config: path, connect: true }, io, connectCheck())).toBe(0);
    expect(io.out()).toMatch(/eg\s+imap\s+ok\s+imap-before-smtp ok: logged in as eg user at 127\.0\.0\.1:\d+/);
  });

  it('refuses a cleartext POP3/IMAP password unless allowPlaintext, and any protocol but pop3 and imap', () => {
    const base = { name: 'eg', host: 'smtp.eg.test', security: 'none', receiveBeforeSend: { host: 'pop.eg.test', user: 'u', pass: 'p' } };
    const problems = (extra: object) =>
      configSchema.safeParse({ upstreams: [{ ...base, receiveBeforeSend: { ...base.receiveBeforeSend, ...extra } }] }).error?.issues.map((i) => i.message) ?? [];
    expect(problems({ security: 'none' })).toEqual(['security "none" would send the POP3 password in clear: use "tls" or "starttls" (or set allowPlaintext: true to accept that)']);
    expect(problems({ security: 'none', allowPlaintext: true })).toEqual([]);
    expect(problems({ protocol: 'imap', security: 'none' })).toEqual(['security "none" would send the IMAP password in clear: use "tls" or "starttls" (or set allowPlaintext: true to accept that)']);
    expect(problems({ protocol: 'smtp' })).toHaveLength(1);
    const parsed = configSchema.parse({ upstreams: [base] }).upstreams[0];
    expect(parsed?.protocol === 'smtp' && parsed.receiveBeforeSend).toMatchObject({ protocol: 'pop3', security: 'tls', validMinutes: 5 });
  });

  it('a POP3 server that is not there is an ERECEIVE error naming host, port and security', async () => {
    const pop = await startFakePop3({ users: {} });
    const port = pop.port;
    await pop.close();
    const config = { protocol: 'pop3' as const, host: '127.0.0.1', port, security: 'none' as const, user: 'u', pass: 'p', allowPlaintext: true, validMinutes: 5 };
    await expect(pop3Login({ config, ca: TLS_PEM.ca, rejectUnauthorized: true, minVersion: 'TLSv1.2', connectSeconds: 2, replySeconds: 2 })).rejects.toMatchObject({
      code: 'ERECEIVE',
      message: expect.stringMatching(/check receiveBeforeSend\.host, port and security/),
    });
  });
});
