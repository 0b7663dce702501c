import fc from 'fast-check';
import type { Writable } from 'node:stream';
import MailComposer from 'nodemailer/lib/mail-composer';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../../src/core/errors.js';
import type { MessageFacts } from '../../../src/core/types.js';
import { createFactsParser } from '../../../src/message/parse.js';

const CRLF = '\r\n';

function write(input: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => input.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/** Feeds the message in chunks (waiting for each to be taken, as a well-behaved caller does) and ends. */
async function parse(raw: Buffer | string, options: { chunkBytes?: number; maxHeaderBytes?: number } = {}): Promise<MessageFacts> {
  const buf = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const { input, facts } = createFactsParser(options.maxHeaderBytes === undefined ? {} : { maxHeaderBytes: options.maxHeaderBytes });
  const step = options.chunkBytes ?? 64 * 1024;
  for (let i = 0; i < buf.length; i += step) await write(input, buf.subarray(i, i + step));
  input.end();
  return facts;
}

async function compose(mail: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  return new MailComposer(mail).compile().build();
}

describe(createFactsParser.name, () => {
  it('reads addresses, subject, Message-ID, raw Date and header names in order', async () => {
    const raw = [
      'Received: from app by relay',
      'From: "Doe, John" <john@example.com>',
      'Sender: agent@example.com',
      'Reply-To: replies@example.com',
      'To: a@example.com, Team: b@example.com, c@example.com;',
      'Cc: =?UTF-8?Q?J=C3=BCrgen?= <j@example.com>',
      'cc: second@example.com',
      'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=',
      'Message-ID: <abc@example.com>',
      'Date: Mon, 5 Jan 2026\r\n 10:00:00 +0100 (CET)',
      'X-No-Colon-Line',
      '',
      'body',
      '',
    ].join(CRLF);
    const facts = await parse(raw);
    expect(facts.from).toEqual([{ name: 'Doe, John', address: 'john@example.com' }]);
    expect(facts.sender).toEqual({ name: '', address: 'agent@example.com' });
    expect(facts.replyTo).toEqual([{ name: '', address: 'replies@example.com' }]);
    expect(facts.to.map((m) => m.address)).toEqual(['a@example.com', 'b@example.com', 'c@example.com']);
    expect(facts.cc).toEqual([
      { name: 'Jürgen', address: 'j@example.com' },
      { name: '', address: 'second@example.com' },
    ]);
    expect(facts.subject).toBe('Grüße');
    expect(facts.messageId).toBe('<abc@example.com>');
    expect(facts.date).toBe('Mon, 5 Jan 2026 10:00:00 +0100 (CET)');
    expect(facts.headerNames).toEqual(['received', 'from', 'sender', 'reply-to', 'to', 'cc', 'cc', 'subject', 'message-id', 'date']);
    expect(facts.attachments).toEqual({ count: 0, totalBytes: 0, inlineCount: 0, inlineBytes: 0 });
  });

  it('reads repeated and unusual header fields as mailparser does', async () => {
    const raw = Buffer.concat([
      Buffer.from(
        [
          'From: first@example.com',
          'From: second@example.com',
          'Subject: =?UTF-8?Q??=',
          'Message-ID:',
          'Message-ID: no-brackets@example.com',
          'To: <info@xn--bro-hoa.example>',
        ].join(CRLF) + CRLF,
      ),
      Buffer.from(`Subject: 8-bit Grüße${CRLF}Subject: third${CRLF}${CRLF}body${CRLF}`, 'utf8'),
    ]);
    const facts = await parse(raw);
    expect(facts.from).toEqual([{ name: '', address: 'first@example.com' }]);
    expect(facts.subject).toBe('8-bit Grüße');
    expect(facts.messageId).toBe('<no-brackets@example.com>');
    expect(facts.to).toEqual([{ name: '', address: 'info@büro.example' }]);
  });

  it('counts attachments and decoded bytes, inline (related) parts also apart', async () => {
    const raw = await compose({
      from: 'a@example.com',
      to: 'b@example.com',
      subject: 'files',
      text: 'see attached',
      html: '<p><img src="cid:logo@x"></p>',
      attachments: [
        { filename: 'report.pdf', content: Buffer.alloc(1000, 1) },
        { filename: 'notes.txt', content: 'hello' },
        { filename: 'logo.png', content: Buffer.alloc(500, 2), cid: 'logo@x' },
        { filename: 'inline.bin', content: Buffer.alloc(7, 3), contentDisposition: 'inline' },
      ],
    });
    const facts = await parse(raw, { chunkBytes: 97 });
    expect(facts.attachments).toEqual({ count: 4, totalBytes: 1512, inlineCount: 2, inlineBytes: 507 });
  });

  it('sizes quoted-printable and base64 attachments from their encoded length, exactly for well-formed input', async () => {
    const text = `${'caf\u00e9 = cr\u00e8me br\u00fbl\u00e9e; '.repeat(40)}\r\nend=of=line \r\n`;
    const raw = await compose({
      from: 'a@example.com',
      to: 'b@example.com',
      text: 'body',
      attachments: [
        { filename: 'menu.txt', content: text, contentTransferEncoding: 'quoted-printable' },
        { filename: 'blob.bin', content: Buffer.alloc(4099, 0xff), contentTransferEncoding: 'base64' },
      ],
    });
    expect(raw.toString('latin1')).toMatch(/=\r\n/); // soft line breaks are present
    const facts = await parse(raw, { chunkBytes: 7 });
    expect(facts.attachments).toEqual({ count: 2, totalBytes: Buffer.byteLength(text) + 4099, inlineCount: 0, inlineBytes: 0 });
  });

  it('never sizes a base64 part below its decoded length when it carries junk', async () => {
    const head = `From: a@example.com${CRLF}Content-Type: multipart/mixed; boundary=XX${CRLF}${CRLF}--XX${CRLF}Content-Type: application/pdf${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}`;
    const facts = await parse(`${head}QUJD  REVG ***${CRLF}R0hJ${CRLF}--XX--${CRLF}`);
    expect(facts.attachments.count).toBe(1);
    expect(facts.attachments.totalBytes).toBeGreaterThanOrEqual(9); // ABCDEFGHI
    expect(facts.attachments.totalBytes).toBeLessThanOrEqual(9 + Math.ceil((6 * 3) / 4) + 1);
  });

  it('keeps no text or HTML body: a 20 MB text body and a 20 MB HTML body count as no attachment', async () => {
    const line = `${'x'.repeat(76)}\r\n`;
    const body = line.repeat(Math.ceil((20 * 1024 * 1024) / line.length));
    const raw = `From: a@example.com${CRLF}Content-Type: multipart/alternative; boundary=AA${CRLF}${CRLF}--AA${CRLF}Content-Type: text/plain${CRLF}${CRLF}${body}--AA${CRLF}Content-Type: text/html${CRLF}${CRLF}<p>${body}</p>${CRLF}--AA--${CRLF}`;
    const facts = await parse(raw, { chunkBytes: 256 * 1024 });
    expect(facts.attachments).toEqual({ count: 0, totalBytes: 0, inlineCount: 0, inlineBytes: 0 });
    expect(facts.from[0]?.address).toBe('a@example.com');
  });

  it('streams a 25 MB attachment (counted by decoded bytes, content not kept)', async () => {
    const size = 25 * 1024 * 1024;
    const raw = await compose({
      from: 'a@example.com',
      to: 'b@example.com',
      text: 'big',
      attachments: [{ filename: 'big.bin', content: Buffer.alloc(size, 7) }],
    });
    const facts = await parse(raw, { chunkBytes: 256 * 1024 });
    expect(facts.attachments.count).toBe(1);
    expect(facts.attachments.totalBytes).toBe(size);
    expect(JSON.stringify(facts).length).toBeLessThan(2000); // facts carry numbers, never contents
  });

  describe('malformed input resolves with best-effort facts', () => {
    const head = `From: a@example.com${CRLF}To: b@example.com${CRLF}Subject: s${CRLF}`;
    const cases: Record<string, () => string> = {
      'missing closing boundary': () =>
        `${head}Content-Type: multipart/mixed; boundary=XX${CRLF}${CRLF}--XX${CRLF}Content-Type: application/pdf${CRLF}${CRLF}data${CRLF}`,
      'never-used boundary': () => `${head}Content-Type: multipart/mixed; boundary=NEVER${CRLF}${CRLF}just text${CRLF}`,
      'broken base64': () =>
        `${head}Content-Type: multipart/mixed; boundary=XX${CRLF}${CRLF}--XX${CRLF}Content-Type: application/pdf${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}!!!QUJD***${CRLF}--XX--${CRLF}`,
      'unknown charset': () => `${head}Content-Type: text/plain; charset=x-no-such-charset${CRLF}${CRLF}hello${CRLF}`,
      'header lines without colon': () => `${head}this is not a header${CRLF}nor this${CRLF}${CRLF}body${CRLF}`,
      'NUL bytes': () => `${head}X-Nul: a\0b${CRLF}${CRLF}bo\0dy${CRLF}`,
      'nesting depth 200': () => {
        let msg = `${head}Content-Type: multipart/mixed; boundary=b0${CRLF}${CRLF}`;
        for (let i = 1; i < 200; i++) msg += `--b${i - 1}${CRLF}Content-Type: multipart/mixed; boundary=b${i}${CRLF}${CRLF}`;
        return `${msg}--b199${CRLF}Content-Type: text/plain${CRLF}${CRLF}deep${CRLF}`;
      },
      'no body separator': () => head,
      'empty message': () => '',
      'bare LF line endings': () => `${head}\n\nbody\n`.replace(/\r\n/g, '\n'),
    };
    for (const [name, build] of Object.entries(cases)) {
      it(name, async () => {
        const facts = await parse(build(), { chunkBytes: 13 });
        expect(Array.isArray(facts.headerNames)).toBe(true);
        if (name !== 'empty message') expect(facts.from[0]?.address).toBe('a@example.com');
      });
    }

    it('counts what it can of a part with broken base64', async () => {
      const facts = await parse(cases['broken base64']!());
      expect(facts.attachments.count).toBe(1);
    });
  });

  it('rejects a message with more MIME parts than mailsplit allows (10,000) as E_MALFORMED_MESSAGE', async () => {
    const parts: string[] = [];
    for (let i = 0; i < 10_000; i++) parts.push(`--XX${CRLF}Content-Type: text/plain${CRLF}${CRLF}p${i}${CRLF}`);
    const raw = `From: a@example.com${CRLF}Content-Type: multipart/mixed; boundary=XX${CRLF}${CRLF}${parts.join('')}--XX--${CRLF}`;
    const err = await parse(raw).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).code).toBe('E_MALFORMED_MESSAGE');
    expect((err as RelayError).detail).toBe('Message has too many MIME parts');
  });

  it('rejects a MIME header block over maxHeaderBytes as E_HEADER_TOO_BIG', async () => {
    const raw = `From: a@example.com${CRLF}X-Big: ${'x'.repeat(5000)}${CRLF}${CRLF}body${CRLF}`;
    const err = await parse(raw, { maxHeaderBytes: 1000, chunkBytes: 100 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).code).toBe('E_HEADER_TOO_BIG');
    expect((err as RelayError).detail).toBe('Message header block exceeds 1000 bytes');
  });

  it('rejects when the input is destroyed before the message ended, and never emits an error on input', async () => {
    const { input, facts } = createFactsParser();
    const errors: unknown[] = [];
    input.on('error', (e) => errors.push(e));
    await write(input, Buffer.from(`From: a@example.com${CRLF}Subject: x${CRLF}`));
    input.destroy(new Error('client went away'));
    await expect(facts).rejects.toBeInstanceOf(RelayError);
    await new Promise((r) => setImmediate(r));
    expect(errors).toEqual([]);
  });

  it('settles when the input ends without any data', async () => {
    const { input, facts } = createFactsParser();
    input.end();
    await expect(facts).resolves.toMatchObject({ from: [], headerNames: [] });
  });
});

