/**
 * Issue 12 finding 7: lines upstreams refuse. A line over 998 characters (RFC 5321/5322) used
 * to get a 250 and fail upstream later. Now a long line is folded at whitespace (a header line:
 * ordinary folding; a body line: a line break before a space, as Postfix's
 * smtp_line_length_limit does), and a line with no whitespace to fold at is refused at DATA
 * with 550 5.6.0 and the reason, before anything is acknowledged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { bodyOf, sendMessage, startHostile, type Hostile } from './support.js';

let h: Hostile | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const longestLine = (raw: Buffer): number => Math.max(...raw.toString('latin1').split('\r\n').map((l) => l.length));
const words = (chars: number): string => Array.from({ length: Math.ceil(chars / 8) }, (_, i) => `word${String(i).padStart(3, '0')}`).join(' ').slice(0, chars);

describe('lines longer than 998 characters', () => {
  it('a 1,200-character header line with spaces is folded: every line fits, the field unfolds to the same value', async () => {
    h = await startHostile();
    const value = words(1200);
    expect(await sendMessage(h.relay.port, `From: app@legacy.test\r\nX-Report: ${value}\r\nSubject: s\r\n\r\nbody\r\n`)).toMatch(/^250 /);
    const raw = h.upstream.messages[0]!.raw;
    expect(longestLine(raw)).toBeLessThanOrEqual(998);
    const header = raw.toString('latin1').slice(0, raw.indexOf('\r\n\r\n'));
    expect(header.replace(/\r\n(?=[ \t])/g, '')).toContain(`X-Report: ${value}`);
  });

  it('a 1,200-character header line without spaces is refused at DATA with 550 5.6.0', async () => {
    h = await startHostile();
    const reply = await sendMessage(h.relay.port, `From: app@legacy.test\r\nX-Token: ${'t'.repeat(1200)}\r\nSubject: s\r\n\r\nbody\r\n`);
    expect(reply).toMatch(/^550 5\.6\.0 Message has a line of 1201 characters with no space to fold it at; SMTP allows 998/);
    expect(h.upstream.messages).toHaveLength(0);
  });

  it('a 28 KB body line with spaces (one-line HTML) is folded before spaces and delivered', async () => {
    h = await startHostile();
    const html = `<html><body><table>${words(28 * 1024)}</table></body></html>`;
    expect(await sendMessage(h.relay.port, `From: app@legacy.test\r\nContent-Type: text/html\r\nSubject: s\r\n\r\n${html}\r\n`)).toMatch(/^250 /);
    const raw = h.upstream.messages[0]!.raw;
    expect(longestLine(raw)).toBeLessThanOrEqual(998);
    expect(bodyOf(raw)!.toString('latin1').replace(/\r\n(?= )/g, '')).toBe(`${html}\r\n`);
  });

  it('a 28 KB body line without spaces is refused at DATA with 550 5.6.0 naming the line length', async () => {
    h = await startHostile();
    const reply = await sendMessage(h.relay.port, `From: app@legacy.test\r\nSubject: s\r\n\r\n${'b'.repeat(28 * 1024)}\r\n`);
    expect(reply).toMatch(/^550 5\.6\.0 Message has a line of 28672 characters with no space to fold it at/);
    expect(h.upstream.messages).toHaveLength(0);
    expect(h.relay.logs.events('rejected').map((l) => l['reason'])).toContain('line-too-long');
  });
});
