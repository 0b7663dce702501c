/**
 * Issue 12 finding 6: header edits keep the message valid. A folded or spaced field name
 * (`From\r\n : spoof@evil`, `Sender :`, `Cc\r\n :`) is the field it names, so the From rewrite,
 * the Sender removal and the always-Cc rewrite take it along (the upstream never gets two
 * From fields); every line the relay writes stays within 78 characters where whitespace
 * allows, and never above 998, even for a display name of 40 encoded-words.
 */
import { Headers } from '@zone-eu/mailsplit';
import { parseAddressHeader } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { sendMessage, startHostile, type Hostile } from './support.js';

let h: Hostile | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const GLOBAL_FROM = 'noreply@corp.test';

function headerOf(raw: Buffer): string {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : text.slice(0, end + 2);
}

/** Field keys as a MIME reader sees them (mailsplit: the text before the first colon, trimmed). */
function fieldsNamed(header: string, name: string): string[] {
  return new Headers(Buffer.from(header, 'latin1'))
    .getList()
    .filter((l) => l.key === name.toLowerCase())
    .map((l) => l.line);
}

describe('folded and spaced field names are the field they name', () => {
  it('From\\r\\n :, From :, Sender\\r\\n : and Cc\\r\\n : are rewritten or removed with the field', async () => {
    h = await startHostile({ message: { globalFrom: GLOBAL_FROM, rewriteFrom: 'always', alwaysCc: ['audit@corp.test'] } });
    const message = [
      'From: "App" <app@legacy.test>',
      'From',
      ' : spoof@evil.test',
      'From\t: second-spoof@evil.test',
      'Sender',
      ' : boss@evil.test',
      'Cc',
      ' : hidden@evil.test',
      'To: alice@dest.test',
      'Subject: folded names',
      '',
      'body',
      '',
    ].join('\r\n');
    expect(await sendMessage(h.relay.port, message)).toMatch(/^250 /);
    const header = headerOf(h.upstream.messages[0]!.raw);
    const from = fieldsNamed(header, 'from');
    expect(from, header).toHaveLength(1);
    expect(from[0]).toContain(GLOBAL_FROM);
    expect(header).not.toMatch(/^From[ \t]*(\r\n[ \t]*)?:\s*[^\r\n]*evil/im);
    expect(fieldsNamed(header, 'sender'), header).toEqual([]);
    const cc = fieldsNamed(header, 'cc');
    expect(cc, header).toHaveLength(1);
    expect(cc[0]).toContain('audit@corp.test');
  });
});

describe('every header line the relay writes is foldable', () => {
  it('a display name of 40 encoded-words gives From and Reply-To lines of at most 78 characters, decoding to the same name', async () => {
    h = await startHostile({ message: { globalFrom: GLOBAL_FROM, rewriteFrom: 'always' } });
    const words = Array.from({ length: 40 }, (_, i) => `=?UTF-8?Q?AbteilungBuchhaltungNord${String(i).padStart(2, '0')}?=`);
    // folded input: every line at most 89 characters
    const fromField = `From: ${words.join('\r\n ')} <app@legacy.test>`;
    expect(Math.max(...fromField.split('\r\n').map((l) => l.length))).toBeLessThanOrEqual(89);
    const message = `${fromField}\r\nTo: alice@dest.test\r\nSubject: long name\r\n\r\nbody\r\n`;
    expect(await sendMessage(h.relay.port, message)).toMatch(/^250 /);
    const header = headerOf(h.upstream.messages[0]!.raw);
    for (const name of ['from', 'reply-to']) {
      const [field] = fieldsNamed(header, name);
      expect(field, header).toBeDefined();
      const lines = field!.split('\r\n');
      expect(Math.max(...lines.map((l) => l.length)), field).toBeLessThanOrEqual(78);
      const parsed = parseAddressHeader(field!.slice(field!.indexOf(':') + 1).replace(/\r\n/g, ''));
      const mailbox = Array.isArray(parsed) ? parsed[0] : parsed.value[0];
      const expectedName = Array.from({ length: 40 }, (_, i) => `AbteilungBuchhaltungNord${String(i).padStart(2, '0')}`).join('');
      expect(mailbox?.name).toBe(expectedName);
    }
    expect(Math.max(...header.split('\r\n').map((l) => l.length))).toBeLessThanOrEqual(998);
  });
});

describe('many short header lines (issue 12 finding 8)', () => {
  const lines = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: v`).join('\r\n');

  it('16,000 short header lines (197 KB) are within the limits and relayed', async () => {
    h = await startHostile();
    const reply = await sendMessage(h.relay.port, `From: app@legacy.test\r\nSubject: many\r\n${lines(16_000)}\r\n\r\nbody\r\n`);
    expect(reply).toMatch(/^250 /);
    expect(h.upstream.messages).toHaveLength(1);
  });

  it('20,000 short header lines are refused with a reply about lines, not about 1 MB of bytes', async () => {
    h = await startHostile();
    const reply = await sendMessage(h.relay.port, `From: app@legacy.test\r\nSubject: many\r\n${lines(20_000)}\r\n\r\nbody\r\n`);
    expect(reply).toMatch(/^552 5\.3\.4 Message header has too many lines \(more than 16384/);
    expect(reply).not.toMatch(/1048576 bytes$/);
    expect(h.upstream.messages).toHaveLength(0);
  });
});