describe('leaf bodies read past the splitter (body-skip.ts)', () => {
  it('sizes a 4 MiB base64 attachment exactly while the splitter parses only the structure', async () => {
    const content = Buffer.alloc(4 * 1024 * 1024, 7);
    const raw = await compose({ from: 'a@example.com', to: 'b@example.com', subject: 's', text: 'hello', attachments: [{ filename: 'x.bin', content }] });
    const { input, facts, stats } = createFactsParser();
    for (let i = 0; i < raw.length; i += 64 * 1024) await write(input, raw.subarray(i, i + 64 * 1024));
    input.end();
    expect((await facts).attachments).toEqual({ count: 1, totalBytes: content.length, inlineCount: 0, inlineBytes: 0 });
    // the splitter's own fields the skip reads (SplitterInternals) still exist: else every byte goes through it
    expect(stats.skippedBytes).toBeGreaterThan(raw.length * 0.9);
    expect(stats.splitBytes).toBeLessThan(200 * 1024);
  });

  it('counts a single-part message body without the splitter', async () => {
    const body = Buffer.from(`${'-- not a delimiter\r\n'.repeat(1000)}\r\nend\r\n`);
    const raw = Buffer.concat([Buffer.from('From: a@example.com\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n\r\n'), body]);
    const { input, facts, stats } = createFactsParser();
    for (let i = 0; i < raw.length; i += 4096) await write(input, raw.subarray(i, i + 4096));
    input.end();
    const { attachments } = await facts;
    expect(attachments.count).toBe(1);
    expect(attachments.totalBytes).toBeGreaterThanOrEqual(body.length - 2);
    expect(stats.splitBytes).toBeLessThan(4096);
  });

  it('gives the same counts as the splitter alone, never smaller sizes, whatever the structure, bodies and chunking', async () => {
    interface Leaf { kind: 'leaf'; type: string; disposition: string; encoding: string; lines: string[] }
    interface Multi { kind: 'multi'; subtype: string; children: Tree[] }
    type Tree = Leaf | Multi;
    // No body line is a delimiter behind a lone CR ('\r--b0'): mailsplit accepts one, but the
    // splitter alone counts such a message differently with the chunking (1 or 2 attachments for
    // the same bytes in 7- or 191-byte chunks), so there is no count to match; the intake never
    // parses one for a message it accepts (bareLineFeeds: normalize makes the CR a CRLF, reject
    // refuses the message before its facts are used).
    const bodyLine = fc.oneof(
      fc.constantFrom('plain text', '-- ', '--', '-', '--b0', '--b1--', '--b0x', '--b2 ', '', '=', 'a=', '=3D=\r', '\r-x', '\r', 'QUJD', 'QUJDRA==', '  ', 'x-y'),
      fc.string({ maxLength: 20 }),
    );
    const leaf = fc.record({
      kind: fc.constant('leaf' as const),
      type: fc.constantFrom('text/plain', 'text/html', 'application/pdf', 'image/png', 'message/rfc822'),
      disposition: fc.constantFrom('', 'attachment', 'inline'),
      encoding: fc.constantFrom('base64', 'quoted-printable', '7bit', ''),
      // now and then a body longer than the splitter's 8 KiB window
      lines: fc.tuple(fc.array(bodyLine, { maxLength: 12 }), fc.constantFrom(1, 1, 1, 700)).map(([lines, times]) => Array.from({ length: times }, () => lines).flat()),
    });
    const tree: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree }>((tie) => ({
      tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.record({ kind: fc.constant('multi' as const), subtype: fc.constantFrom('mixed', 'related', 'alternative'), children: fc.array(tie('tree'), { maxLength: 4 }) })),
    })).tree;
    const render = (t: Tree, depth: number, eol: string): string => {
      if (t.kind === 'leaf') {
        const head = [`Content-Type: ${t.type}`, t.disposition ? `Content-Disposition: ${t.disposition}` : '', t.encoding ? `Content-Transfer-Encoding: ${t.encoding}` : ''].filter((l) => l !== '');
        return `${head.join(eol)}${eol}${eol}${t.lines.join(eol)}`;
      }
      const b = `b${depth}`;
      const parts = t.children.map((c) => `--${b}${eol}${render(c, depth + 1, eol)}${eol}`).join('');
      return `Content-Type: multipart/${t.subtype}; boundary="${b}"${eol}${eol}preamble${eol}${parts}--${b}--${eol}epilogue`;
    };
    await fc.assert(
      fc.asyncProperty(tree, fc.constantFrom('\r\n', '\n'), fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constant(64 * 1024)), async (t, eol, chunkBytes) => {
        const raw = Buffer.from(`From: a@example.com${eol}${render(t, 0, eol)}${eol}`, 'latin1');
        // the splitter alone, fed the same chunks (its sizes can differ by a line end with the
        // chunking: an empty body line in front of a delimiter is 2 bytes in one chunk, 0 split)
        const [alone, skipped] = await Promise.all([parseWith(raw, { skipBodies: false, chunkBytes }), parseWith(raw, { chunkBytes })].map((p) => p.then((facts) => facts, (err: unknown) => err)));
        if (alone instanceof RelayError || skipped instanceof RelayError) {
          // a limit (too many parts) is a matter of structure: both refuse alike
          expect((skipped as RelayError).code).toBe((alone as RelayError).code);
          return;
        }
        if (!isFacts(alone) || !isFacts(skipped)) throw new Error('unexpected parser outcome');
        expect({ count: skipped.attachments.count, inline: skipped.attachments.inlineCount }).toEqual({ count: alone.attachments.count, inline: alone.attachments.inlineCount });
        expect(skipped.attachments.totalBytes).toBeGreaterThanOrEqual(alone.attachments.totalBytes);
        expect(skipped.attachments.inlineBytes).toBeGreaterThanOrEqual(alone.attachments.inlineBytes);
        expect(skipped.attachments.totalBytes).toBeLessThanOrEqual(alone.attachments.totalBytes + 4 * raw.toString('latin1').split('\n').length);
      }),
      { numRuns: 150 },
    );
  });
});

function isFacts(value: unknown): value is MessageFacts {
  return typeof value === 'object' && value !== null && 'attachments' in value;
}

async function parseWith(raw: Buffer, options: { skipBodies?: boolean; chunkBytes: number }): Promise<MessageFacts> {
  const { input, facts } = createFactsParser(options.skipBodies === undefined ? {} : { skipBodies: options.skipBodies });
  for (let i = 0; i < raw.length; i += options.chunkBytes) await write(input, raw.subarray(i, i + options.chunkBytes));
  input.end();
  return facts;
}
