/**
 * Issue 7 item 3: malformed mail. Each message gets a defined answer: 250 and relayed with the
 * body bytes unchanged (sha256 at the upstream), or a 5xx with an enhanced code; the relay
 * survives every one of them.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, expectAlive, sendData, sendMessage, startHostile, type Hostile } from './support.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function nested(depth: number): string {
  let open = 'From: app@legacy.test\r\nSubject: nest\r\nMIME-Version: 1.0\r\n';
  let close = '';
  for (let i = 0; i < depth; i++) {
    open += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
    close = `\r\n--b${i}--\r\n${close}`;
  }
  return `${open}Content-Type: text/plain\r\n\r\ninnermost\r\n${close}`;
}

function manyParts(count: number): string {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(`--p\r\nContent-Type: text/plain\r\n\r\n${i}\r\n`);
  return `From: app@legacy.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n${parts.join('')}--p--\r\n`;
}

/** name → message bytes (CRLF-clean, as a well-behaved client would send them) */
const CASES: readonly [string, Buffer][] = [
  ['missing boundary parameter', Buffer.from('From: app@legacy.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n')],
  ['never-closed boundary', Buffer.from('From: app@legacy.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi, no end\r\n')],
  ['broken base64', Buffer.from('From: app@legacy.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!not*base64===@@@\r\nQUJD=====A\r\n--x--\r\n')],
  ['unknown charset', Buffer.from('From: =?x-unknown-42?q?Bob?= <app@legacy.test>\r\nSubject: =?x-klingon?b?AAAA?=\r\nContent-Type: text/plain; charset=x-klingon-99\r\n\r\nqapla\r\n')],
  ['header lines without a colon', Buffer.from('From: app@legacy.test\r\nthis line has no colon\r\n: empty name\r\nSubject: s\r\n\r\nbody\r\n')],
  ['header block just under 1 MiB', Buffer.from(`From: app@legacy.test\r\n${'X-Pad: '.concat('a'.repeat(990), '\r\n').repeat(1000)}\r\nbody\r\n`)],
  ['header block over 1 MiB', Buffer.from(`From: app@legacy.test\r\n${'X-Pad: '.concat('a'.repeat(990), '\r\n').repeat(1100)}\r\nbody\r\n`)],
  ['10,000 tiny parts', Buffer.from(manyParts(10_000))],
  ['nesting depth 200', Buffer.from(nested(200))],
  ['NUL bytes in header and body', Buffer.from('From: app@legacy.test\r\nSubject: a\0b\r\n\r\nbody\0with\0nul\r\n\0\r\n', 'latin1')],
  ['8-bit (latin1) headers', Buffer.from('From: J\xe9r\xf4me <app@legacy.test>\r\nSubject: R\xe9sum\xe9\r\n\r\nbody \xe9\r\n', 'latin1')],
  ['UTF-8 headers', Buffer.from('From: Jérôme Ünïcødé 😀 <app@legacy.test>\r\nSubject: Grüße 日本語\r\n\r\nbody ü\r\n', 'utf8')],
  ['a 1 MB single line', Buffer.from(`From: app@legacy.test\r\nSubject: long\r\n\r\n${'y'.repeat(1024 * 1024)}\r\n`)],
  ['a 1 MB single header line', Buffer.from(`From: app@legacy.test\r\nX-Long: ${'z'.repeat(1024 * 1024)}\r\n\r\nbody\r\n`)],
  ['no body separator', Buffer.from('From: app@legacy.test\r\nSubject: only headers\r\n')],
  ['garbage that is no header at all', Buffer.from('\x01\x02\x03 not a mail at all \xff\xfe\r\n')],
];

describe('malformed messages get a defined answer', () => {
  let h: Hostile;
  beforeAll(async () => {
    h = await startHostile({ limits: { maxAttachments: 20_000, maxAttachmentsTotalMB: 100 } });
  });
  afterAll(async () => {
    await h.stop();
  });

  for (const [name, message] of CASES) {
    it(name, async () => {
      const before = h.upstream.messages.length;
      const reply = await sendMessage(h.relay.port, message, { timeoutMs: 30_000 });
      expect(reply, reply).toMatch(/^(250 |5\d\d 5\.\d+\.\d+ )/);
      if (reply.startsWith('250')) {
        expect(h.upstream.messages).toHaveLength(before + 1);
        const got = h.upstream.messages[before]!.raw;
        const sentBody = bodyOf(message);
        if (sentBody !== undefined) expect(sha(bodyOf(got) ?? Buffer.alloc(0))).toBe(sha(sentBody));
        // without a separator, the original bytes (all header) are still there, unchanged
        else expect(got.includes(message)).toBe(true);
      } else {
        expect(h.upstream.messages).toHaveLength(before);
      }
      await expectAlive(h.relay.port);
    });
  }

  it('the header block over 1 MiB is refused with 552 5.3.4', async () => {
    const big = CASES.find(([n]) => n === 'header block over 1 MiB')![1];
    expect(await sendMessage(h.relay.port, big)).toMatch(/^552 5\.3\.4 /);
  });

  it('an empty message (DATA then the terminator) gets a defined answer and the relay survives', async () => {
    const reply = await sendData(h.relay.port, Buffer.from('.\r\n'));
    expect(reply).toMatch(/^(250 |5\d\d 5\.\d+\.\d+ )/);
    await expectAlive(h.relay.port);
  });
});
