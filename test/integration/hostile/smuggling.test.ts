/**
 * Issue 7 item 1: SMTP smuggling. Every end-of-data variant followed by a smuggled
 * MAIL/RCPT/DATA, in one write and byte by byte, in both bare-line-ending modes: the upstream
 * receives exactly one message (none when `reject` refuses it) and never the smuggled one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EOD_VARIANTS, expectAlive, startHostile, writeByteByByte, type Hostile } from './support.js';
import { openTransaction } from '../../helpers/smtp-client.js';


const SMUGGLED_FROM = 'smuggled@evil.test';
const SMUGGLED_TO = 'victim@dest.test';

export function smugglingPayload(eod: string): Buffer {
  return Buffer.from(
    `From: app@legacy.test\r\nTo: alice@dest.test\r\nSubject: legit\r\n\r\nlegit body${eod}` +
      `MAIL FROM:<${SMUGGLED_FROM}>\r\nRCPT TO:<${SMUGGLED_TO}>\r\nDATA\r\nFrom: ${SMUGGLED_FROM}\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n`,
    'latin1',
  );
}

const hasBareLineEnd = (s: string): boolean => /\r(?!\n)|(?<!\r)\n/.test(s);

for (const mode of ['normalize', 'reject'] as const) {
  describe(`smuggling with listen.bareLineFeeds=${mode}`, () => {
    let h: Hostile;
    let expectedMessages = 0;
    beforeAll(async () => {
      h = await startHostile({ listen: { bareLineFeeds: mode } });
    });
    afterAll(async () => {
      await h.stop();
    });

    for (const [name, eod] of EOD_VARIANTS) {
      for (const byteByByte of [false, true]) {
        it(`${name} ${JSON.stringify(eod)} ${byteByByte ? 'byte by byte' : 'in one write'}: one message upstream, never the smuggled one`, async () => {
          const client = await openTransaction(h.relay.port, 'app@legacy.test', ['alice@dest.test']);
          try {
            const payload = smugglingPayload(eod);
            if (byteByByte) await writeByteByByte(client, payload);
            else client.write(payload);
            const reply = await client.next(15_000);
            const refused = mode === 'reject' && hasBareLineEnd(eod);
            if (refused) {
              expect(reply).toMatch(/^550 5\.6\.0 /);
            } else {
              expect(reply).toMatch(/^250 /);
              expectedMessages += 1;
            }
            // the smuggled commands were body text: the next reply belongs to our QUIT
            expect(await client.command('QUIT')).toMatch(/^221 /);
          } finally {
            client.close();
          }
          expect(h.upstream.messages).toHaveLength(expectedMessages);
          for (const m of h.upstream.messages) {
            expect(m.envelope.mailFrom).not.toBe(SMUGGLED_FROM);
            expect(m.envelope.rcptTo).not.toContain(SMUGGLED_TO);
            const header = m.raw.subarray(0, m.raw.indexOf('\r\n\r\n')).toString('latin1');
            expect(header).toMatch(/(^|\r\n)Subject: legit(\r\n|$)/);
          }
          if (expectedMessages > 0) {
            const last = h.upstream.messages[h.upstream.messages.length - 1]!;
            // the smuggled dialogue is still inside message 1, with CRLF-only line ends
            expect(last.raw.toString('latin1')).toContain('smuggled body');
            expect(last.raw.toString('latin1')).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
          }
        });
      }
    }

    it('a control: a real CRLF.CRLF followed by a pipelined second transaction is two messages', async () => {
      const client = await openTransaction(h.relay.port, 'app@legacy.test', ['alice@dest.test']);
      try {
        client.write(smugglingPayload('\r\n.\r\n'));
        expect(await client.next(15_000)).toMatch(/^250 /); // message 1
        expect(await client.next()).toMatch(/^250 /); // MAIL
        expect(await client.next()).toMatch(/^250 /); // RCPT
        expect(await client.next()).toMatch(/^354 /); // DATA
        expect(await client.next(15_000)).toMatch(/^250 /); // message 2
      } finally {
        client.close();
      }
      expectedMessages += 2;
      expect(h.upstream.messages).toHaveLength(expectedMessages);
      await expectAlive(h.relay.port);
    });

    it('after a quiet period no smuggled message has arrived late', async () => {
      await new Promise((r) => setTimeout(r, 1500));
      expect(h.upstream.messages).toHaveLength(expectedMessages);
      // only the control's legitimately pipelined second message comes from that sender
      expect(h.upstream.messages.filter((m) => m.envelope.mailFrom === SMUGGLED_FROM)).toHaveLength(1);
    });
  });
}
