/**
 * Issue 11 item 1: the 220 greeting goes out at once (smtp-server's own 100 ms early-talker
 * delay is overridden in src/intake/smtp-listener.ts), and legacy clients that open a new
 * connection for every message work through the relay to a real upstream.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net, { connect } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startFakeUpstream } from '../../helpers/fake-upstream.js';
import { Cleanup, relayWith, upstream } from '../delivery-half/support.js';

const run = promisify(execFile);
const SWAKS = '/usr/bin/swaks';
const hasSwaks = existsSync(SWAKS);
if (!hasSwaks) console.warn(`swaks connection-per-message test skipped: ${SWAKS} is not installed (.ci/run installs it with apt-get install swaks)`);

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Opens a socket and writes `bytes` before anything was read; resolves with the first `lines` reply lines. */
function talkFirst(port: number, bytes: string, lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    socket.write(bytes); // queued before the connection is even established: an "early talker"
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no ${lines} reply lines within 10 s (got ${JSON.stringify(buffer)})`));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      const got = buffer.split('\r\n').slice(0, -1);
      if (got.length >= lines) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got.slice(0, lines));
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`connection closed after ${JSON.stringify(buffer)}`));
    });
    socket.on('error', () => undefined);
  });
}

describe('greeting without delay', () => {
  it('greets at once: a client that speaks before the greeting is served, not told "421 You talk too soon"', async () => {
    // smtp-server's own init() holds the greeting for 100 ms and answers anything that arrives
    // in that window with 421; the relay greets in the same tick as the accept
    const relay = cleanup.add(await relayWith([]), (r) => r.stop());
    const lines = await talkFirst(relay.port, 'EHLO early.test\r\nNOOP\r\n', 2);
    expect(lines[0]).toMatch(/^220 relay\.test ESMTP/);
    expect(lines[1]).toMatch(/^250[ -]relay\.test/);
  });

  it('sets TCP_NODELAY on the client connection (no Nagle delay on the replies)', async () => {
    const relay = cleanup.add(await relayWith([]), (r) => r.stop());
    const noDelay: net.Socket[] = [];
    const original = net.Socket.prototype.setNoDelay;
    const spy = vi.spyOn(net.Socket.prototype, 'setNoDelay').mockImplementation(function (this: net.Socket, enable?: boolean) {
      if (enable !== false) noDelay.push(this);
      return original.call(this, enable);
    });
    try {
      const lines = await talkFirst(relay.port, 'NOOP\r\n', 2);
      expect(lines[1]).toMatch(/^250/);
    } finally {
      spy.mockRestore();
    }
    // the relay's side of the connection is the socket whose local port is the listener's
    expect(noDelay.some((socket) => socket.localPort === relay.port)).toBe(true);
  });

  it("relays 20 messages from Python's smtplib, a new connection for each (a legacy batch job)", async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 5 } }), (r) => r.stop());
    const script = [
      'import smtplib, sys',
      'from email.message import EmailMessage',
      'codes = []',
      'for i in range(20):',
      '    m = EmailMessage()',
      "    m['From'] = 'erp@legacy.test'",
      "    m['To'] = 'ops@dest.test'",
      "    m['Subject'] = 'invoice %d' % i",
      "    m.set_content('invoice number %d\\n' % i)",
      "    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='legacy.test', timeout=15)",
      '    s.send_message(m)',
      '    codes.append(s.noop()[0])',
      '    s.quit()',
      'print(len(codes), sorted(set(codes)))',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script, String(relay.port)], { timeout: 60_000 });
    expect(stdout.trim()).toBe('20 [250]');
    const received = await up.waitForMessages(20, 10_000);
    const bodies = received.map((m) => /invoice number (\d+)/.exec(m.raw.toString('utf8'))?.[1]).sort((a, b) => Number(a) - Number(b));
    expect(bodies).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it.skipIf(!hasSwaks)('relays 3 swaks messages in a row, a new connection each', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 5 } }), (r) => r.stop());
    for (let i = 0; i < 3; i++) {
      const { stdout } = await run(
        SWAKS,
        ['--server', `127.0.0.1:${relay.port}`, '--helo', 'legacy.test', '--from', 'cron@legacy.test', '--to', 'ops@dest.test', '--header', `Subject: job ${i}`, '--body', `job ${i} done`, '--timeout', '15'],
        { timeout: 20_000 },
      );
      expect(stdout).toMatch(/^<-\s+250 .*delivered as/m);
    }
    const received = await up.waitForMessages(3, 10_000);
    expect(received.map((m) => /job (\d) done/.exec(m.raw.toString('utf8'))?.[1])).toEqual(['0', '1', '2']);
  });
});
