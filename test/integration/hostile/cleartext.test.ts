/**
 * Issue 12 finding 5: basic-auth passwords only over TLS. Against a real SMTP server that offers
 * AUTH but no STARTTLS (a man in the middle that strips it looks the same), behind a proxy that
 * records every byte the relay sends: with security "starttls" the password never reaches it
 * (delivery and validate --connect), "none" is a config error, and only auth.allowPlaintext
 * sends it, with a warning at start-up and in validate.
 */
import { writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { connectCheck } from '../../../src/cli/validate-connect.js';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { captureIo } from '../cli/support.js';
import { secretForms, startAuthUpstream, UPSTREAM_PASS, UPSTREAM_USER } from './support.js';
import type { FakeUpstream } from '../../helpers/fake-upstream.js';

let relay: TestRelay | undefined;
let upstream: FakeUpstream | undefined;
let proxy: { server: Server; sockets: Set<Socket> } | undefined;
afterEach(async () => {
  await relay?.stop();
  await upstream?.close();
  if (proxy !== undefined) {
    for (const s of proxy.sockets) s.destroy();
    await new Promise<void>((resolve) => proxy!.server.close(() => resolve()));
  }
  relay = undefined;
  upstream = undefined;
  proxy = undefined;
});

/** A TCP proxy in front of `port` that records every byte the client (the relay) sends. */
async function recordingProxy(port: number): Promise<{ port: number; sent: () => string }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(port, '127.0.0.1');
    sockets.add(client).add(up);
    client.on('data', (d: Buffer) => chunks.push(d));
    client.pipe(up).pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy = { server, sockets };
  return { port: (server.address() as { port: number }).port, sent: () => Buffer.concat(chunks).toString('latin1') };
}

const basic = (port: number, extra: Record<string, unknown> = {}) => ({
  name: 'basic',
  host: '127.0.0.1',
  port,
  security: 'starttls',
  timeouts: { connectSeconds: 2, greetingSeconds: 2, socketSeconds: 5 },
  auth: { type: 'plain', user: UPSTREAM_USER, pass: UPSTREAM_PASS, ...extra },
});

function expectNoPassword(text: string): void {
  for (const form of secretForms()) expect(text.includes(form), `the server received a form of the password: ${form}`).toBe(false);
}

async function send(port: number): Promise<string> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  try {
    return (await client.sendMail({ from: 'app@legacy.test', to: 'x@dest.test', subject: 's', text: 't' })).response;
  } finally {
    client.close();
  }
}

describe('passwords only over TLS', () => {
  it('security "starttls" with a server that offers no STARTTLS: the password never reaches it, the message waits', async () => {
    upstream = await startAuthUpstream({ tls: 'none' });
    const recorder = await recordingProxy(upstream.port);
    relay = await startRelay({ upstreams: [basic(recorder.port)], delivery: { waitSeconds: 3 } });
    expect(await send(relay.port)).toMatch(/^250 /);
    const deferred = await relay.logs.waitFor('deferred');
    expect(String(deferred.lastError)).toMatch(/STARTTLS/i);
    expect(recorder.sent()).toContain('STARTTLS');
    expect(recorder.sent()).not.toMatch(/AUTH /i);
    expectNoPassword(recorder.sent());
    expect(upstream.authAttempts).toEqual([]);
    expect(upstream.messages).toEqual([]);
  });

  it('validate says STARTTLS is required, and validate --connect fails at tls without sending the password', async () => {
    upstream = await startAuthUpstream({ tls: 'none' });
    const recorder = await recordingProxy(upstream.port);
    relay = await startRelay({});
    const path = join(relay.dir, 'validate.json');
    await writeFile(path, JSON.stringify({ upstreams: [basic(recorder.port)] }));
    const io = captureIo();
    expect(await validateCommand({ config: path, connect: true }, io, connectCheck())).toBe(1);
    expect(io.out()).toContain('note: upstreams[0].security: "starttls" with auth.type "plain" works as "starttls-required"');
    expect(io.out()).toMatch(/tls\s+failed\s+STARTTLS refused: .*the password is only sent over TLS.*auth\.allowPlaintext: true/);
    expect(io.out()).not.toMatch(/\bauth\s+ok/);
    expectNoPassword(recorder.sent() + io.out() + io.err());
    expect(upstream.authAttempts).toEqual([]);
  });

  it('security "none" with login/plain is a config error unless auth.allowPlaintext is set', () => {
    const attempt = (extra: Record<string, unknown>) => () => parseConfig({ upstreams: [{ ...basic(25), security: 'none', auth: { ...basic(25).auth, ...extra } }] });
    let problems = '';
    try {
      attempt({})();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems.join('\n');
    }
    expect(problems).toContain('upstreams[0].security: security "none" would send the plain password in clear');
    expect(attempt({ allowPlaintext: true })).not.toThrow();
  });

  it('auth.allowPlaintext: true sends it in clear, with a warning at start-up and in validate', async () => {
    upstream = await startAuthUpstream({ tls: 'none' });
    relay = await startRelay({ upstreams: [basic(upstream.port, { allowPlaintext: true })], delivery: { waitSeconds: 3 } });
    expect(relay.logs.events('upstream.auth-plaintext').filter((r) => String(r.detail).includes('may be sent in clear'))).toEqual([
      expect.objectContaining({ upstream: 'basic', key: 'upstreams[0].auth.allowPlaintext' }),
    ]);
    expect(await send(relay.port)).toMatch(/^250 /);
    await upstream.waitForMessages(1);
    expect(upstream.authAttempts).toEqual([expect.objectContaining({ username: UPSTREAM_USER, accepted: true })]);

    const path = join(relay.dir, 'validate.json');
    await writeFile(path, JSON.stringify({ upstreams: [basic(upstream.port, { allowPlaintext: true })] }));
    const io = captureIo();
    expect(await validateCommand({ config: path, connect: false }, io)).toBe(0);
    expect(io.out()).toContain('warning: upstreams[0].auth.allowPlaintext: the plain password for upstream "basic" may be sent in clear');
  });
});
