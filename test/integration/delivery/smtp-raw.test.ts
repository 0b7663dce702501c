/**
 * The raw SMTP sender (src/delivery/smtp-raw.ts) against real servers: the fake upstream
 * (smtp-server), the fake Exchange Online (STARTTLS + XOAUTH2) and, for a connection dropped
 * while idle in the pool, a scripted raw-socket server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import { afterEach, describe, expect, it } from 'vitest';
import { createRawSmtpPool, type RawEnvelope, type RawSmtpPool, type RawSmtpPoolOptions } from '../../../src/delivery/smtp-raw.js';
import { startLocalConnectProxy } from '../../helpers/connect-proxy.js';
import { startFakeExchange } from '../../helpers/fake-exchange.js';
import { sha256, startFakeUpstream } from '../../helpers/fake-upstream.js';
import { TLS_PEM } from '../../helpers/tls.js';
import { rawHeader } from '../../../src/core/raw-source.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const step of cleanups.splice(0).reverse()) await step();
});

function pool(port: number, extra: Partial<RawSmtpPoolOptions> = {}): RawSmtpPool {
  const p = createRawSmtpPool({
    connection: { host: '127.0.0.1', port, name: 'relay.test', ignoreTLS: true, connectionTimeout: 3000, greetingTimeout: 3000, socketTimeout: 5000, logger: false },
    maxConnections: 1,
    maxMessages: 100,
    ...extra,
  });
  cleanups.push(() => p.close());
  return p;
}

const envelope = (overrides: Partial<RawEnvelope> = {}): RawEnvelope => ({ from: 'app@corp.test', to: ['user@dest.test'], size: 0, use8BitMime: true, ...overrides });

/** A message whose lines start with dots, with a line holding a single dot (DATA's terminator) and 8-bit bytes. */
const MESSAGE = Buffer.from(
  ['From: app@corp.test', 'To: user@dest.test', 'Subject: dots', '', '.leading dot', '.', '..two dots', 'Gr\u00fc\u00dfe 8-bit', 'last line', ''].join('\r\n'),
  'utf8',
);

async function failure(promise: Promise<unknown>): Promise<Error & { code?: string; responseCode?: number }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string; responseCode?: number };
  }
  throw new Error('expected the send to fail');
}

