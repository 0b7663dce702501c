/**
 * Issue 12 finding 8 (the listener's part): a Received trace header by default (RFC 5321 4.4:
 * the client's address, the relay's name and the queue id), off with listen.addReceivedHeader;
 * a quoted local part ("john doe"@example.com, RFC 5321 4.1.2) is accepted while control
 * characters and CR/LF injection in addresses stay refused.
 */
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rawSmtp } from '../../helpers/smtp-client.js';
import { dataPayload, sendMessage, startHostile, type Hostile } from './support.js';

let h: Hostile | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const MESSAGE = 'From: app@legacy.test\r\nTo: alice@dest.test\r\nSubject: trace\r\n\r\nbody\r\n';

describe('Received trace header', () => {
  it('is the first field by default: client address, HELO name, listen.hostname and the qid', async () => {
    h = await startHostile();
    const reply = await sendMessage(h.relay.port, MESSAGE);
    const qid = /as (\S+)/.exec(reply)?.[1];
    expect(qid).toBeDefined();
    const raw = h.upstream.messages[0]!.raw.toString('latin1');
    const first = raw.slice(0, raw.search(/\r\n(?![ \t])/));
    expect(first.replace(/\r\n(?=[ \t])/g, '')).toMatch(
      new RegExp(`^Received: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\) by relay\\.test \\(smtp-sidecar\\) with ESMTP id ${qid}; \\w{3}, \\d{2} \\w{3} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000$`),
    );
    expect(raw.match(/^Received:/gm)).toHaveLength(1);
  });

  it('is not added with listen.addReceivedHeader: false', async () => {
    h = await startHostile({ listen: { addReceivedHeader: false } });
    expect(await sendMessage(h.relay.port, MESSAGE)).toMatch(/^250 /);
    expect(h.upstream.messages[0]!.raw.toString('latin1')).not.toMatch(/^Received:/m);
  });

  it('a HELO name with header syntax is neutralised in the Received field', async () => {
    h = await startHostile();
    const c = await rawSmtp(h.relay.port);
    try {
      await c.next();
      expect(await c.command('EHLO evil;(x)<y@z>')).toMatch(/^250/);
      await c.command('MAIL FROM:<app@legacy.test>');
      await c.command('RCPT TO:<alice@dest.test>');
      expect(await c.command('DATA')).toMatch(/^354/);
      c.write(dataPayload(Buffer.from(MESSAGE)));
      expect(await c.next()).toMatch(/^250 /);
    } finally {
      c.close();
    }
    const raw = h.upstream.messages[0]!.raw.toString('latin1');
    expect(raw).toMatch(/^Received: from evil\?\?x\?\?y\?z\? \(\[127\.0\.0\.1\]\)/);
  });
});

describe('quoted local parts', () => {
  it('"john doe"@example.com is accepted as sender and recipient and relayed as it is', async () => {
    // smtp-server (the usual fake upstream) has the same whitespace split the relay had, so the
    // upstream here is a minimal RFC 5321 server that records the envelope as Postfix would see it
    const upstream = await startEnvelopeRecorder();
    try {
      h = await startHostile({ upstreams: [{ name: 'plain', host: '127.0.0.1', port: upstream.port, security: 'none', timeouts: { connectSeconds: 2, greetingSeconds: 2, socketSeconds: 5 } }] });
      const reply = await sendMessage(h.relay.port, MESSAGE, { from: '"john doe"@legacy.test', to: ['"jane q. public"@dest.test'] });
      expect(reply).toMatch(/^250 /);
      expect(upstream.commands).toContain('MAIL FROM:<"john doe"@legacy.test>');
      expect(upstream.commands).toContain('RCPT TO:<"jane q. public"@dest.test>');
    } finally {
      await upstream.close();
    }
  });

  it('control characters inside the quotes, and CR/LF injection, stay refused', async () => {
    h = await startHostile();
    const c = await rawSmtp(h.relay.port);
    try {
      await c.next();
      await c.command('EHLO client.test');
      expect(await c.command('MAIL FROM:<"john\tdoe"@legacy.test>')).toMatch(/^5\d\d /);
      expect(await c.command('MAIL FROM:<"john\0doe"@legacy.test>')).toMatch(/^5\d\d /);
      expect(await c.command('MAIL FROM:<"a\rRCPT TO:<evil@x.test>"@legacy.test>')).toMatch(/^5\d\d /);
      expect(await c.command('MAIL FROM:<app@legacy.test>')).toMatch(/^250/);
      expect(await c.command('RCPT TO:<"unterminated@dest.test>')).toMatch(/^5\d\d /);
    } finally {
      c.close();
    }
  });
});

/** A minimal SMTP server (no AUTH, no TLS) that records every command line it gets. */
async function startEnvelopeRecorder(): Promise<{ port: number; commands: string[]; close(): Promise<void> }> {
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let inData = false;
    socket.write('220 recorder.test ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          socket.write('250 2.0.0 Ok: stored\r\n');
          continue;
        }
        const at = buffer.indexOf('\r\n');
        if (at < 0) return;
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        commands.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-recorder.test\r\n250 8BITMIME\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 Ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    commands,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
