/**
 * Issue 7 item 4: header injection. CR/LF in config values is refused at load; CR, LF, NUL in
 * envelope addresses is refused at MAIL/RCPT; display-name tricks carried over by the
 * global-From rewrite never create a second address or an extra header at the upstream.
 */
import { parseAddressHeader } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { rawSmtp } from '../../helpers/smtp-client.js';
import { sendMessage, startHostile, type Hostile } from './support.js';

let h: Hostile | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const GLOBAL_FROM = 'noreply@corp.test';

function configError(input: Record<string, unknown>): ConfigError {
  try {
    parseConfig(input);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('config was accepted');
}

describe('CR/LF in config values', () => {
  for (const [path, input] of [
    ['message.globalFrom', { message: { globalFrom: 'a@b.test\r\nBcc: evil@x.test' } }],
    ['listen.hostname', { listen: { hostname: 'relay\r\n250 evil' } }],
    ['upstreams.0.hostname', { upstreams: [{ name: 'u', host: 'mx.test', hostname: 'h\nRCPT TO:<x@y>' }] }],
    ['upstreams.0.auth.user', { upstreams: [{ name: 'u', host: 'mx.test', auth: { type: 'plain', user: 'u\r\nx', pass: 'p' } }] }],
    ['message.alwaysBcc.0', { message: { alwaysBcc: ['audit@corp.test\r\nX-Evil: 1'] } }],
  ] as const) {
    it(`refuses ${path} with a line break, naming the path`, () => {
      const err = configError(input as Record<string, unknown>);
      expect(err.problems.some((p) => p.startsWith(path.replace(/\.(\d+)/g, '[$1]')) || p.startsWith(path)), err.problems.join('\n')).toBe(true);
    });
  }
});

describe('CR, LF and NUL in envelope addresses', () => {
  for (const [name, bad] of [
    ['NUL', 'a\0b@legacy.test'],
    ['bare CR', 'a@legacy.test\rRCPT TO:<evil@x.test>'],
    ['TAB', 'a\tb@legacy.test'],
    ['DEL', 'a\u007fb@legacy.test'],
  ] as const) {
    it(`${name} in MAIL FROM and RCPT TO is refused with 5xx`, async () => {
      h = await startHostile();
      const client = await rawSmtp(h.relay.port);
      try {
        expect(await client.next()).toMatch(/^220/);
        await client.command('EHLO client.test');
        expect(await client.command(`MAIL FROM:<${bad}>`)).toMatch(/^5\d\d /);
        expect(await client.command('MAIL FROM:<app@legacy.test>')).toMatch(/^250/);
        expect(await client.command(`RCPT TO:<${bad}>`)).toMatch(/^5\d\d /);
        expect(await client.command('DATA')).toMatch(/^503/); // no valid recipient
      } finally {
        client.close();
      }
      expect(h.upstream.messages).toHaveLength(0);
    });
  }
});

describe('display-name tricks through the global-From rewrite', () => {
  const tricks: readonly [string, string][] = [
    ['encoded-word with @ and >', 'From: =?utf-8?q?evil=40x.test=3E?= <app@legacy.test>'],
    ['encoded-word with CRLF and a header', 'From: =?utf-8?q?a=0D=0ABcc=3A_evil=40x.test?= <app@legacy.test>'],
    ['quoted name with an address', 'From: "\\"a\\" <evil@x.test>" <app@legacy.test>'],
    ['name with a comma and address', 'From: "evil@x.test, other@y.test" <app@legacy.test>'],
    ['base64 encoded-word with a second mailbox', `From: =?utf-8?b?${Buffer.from('x <evil@x.test>, y').toString('base64')}?= <app@legacy.test>`],
    ['folded name', 'From: a\r\n b\r\n <app@legacy.test>'],
    ['literal encoded-word text in quotes', 'From: "=?utf-8?q?=0D=0AX-Evil=3A_1?=" <app@legacy.test>'],
  ];
  for (const [name, fromLine] of tricks) {
    it(`${name}: exactly one From address (globalFrom) and no injected header`, async () => {
      h = await startHostile({ message: { globalFrom: GLOBAL_FROM, rewriteFrom: 'always' } });
      const reply = await sendMessage(h.relay.port, `${fromLine}\r\nTo: alice@dest.test\r\nSubject: t\r\n\r\nbody\r\n`);
      expect(reply).toMatch(/^250 /);
      const [received] = h.upstream.messages;
      expect(received).toBeDefined();
      expect(received!.envelope.mailFrom).toBe(GLOBAL_FROM);
      const headerText = received!.raw.subarray(0, received!.raw.indexOf('\r\n\r\n') + 2).toString('utf8');
      const fields = headerText.split(/\r\n(?![ \t])/).filter((f) => f !== '');
      const names = fields.map((f) => f.slice(0, f.indexOf(':')).toLowerCase());
      expect(names.filter((n) => n === 'from')).toHaveLength(1);
      expect(names).not.toContain('bcc');
      expect(names).not.toContain('x-evil');
      expect(names.every((n) => /^[!-9;-~]+$/.test(n)), names.join(',')).toBe(true);
      const fromValue = fields.find((f) => /^from:/i.test(f))!.replace(/^from:\s*/i, '').replace(/\r\n(?=[ \t])/g, '');
      const parsed = parseAddressHeader(fromValue);
      const addresses = parsed.value.flatMap((a) => (a.group ? a.group.map((g) => g.address) : [a.address]));
      expect(addresses).toEqual([GLOBAL_FROM]);
      expect(headerText).not.toMatch(/\r(?!\n)|(?<!\r)\n|\0/);
    });
  }
});

describe('isAcceptableEnvelopeAddress (the listener check behind MAIL/RCPT)', () => {
  it('refuses control characters that smtp-server itself lets through', async () => {
    const { isAcceptableEnvelopeAddress } = await import('../../../src/intake/smtp-listener.js');
    expect(isAcceptableEnvelopeAddress('app@legacy.test')).toBe(true);
    for (const bad of ['a\0b@x.test', 'a@x.test\r', 'a\u007f@x.test', 'a\u001b@x.test', 'a b@x.test', 'no-at-sign']) {
      expect(isAcceptableEnvelopeAddress(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});
