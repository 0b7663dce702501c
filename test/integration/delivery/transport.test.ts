import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { classifyError } from '../../../src/delivery/classify.js';
import { createSmtpTransport } from '../../../src/delivery/transport.js';
import type { UpstreamTransport } from '../../../src/core/ports.js';
import { sha256, startFakeUpstream, startRefusingPort, type FakeUpstream, type FakeUpstreamOptions } from '../../helpers/fake-upstream.js';
import { CLIENT_CERT_CN, TLS_PATHS, TLS_PEM, makeExpiredServerCert } from '../../helpers/tls.js';
import { until } from '../../helpers/wait.js';
import { RAW, capturingLogger, outgoing, upstreamConfig } from './support.js';
import { rawHeader } from '../../../src/core/raw-source.js';

const PASSWORD = 'S3cret-Passw0rd!';

describe(createSmtpTransport.name, () => {
  const servers: FakeUpstream[] = [];
  const transports: UpstreamTransport[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    await Promise.all(transports.splice(0).map((t) => t.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  async function upstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
    const server = await startFakeUpstream(options);
    servers.push(server);
    return server;
  }

  function transport(port: number, overrides: Record<string, unknown> = {}, trace?: 'off' | 'summary' | 'detail') {
    const { logger, lines } = capturingLogger();
    const t = createSmtpTransport(upstreamConfig(port, overrides), { logger, defaultHostname: 'relay.corp.test', ...(trace ? { trace } : {}) });
    transports.push(t);
    return { transport: t, lines };
  }

  async function sendError(t: UpstreamTransport, message = outgoing()): Promise<Error & Record<string, unknown>> {
    try {
      await t.send(message);
    } catch (err) {
      return err as Error & Record<string, unknown>;
    }
    throw new Error('expected the send to fail');
  }

  describe('raw pass-through', () => {
    it('delivers a Buffer byte for byte with the envelope, SIZE, BODY=8BITMIME and the EHLO name', async () => {
      const server = await upstream({ tls: 'none', sizeBytes: 1_000_000 });
      const { transport: t } = transport(server.port);
      const report = await t.send(outgoing({ envelope: { mailFrom: 'app@corp.test', rcptTo: ['a@dest.test', 'b@dest.test'], bodyType: '8bitmime' } }));
      const [received] = await server.waitForMessages(1);
      expect(received?.sha256).toBe(sha256(RAW));
      expect(received?.envelope).toEqual({ mailFrom: 'app@corp.test', rcptTo: ['a@dest.test', 'b@dest.test'] });
      expect(received?.mailParams['SIZE']).toBe(String(RAW.length));
      expect(received?.mailParams['BODY']).toBe('8BITMIME');
      expect(received?.heloName).toBe('relay.corp.test');
      expect(report.accepted).toEqual(['a@dest.test', 'b@dest.test']);
      expect(report.rejected).toEqual([]);
      expect(report.response).toMatch(/^250 /);
    });

    it('delivers a spool file source (header + body range) byte for byte (file access stays on for our spool paths)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'transport-'));
      dirs.push(dir);
      const path = join(dir, 'Q2.eml');
      await writeFile(path, RAW);
      const server = await upstream({ tls: 'none' });
      const { transport: t } = transport(server.port);
      await t.send(outgoing({ qid: 'Q2', raw: { path, header: rawHeader(RAW), bodyStart: rawHeader(RAW).length, bodyEnd: RAW.length } }));
      const [received] = await server.waitForMessages(1);
      expect(received?.sha256).toBe(sha256(RAW));
    });

    it('sends the null sender as MAIL FROM:<>', async () => {
      const server = await upstream({ tls: 'none' });
      const { transport: t } = transport(server.port);
      await t.send(outgoing({ envelope: { mailFrom: '', rcptTo: ['user@dest.test'] } }));
      const [received] = await server.waitForMessages(1);
      expect(received?.envelope.mailFrom).toBe('');
    });
  });

  describe('security', () => {
    it('none: stays in plaintext even when the server offers STARTTLS', async () => {
      const server = await upstream({ tls: 'starttls' });
      const { transport: t } = transport(server.port, { security: 'none' });
      await t.send(outgoing());
      const [received] = await server.waitForMessages(1);
      expect(received?.tls).toBe(false);
    });

    it('starttls: upgrades when offered, trusting the configured CA', async () => {
      const server = await upstream({ tls: 'starttls' });
      const { transport: t } = transport(server.port, { security: 'starttls', tls: { ca: TLS_PATHS.ca } });
      await t.send(outgoing());
      const [received] = await server.waitForMessages(1);
      expect(received?.tls).toBe(true);
    });

    it('starttls: sends in plaintext when the server does not offer STARTTLS (opportunistic)', async () => {
      const server = await upstream({ tls: 'none' });
      const { transport: t } = transport(server.port, { security: 'starttls', tls: { ca: TLS_PATHS.ca } });
      await t.send(outgoing());
      const [received] = await server.waitForMessages(1);
      expect(received?.tls).toBe(false);
    });

    it('starttls-required: fails with ETLS against a server without STARTTLS, classified failover', async () => {
      const server = await upstream({ tls: 'none' });
      const { transport: t } = transport(server.port, { security: 'starttls-required', tls: { ca: TLS_PATHS.ca } });
      const err = await sendError(t);
      expect(err.code).toBe('ETLS');
      expect(server.messages).toHaveLength(0);
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    });

    it('tls: implicit TLS with the test CA', async () => {
      const server = await upstream({ tls: 'implicit' });
      const { transport: t } = transport(server.port, { security: 'tls', tls: { ca: TLS_PATHS.ca } });
      await t.send(outgoing());
      const [received] = await server.waitForMessages(1);
      expect(received?.tls).toBe(true);
    });

    it('a certificate from the wrong CA is refused (ESOCKET), classified failover', async () => {
      const server = await upstream({ tls: 'implicit', certificate: { cert: TLS_PEM.otherServerCert, key: TLS_PEM.otherServerKey } });
      const { transport: t } = transport(server.port, { security: 'tls', tls: { ca: TLS_PATHS.ca } });
      const err = await sendError(t);
      expect(err.code).toBe('ESOCKET');
      expect(server.messages).toHaveLength(0);
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.7.5' });
    });

    it('an expired certificate is refused over STARTTLS, classified failover', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'expired-'));
      dirs.push(dir);
      const expired = await makeExpiredServerCert(dir);
      const { readFile } = await import('node:fs/promises');
      const server = await upstream({
        tls: 'starttls',
        certificate: { cert: await readFile(expired.cert, 'utf8'), key: await readFile(expired.key, 'utf8') },
      });
      const { transport: t } = transport(server.port, { security: 'starttls-required', tls: { ca: TLS_PATHS.ca } });
      const err = await sendError(t);
      expect(String(err.message)).toMatch(/expired/i);
      expect(server.messages).toHaveLength(0);
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    });

    it('presents the client certificate (the server sees its CN)', async () => {
      const server = await upstream({ tls: 'starttls', requireClientCert: true });
      const { transport: t } = transport(server.port, {
        security: 'starttls-required',
        tls: { ca: TLS_PATHS.ca, cert: TLS_PATHS.clientCert, key: TLS_PATHS.clientKey },
      });
      await t.send(outgoing());
      const [received] = await server.waitForMessages(1);
      expect(received?.clientCertCN).toBe(CLIENT_CERT_CN);
    });

    it('logs nothing when built with certificate verification off (the relay warns once, at start and reload)', () => {
      const { lines } = transport(1, { security: 'tls', tls: { rejectUnauthorized: false } });
      expect(lines).toEqual([]);
    });
  });

  describe('basic auth', () => {
    for (const method of ['PLAIN', 'LOGIN'] as const) {
      it(`AUTH ${method} succeeds`, async () => {
        const server = await upstream({ tls: 'starttls', auth: { methods: ['PLAIN', 'LOGIN'], users: { relay: PASSWORD } } });
        const { transport: t } = transport(server.port, {
          security: 'starttls-required',
          tls: { ca: TLS_PATHS.ca },
          auth: { type: method.toLowerCase(), user: 'relay', pass: PASSWORD },
        });
        await t.send(outgoing());
        const [received] = await server.waitForMessages(1);
        expect(received?.authUser).toBe('relay');
        expect(server.authAttempts).toEqual([{ method, username: 'relay', accepted: true }]);
      });
    }

    it('a wrong password fails with EAUTH, classified failover, and the password is not in the error', async () => {
      const server = await upstream({ tls: 'starttls', auth: { methods: ['PLAIN', 'LOGIN'], users: { relay: 'the-right-one' } } });
      const { transport: t } = transport(server.port, {
        security: 'starttls-required',
        tls: { ca: TLS_PATHS.ca },
        auth: { type: 'login', user: 'relay', pass: PASSWORD },
      });
      const err = await sendError(t);
      expect(err.code).toBe('EAUTH');
      expect(err.responseCode).toBe(535);
      const visible = `${err.message} ${String(err.response)} ${JSON.stringify(err)}`;
      expect(visible).not.toContain(PASSWORD);
      expect(visible).not.toContain(Buffer.from(PASSWORD).toString('base64'));
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
      expect(server.messages).toHaveLength(0);
    });

    it('auth configured but the server offers no AUTH: fails instead of sending unauthenticated', async () => {
      const server = await upstream({ tls: 'starttls', auth: 'none' });
      const { transport: t } = transport(server.port, {
        security: 'starttls-required',
        tls: { ca: TLS_PATHS.ca },
        auth: { type: 'plain', user: 'relay', pass: PASSWORD },
      });
      const err = await sendError(t);
      expect(err.code).toBe('EAUTH');
      expect(server.messages).toHaveLength(0);
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    });

    it('trace "detail" logs the transcript with AUTH masked and without the message body', async () => {
      const server = await upstream({ tls: 'starttls', auth: { methods: ['PLAIN', 'LOGIN'], users: { relay: PASSWORD } } });
      const { transport: t, lines } = transport(
        server.port,
        { security: 'starttls-required', tls: { ca: TLS_PATHS.ca }, auth: { type: 'plain', user: 'relay', pass: PASSWORD } },
        'detail',
      );
      await t.send(outgoing());
      await server.waitForMessages(1);
      const log = lines.join('');
      expect(log).toContain('MAIL FROM:<app@corp.test>'); // the transcript is there
      expect(log).toContain('AUTH PLAIN');
      expect(log).not.toContain(PASSWORD);
      expect(log).not.toContain(Buffer.from(`\u0000relay\u0000${PASSWORD}`).toString('base64'));
      expect(log).not.toContain('Hello from the relay.'); // no body
      expect(log).not.toContain('Subject: relay test'); // no headers either
    });

    it('trace "summary" logs no transcript', async () => {
      const server = await upstream({ tls: 'none' });
      const { transport: t, lines } = transport(server.port, {}, 'summary');
      await t.send(outgoing());
      await server.waitForMessages(1);
      expect(lines.join('')).not.toContain('MAIL FROM');
    });
  });

  describe('upstream refusals', () => {
    it('a partial RCPT rejection resolves with per-recipient codes in SendReport.rejected', async () => {
      const server = await upstream({
        tls: 'none',
        failRcpt: (address) => (address.startsWith('gone') ? { code: 550, message: '5.1.1 User unknown' } : undefined),
      });
      const { transport: t } = transport(server.port);
      const report = await t.send(outgoing({ envelope: { mailFrom: 'app@corp.test', rcptTo: ['ok@dest.test', 'gone@dest.test'] } }));
      expect(report.accepted).toEqual(['ok@dest.test']);
      expect(report.rejected).toEqual([{ address: 'gone@dest.test', responseCode: 550, response: '550 5.1.1 User unknown' }]);
      const [received] = await server.waitForMessages(1);
      expect(received?.envelope.rcptTo).toEqual(['ok@dest.test']);
    });

    it('5xx to every RCPT is classified final', async () => {
      const server = await upstream({ tls: 'none', failRcpt: () => ({ code: 550, message: '5.1.1 User unknown' }) });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(err).toMatchObject({ code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' });
      expect(classifyError(err)).toEqual({ action: 'bounced', reason: expect.any(String), dsn: '5.1.1', markDown: false });
    });

    it('4xx to RCPT is classified failover without marking the upstream down', async () => {
      const server = await upstream({ tls: 'none', failRcpt: () => ({ code: 450, message: '4.2.1 Mailbox busy' }) });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(err).toMatchObject({ code: 'EENVELOPE', responseCode: 450, command: 'RCPT TO' });
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: false, dsn: '4.2.1' });
    });

    it('4xx to MAIL FROM is classified failover', async () => {
      const server = await upstream({ tls: 'none', failMail: { code: 451, message: '4.3.0 Try later' } });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(err).toMatchObject({ code: 'EENVELOPE', responseCode: 451, command: 'MAIL FROM' });
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: false });
    });

    it('5xx after DATA is classified final', async () => {
      const server = await upstream({ tls: 'none', failData: { code: 554, message: '5.6.0 Content rejected' } });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(err).toMatchObject({ code: 'EMESSAGE', responseCode: 554, command: 'DATA' });
      expect(classifyError(err)).toMatchObject({ action: 'bounced', dsn: '5.6.0' });
    });

    it('Exchange 432 4.3.2 thread limit after DATA is classified retry on the same upstream', async () => {
      const server = await upstream({ tls: 'none', failData: { code: 432, message: '4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded' } });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(classifyError(err)).toMatchObject({ action: 'deferred', markDown: false, dsn: '4.3.2' });
    });

    it('Exchange 554 5.2.0 SubmissionQuotaExceededException is classified failover with markDown', async () => {
      const server = await upstream({
        tls: 'none',
        failData: { code: 554, message: '5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message' },
      });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    });

    it('MAIL FROM refused with 530 (upstream wants TLS) is classified failover, not final', async () => {
      const server = await upstream({ tls: 'starttls', requireTls: true });
      const { transport: t } = transport(server.port, { security: 'none' });
      const err = await sendError(t);
      expect(err).toMatchObject({ responseCode: 530, command: 'MAIL FROM' });
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    });
  });

  describe('connection failures', () => {
    it('connection refused is ESOCKET (ECONNREFUSED), classified failover', async () => {
      const port = await startRefusingPort();
      const { transport: t } = transport(port);
      const err = await sendError(t);
      expect(err).toMatchObject({ code: 'ESOCKET', originalCode: 'ECONNREFUSED' });
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.4.1' });
    });

    it('a 421 greeting is EPROTOCOL on CONN, classified failover', async () => {
      const server = await upstream({ tls: 'none', greeting: '421' });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(err).toMatchObject({ code: 'EPROTOCOL', responseCode: 421, command: 'CONN' });
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.3.2' });
    });

    it('a 554 greeting is classified failover', async () => {
      const server = await upstream({ tls: 'none', greeting: '554' });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(err).toMatchObject({ responseCode: 554, command: 'CONN' });
      expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true, dsn: '4.4.1' });
    });

    it('a connection dropped in the middle of DATA is classified failover and nothing is recorded', async () => {
      const server = await upstream({ tls: 'none', dropMidData: true });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(['ECONNECTION', 'ESOCKET']).toContain(err.code);
      expect(classifyError(err).action).toBe('failover');
      expect(server.messages).toHaveLength(0);
    });

    it('a connection dropped after the whole DATA fails the send (the upstream may have the message)', async () => {
      const server = await upstream({ tls: 'none', dropAfterData: true });
      const { transport: t } = transport(server.port);
      const err = await sendError(t);
      expect(classifyError(err).action).toBe('failover');
      // the pool does not resend on its own (that would multiply the duplicate): one copy, one connection
      expect(server.messages).toHaveLength(1);
      expect(server.connections).toBe(1);
    });

    it('a server that fails then recovers (setScript) accepts the next send on the same transport', async () => {
      const server = await upstream({ tls: 'none', failMail: { code: 451, message: '4.3.0 Try later' } });
      const { transport: t } = transport(server.port);
      await sendError(t);
      server.setScript({});
      await t.send(outgoing());
      expect(await server.waitForMessages(1)).toHaveLength(1);
    });
  });

  it.each(['none', 'tls'] as const)('sets TCP_NODELAY on the upstream socket (security %s)', async (security) => {
    const server = await upstream({ tls: security === 'tls' ? 'implicit' : 'none' });
    const noDelaySockets: net.Socket[] = [];
    const original = net.Socket.prototype.setNoDelay;
    const spy = vi.spyOn(net.Socket.prototype, 'setNoDelay').mockImplementation(function (this: net.Socket, enable?: boolean) {
      if (enable !== false) noDelaySockets.push(this);
      return original.call(this, enable);
    });
    try {
      const { transport: t } = transport(server.port, { security, tls: { ca: TLS_PATHS.ca } });
      await t.send(outgoing());
    } finally {
      spy.mockRestore();
    }
    // client-side sockets are the ones whose remote end is the upstream's port
    expect(noDelaySockets.some((socket) => socket.remotePort === server.port)).toBe(true);
  });

  it('close() closes the pooled connections', async () => {
    const server = await upstream({ tls: 'none' });
    const { transport: t } = transport(server.port);
    await t.send(outgoing());
    expect(server.openConnections).toBe(1);
    await t.close();
    await until('the fake server has seen every pooled connection close', () => server.openConnections === 0, 2000);
    expect(server.openConnections).toBe(0);
  });
});
