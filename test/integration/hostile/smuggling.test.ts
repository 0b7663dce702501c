/**
 * Issue 7 item 1: SMTP smuggling. Every end-of-data variant followed by a smuggled
 * MAIL/RCPT/DATA, in one write and byte by byte, in both bare-line-ending modes: the upstream
 * receives exactly one message (none when `reject` refuses it) and never the smuggled one.
 *
 * Each case stands alone (`-t '<its name>'` runs it by itself): it counts only what arrives
 * upstream during the case, and ends with a sentinel message. The relay has one connection to
 * the upstream (maxConnections 1), so once the sentinel has arrived the upstream has read
 * everything the relay sent before it: a smuggled message would be recorded by then. That is
 * the event to wait for instead of a quiet period.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EOD_VARIANTS, expectAlive, sendMessage, startHostile, writeByteByByte, type Hostile } from './support.js';
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

const SENTINEL = 'sentinel';
const subjectOf = (raw: Buffer): string | undefined => /(?:^|\r\n)Subject: ([^\r]*)\r\n/.exec(raw.subarray(0, raw.indexOf('\r\n\r\n') + 2).toString('latin1'))?.[1];

for (const mode of ['normalize', 'reject'] as const) {
  describe(`smuggling with listen.bareLineFeeds=${mode}`, () => {
    let h: Hostile;
    beforeAll(async () => {
      h = await startHostile({ listen: { bareLineFeeds: mode } }, {}, {}, { maxConnections: 1 });
    });
    afterAll(async () => {
      await h.stop();
    });

    /** Sends the sentinel and returns the subjects of every message the upstream recorded since `before`. */
    async function arrivedSince(before: number): Promise<(string | undefined)[]> {
      expect(await sendMessage(h.relay.port, `From: app@legacy.test\r\nTo: alice@dest.test\r\nSubject: ${SENTINEL}\r\n\r\nafter the case\r\n`)).toMatch(/^250 /);
      return h.upstream.messages.slice(before).map((m) => subjectOf(m.raw));
    }

    for (const [name, eod] of EOD_VARIANTS) {
      for (const byteByByte of [false, true]) {
        it(`${name} ${JSON.stringify(eod)} ${byteByByte ? 'byte by byte' : 'in one write'}: one message upstream, never the smuggled one`, async () => {
          const before = h.upstream.messages.length;
          const refused = mode === 'reject' && hasBareLineEnd(eod);
          const client = await openTransaction(h.relay.port, 'app@legacy.test', ['alice@dest.test']);
          try {
            const payload = smugglingPayload(eod);
            if (byteByByte) await writeByteByByte(client, payload);
            else client.write(payload);
            const reply = await client.next(15_000);
            if (refused) expect(reply).toMatch(/^550 5\.6\.0 /);
            else expect(reply).toMatch(/^250 /);
            // the smuggled commands were body text: the next reply belongs to our QUIT
            expect(await client.command('QUIT')).toMatch(/^221 /);
          } finally {
            client.close();
          }
          const arrived = h.upstream.messages.slice(before);
          expect(await arrivedSince(before)).toEqual(refused ? [SENTINEL] : ['legit', SENTINEL]);
          for (const m of h.upstream.messages.slice(before)) {
            expect(m.envelope.mailFrom).not.toBe(SMUGGLED_FROM);
            expect(m.envelope.rcptTo).not.toContain(SMUGGLED_TO);
          }
          if (!refused) {
            // the smuggled dialogue is still inside message 1, with CRLF-only line ends
            const legit = arrived[0]!.raw.toString('latin1');
            expect(legit).toContain('smuggled body');
            expect(legit).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
          }
        });
      }
    }

    it('a control: a real CRLF.CRLF followed by a pipelined second transaction is two messages', async () => {
      const before = h.upstream.messages.length;
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
      expect(await arrivedSince(before)).toEqual(['legit', 'smuggled', SENTINEL]);
      expect(h.upstream.messages.slice(before).map((m) => m.envelope.mailFrom)).toEqual(['app@legacy.test', SMUGGLED_FROM, 'app@legacy.test']);
      await expectAlive(h.relay.port);
    });
  });
}
