/**
 * timeouts.connectSeconds bounds the TCP connect only; timeouts.greetingSeconds is the full wait
 * for the 220 greeting after it (nodemailer's own setup deadline used to cut the greeting at
 * connectSeconds). A slow-greeting server: a TCP relay on 127.0.0.1 in front of a fake upstream
 * that holds the upstream's first bytes back for 1.5 s. Delivery and validate --connect alike.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { connectCheck } from '../../../src/cli/validate-connect.js';
import { startFakeUpstream } from '../../helpers/fake-upstream.js';
import { captureIo } from '../cli/support.js';
import { cleanupFor, relayWith, send, upstream } from '../delivery-half/support.js';

const GREETING_DELAY_MS = 1500;

/** Forwards to `port`, holding the server's bytes back until GREETING_DELAY_MS after each connect. */
async function slowGreeter(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstreamSocket = net.connect({ host: '127.0.0.1', port });
    sockets.add(client).add(upstreamSocket);
    const held: Buffer[] = [];
    let open = false;
    const timer = setTimeout(() => {
      open = true;
      for (const chunk of held.splice(0)) client.write(chunk);
    }, GREETING_DELAY_MS);
    upstreamSocket.on('data', (chunk: Buffer) => (open ? client.write(chunk) : held.push(chunk)));
    client.on('data', (chunk: Buffer) => upstreamSocket.write(chunk));
    const end = () => {
      clearTimeout(timer);
      client.destroy();
      upstreamSocket.destroy();
    };
    client.on('close', end).on('error', end);
    upstreamSocket.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.concurrent('greetingSeconds is not cut short by connectSeconds', () => {
  it('delivery waits the full greeting time (connect 1 s, greeting 4 s, greeting after 1.5 s)', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const slow = cleanup.add(await slowGreeter(up.port), (s) => s.close());
    const relay = cleanup.add(
      await relayWith([upstream('slow', slow.port, { timeouts: { connectSeconds: 1, greetingSeconds: 4, socketSeconds: 10 } })], { delivery: { waitSeconds: 10 } }),
      (r) => r.stop(),
    );
    const reply = await send(relay.port, { to: 'a@dest.test' });
    expect(reply.response).toMatch(/^250 2\.0\.0 Ok: delivered/);
    expect(up.messages).toHaveLength(1);
  });

  it('validate --connect follows the same meaning: greeting ok with 4 s, failed at the greeting step with 1 s', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const slow = cleanup.add(await slowGreeter(up.port), (s) => s.close());
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-timeouts-'));
    const path = join(dir, 'config.json');
    const check = async (greetingSeconds: number) => {
      await writeFile(path, JSON.stringify({ upstreams: [upstream('slow', slow.port, { timeouts: { connectSeconds: 1, greetingSeconds, socketSeconds: 10 } })] }));
      const io = captureIo();
      const code = await validateCommand({ config: path, connect: true }, io, connectCheck());
      return { code, out: io.out() };
    };
    const ok = await check(4);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/greeting\s+ok/);
    const tooShort = await check(1);
    expect(tooShort.code).toBe(1);
    expect(tooShort.out).toMatch(/greeting\s+FAILED|greeting.*fail/i);
  });
});