describe('raw SMTP sender', () => {
  it('delivers a Buffer and a spool file source (header + body range) byte for byte, line-start dots and a lone "." line included', async () => {
    const server = await startFakeUpstream({ tls: 'none', sizeBytes: 10_000_000 });
    cleanups.push(() => server.close());
    const dir = await mkdtemp(join(tmpdir(), 'smtp-raw-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'message.eml');
    await writeFile(path, MESSAGE);
    const p = pool(server.port);
    const info = await p.send(envelope({ size: MESSAGE.length }), MESSAGE);
    await p.send(envelope({ from: '' }), { path, header: rawHeader(MESSAGE), bodyStart: rawHeader(MESSAGE).length, bodyEnd: MESSAGE.length });
    const [viaBuffer, viaFile] = await server.waitForMessages(2);
    for (const received of [viaBuffer!, viaFile!]) expect(received.sha256).toBe(sha256(MESSAGE));
    expect(viaBuffer!.envelope).toEqual({ mailFrom: 'app@corp.test', rcptTo: ['user@dest.test'] });
    expect(viaBuffer!.mailParams).toMatchObject({ SIZE: String(MESSAGE.length), BODY: '8BITMIME' });
    expect(viaBuffer!.heloName).toBe('relay.test');
    expect(viaFile!.envelope.mailFrom).toBe('');
    expect(info.accepted).toEqual(['user@dest.test']);
    expect(info.response).toMatch(/^250 /);
  });

  it('keeps the connection for the next messages, recycles it after maxMessages, and never opens more than maxConnections', async () => {
    const server = await startFakeUpstream({ tls: 'none' });
    cleanups.push(() => server.close());
    const sequential = pool(server.port, { maxMessages: 3 });
    for (let i = 0; i < 7; i++) await sequential.send(envelope(), MESSAGE);
    expect(server.connections).toBe(3); // 3 + 3 + 1 messages

    const concurrent = pool(server.port, { maxConnections: 2 });
    let peak = 0;
    const sends = Array.from({ length: 12 }, () => concurrent.send(envelope(), MESSAGE).then(() => (peak = Math.max(peak, concurrent.connections))));
    await Promise.all(sends);
    expect(server.connections).toBe(3 + 2);
    expect(peak).toBeLessThanOrEqual(2);
    await server.waitForMessages(19);
  });

  it('a message refused after DATA fails alone (EMESSAGE) and the connection is kept for the next one', async () => {
    const server = await startFakeUpstream({ tls: 'none', failData: { code: 550, message: '5.7.1 rejected by policy' } });
    cleanups.push(() => server.close());
    const p = pool(server.port);
    const err = await failure(p.send(envelope(), MESSAGE));
    expect(err).toMatchObject({ code: 'EMESSAGE', responseCode: 550 });
    server.setScript({});
    await p.send(envelope(), MESSAGE);
    expect(server.connections).toBe(1);
    expect(server.messages).toHaveLength(1);
  });

  it('a refused recipient is reported in rejected/rejectedErrors and the others are delivered', async () => {
    const server = await startFakeUpstream({ tls: 'none', failRcpt: (a) => (a.startsWith('bad') ? { code: 550, message: '5.1.1 no such user' } : undefined) });
    cleanups.push(() => server.close());
    const info = (await pool(server.port).send(envelope({ to: ['bad@dest.test', 'user@dest.test'] }), MESSAGE)) as SMTPConnection.SentMessageInfo & { rejectedErrors?: { responseCode?: number }[] };
    expect(info.accepted).toEqual(['user@dest.test']);
    expect(info.rejected).toEqual(['bad@dest.test']);
    expect(info.rejectedErrors?.[0]?.responseCode).toBe(550);
  });

  it('a 421 greeting fails the send and the pool recovers when the server greets again', async () => {
    const server = await startFakeUpstream({ tls: 'none', greeting: '421' });
    cleanups.push(() => server.close());
    const p = pool(server.port);
    const err = await failure(p.send(envelope(), MESSAGE));
    expect(err.responseCode).toBe(421);
    server.setScript({});
    await p.send(envelope(), MESSAGE);
    expect(server.messages).toHaveLength(1);
  });

  it('resends once on a new connection when the server dropped a pooled connection before any message byte', async () => {
    // a server that closes its first connection when the second MAIL FROM arrives (as one whose
    // idle timeout fired just as the relay reused the connection)
    const received: string[] = [];
    let connectionCount = 0;
    const server: Server = createServer((socket: Socket) => {
      connectionCount += 1;
      const first = connectionCount === 1;
      let mails = 0;
      let inData = false;
      let buffer = '';
      socket.write('220 scripted ESMTP\r\n');
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        for (let at = buffer.indexOf('\r\n'); at !== -1; at = buffer.indexOf('\r\n')) {
          const line = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          if (inData) {
            if (line === '.') {
              inData = false;
              socket.write('250 2.0.0 queued\r\n');
            } else received.push(line);
          } else if (/^EHLO/i.test(line)) socket.write('250-scripted\r\n250 8BITMIME\r\n');
          else if (/^MAIL/i.test(line)) {
            mails += 1;
            if (first && mails === 2) return void socket.destroy();
            socket.write('250 ok\r\n');
          } else if (/^RCPT/i.test(line)) socket.write('250 ok\r\n');
          else if (/^DATA/i.test(line)) {
            inData = true;
            socket.write('354 go\r\n');
          } else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n');
          else socket.write('250 ok\r\n');
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as { port: number }).port;
    const p = pool(port);
    await p.send(envelope(), Buffer.from('Subject: one\r\n\r\nfirst\r\n'));
    const info = await p.send(envelope(), Buffer.from('Subject: two\r\n\r\nsecond\r\n'));
    expect(info.response).toMatch(/^250 /);
    expect(connectionCount).toBe(2);
    expect(received.filter((l) => l === 'first' || l === 'second')).toEqual(['first', 'second']);
  });

  it('a configured login is sent even when the server does not offer AUTH (no unauthenticated fallback)', async () => {
    const server = await startFakeUpstream({ tls: 'none' });
    cleanups.push(() => server.close());
    const p = pool(server.port, { auth: { type: 'password', method: 'PLAIN', user: 'u', pass: 'secret-pass' } });
    const err = await failure(p.send(envelope(), MESSAGE));
    expect(err.code).toBe('EAUTH');
    expect(server.messages).toHaveLength(0);
  });

  it('XOAUTH2 against the fake Exchange: STARTTLS, a token per connection; a refused token fails that connection and the next one asks again', async () => {
    const valid = new Set(['token-2']);
    const exchange = await startFakeExchange({ isValid: (t) => valid.has(t), user: 'relay@corp.test' });
    cleanups.push(() => exchange.close());
    const asked: boolean[] = [];
    const p = pool(exchange.port, {
      connection: { host: '127.0.0.1', port: exchange.port, name: 'relay.test', requireTLS: true, tls: { ca: TLS_PEM.ca, servername: 'localhost' }, connectionTimeout: 3000, greetingTimeout: 3000, socketTimeout: 5000, logger: false },
      auth: {
        type: 'oauth2',
        user: 'relay@corp.test',
        provisionCallback: (_user, renew, callback) => {
          asked.push(renew);
          callback(null, `token-${asked.length}`, Date.now() + 3_600_000);
        },
      },
    });
    const err = await failure(p.send(envelope(), MESSAGE));
    expect(err).toMatchObject({ code: 'EAUTH', responseCode: 535 });
    await p.send(envelope(), MESSAGE);
    expect(asked).toEqual([false, false]);
    expect(exchange.presentedTokens).toEqual(['token-1', 'token-2']);
    expect(exchange.authAttempts.map((a) => a.secure)).toEqual([true, true]);
    expect(exchange.messages).toHaveLength(1);
    expect(exchange.messages[0]!.raw.equals(MESSAGE)).toBe(true);
  });

  it('goes through the HTTP CONNECT proxy (upstream.proxy) and delivers byte for byte', async () => {
    const server = await startFakeUpstream({ tls: 'none' });
    cleanups.push(() => server.close());
    const proxy = await startLocalConnectProxy();
    cleanups.push(() => proxy.close());
    const p = pool(server.port, { proxy: proxy.url });
    await p.send(envelope(), MESSAGE);
    await p.send(envelope(), MESSAGE);
    const received = await server.waitForMessages(2);
    expect(received.map((m) => m.sha256)).toEqual([sha256(MESSAGE), sha256(MESSAGE)]);
    expect(proxy.connects).toEqual([`127.0.0.1:${server.port}`]); // one tunnel, kept for both messages
  });
});
