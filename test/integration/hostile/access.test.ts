/**
 * Issue 7 item 2: access. Outsiders get 554 and nothing is relayed; XCLIENT, XFORWARD and a
 * PROXY header line are not honoured (the recorded client stays 127.0.0.1); the default listen
 * host is loopback and the exposure warnings are decided correctly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { isLoopbackAddress } from '../../../src/core/loopback.js';
import { listenExposureWarnings } from '../../../src/intake/exposure.js';
import { rawSmtp } from '../../helpers/smtp-client.js';
import { dataPayload, expectAlive, startHostile, type Hostile } from './support.js';

let h: Hostile | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const MESSAGE = Buffer.from('From: app@legacy.test\r\nSubject: hi\r\n\r\nbody\r\n');

describe('access control', () => {
  it('a client outside allowedClients (bound to 127.0.0.2) gets 554 5.7.1 and nothing is relayed', async () => {
    h = await startHostile({ listen: { allowedClients: ['127.0.0.1/32'] } });
    const outsider = await rawSmtp(h.relay.port, { localAddress: '127.0.0.2' });
    try {
      expect(await outsider.next()).toMatch(/^554 5\.7\.1 /);
      // it may try to talk anyway (and claim to be 127.0.0.1 in a PROXY line): the socket is closed
      outsider.write('PROXY TCP4 127.0.0.1 127.0.0.1 5555 25\r\nEHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n');
      outsider.write(dataPayload(MESSAGE));
      await outsider.closed;
    } finally {
      outsider.close();
    }
    expect(h.upstream.messages).toHaveLength(0);
    expect(h.relay.logs.events('refused').map((r) => r.client)).toContain('127.0.0.2');
    expect(h.relay.logs.events('received')).toHaveLength(0);
    await expectAlive(h.relay.port); // 127.0.0.1 still served
  });

  for (const [name, line] of [
    ['XCLIENT', 'XCLIENT ADDR=10.9.9.9 NAME=trusted.example'],
    ['XFORWARD', 'XFORWARD ADDR=10.9.9.9 NAME=trusted.example'],
    ['PROXY', 'PROXY TCP4 10.9.9.9 127.0.0.1 5555 25'],
  ] as const) {
    it(`${name} is not honoured: refused, and the recorded client stays 127.0.0.1`, async () => {
      h = await startHostile();
      const client = await rawSmtp(h.relay.port);
      try {
        expect(await client.next()).toMatch(/^220 /);
        if (name === 'PROXY') {
          expect(await client.command(line)).toMatch(/^5\d\d /);
          expect(await client.command('EHLO client.test')).toMatch(/^250/);
        } else {
          const ehlo = await client.command('EHLO client.test');
          expect(ehlo).not.toMatch(/XCLIENT|XFORWARD/);
          expect(await client.command(line)).toMatch(/^5\d\d /);
        }
        expect(await client.command('MAIL FROM:<app@legacy.test>')).toMatch(/^250/);
        expect(await client.command('RCPT TO:<alice@dest.test>')).toMatch(/^250/);
        expect(await client.command('DATA')).toMatch(/^354/);
        client.write(dataPayload(MESSAGE));
        expect(await client.next(15_000)).toMatch(/^250 /);
      } finally {
        client.close();
      }
      const received = await h.relay.logs.waitFor('received');
      expect(received.client).toBe('127.0.0.1');
      expect(JSON.stringify(h.relay.logs.records())).not.toContain('10.9.9.9');
      expect(h.upstream.messages).toHaveLength(1);
      expect(h.upstream.messages[0]!.raw.toString('latin1')).not.toContain('10.9.9.9');
    });
  }
});

describe('listen defaults and exposure warnings', () => {
  it('listen.host defaults to loopback and allowedClients to loopback only', () => {
    const config = parseConfig({});
    expect(config.listen.host).toBe('127.0.0.1');
    expect(config.listen.allowedClients).toEqual(['127.0.0.0/8', '::1/128']);
    expect(listenExposureWarnings(config.listen.host, config.listen.allowedClients)).toEqual([]);
  });

  it('a non-loopback bind with the default allow-list gets the warning', () => {
    const defaults = parseConfig({}).listen.allowedClients;
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'relay.internal']) {
      expect(listenExposureWarnings(host, defaults).map((w) => w.kind), host).toEqual(['non-loopback-host-loopback-clients']);
    }
    for (const host of ['127.0.0.1', '127.0.0.5', '::1', 'localhost', '[::1]', '::ffff:127.0.0.1']) {
      expect(listenExposureWarnings(host, defaults), host).toEqual([]);
    }
    // a real network allow-list on a real interface is the intended container setup: no warning
    expect(listenExposureWarnings('0.0.0.0', ['10.0.0.0/8'])).toEqual([]);
    // a loopback-looking prefix that is not loopback-only still counts as a network allow-list
    expect(listenExposureWarnings('0.0.0.0', ['127.0.0.0/1'])).toEqual([]);
  });

  it('an allow-list that admits everyone gets the open-relay warning, wherever it listens', () => {
    expect(listenExposureWarnings('0.0.0.0', ['0.0.0.0/0']).map((w) => w.kind)).toEqual(['allows-any-client']);
    expect(listenExposureWarnings('127.0.0.1', ['::/0']).map((w) => w.kind)).toEqual(['allows-any-client']);
  });

  it('isLoopbackAddress recognises loopback forms only', () => {
    expect(['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', 'LOCALHOST', '::ffff:127.0.0.2'].every(isLoopbackAddress)).toBe(true);
    expect(['0.0.0.0', '::', '128.0.0.1', '::ffff:10.0.0.1', 'localhost.evil.test', '127.0.0.1.nip.io'].some(isLoopbackAddress)).toBe(false);
  });
});
