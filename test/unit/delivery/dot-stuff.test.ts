import fc from 'fast-check';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import { Readable, type Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DotStuffer } from '../../../src/delivery/dot-stuff.js';

async function encode(stream: Transform, chunks: readonly Buffer[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  Readable.from(chunks).pipe(stream);
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

const bytesOf = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Splits `data` at the given cut points. */
function chunked(data: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of points) {
    if (at > from) chunks.push(data.subarray(from, at));
    from = Math.max(from, at);
  }
  if (from < data.length) chunks.push(data.subarray(from));
  return chunks;
}

/** Messages built from the characters that matter (CR, LF, dot) and a few others. */
const messageBytes = fc.array(fc.constantFrom('\r', '\n', '.', 'a', ' ', '\r\n', '\r\n.', '\r\n.\r\n', '\xff'), { maxLength: 60 }).map((parts) => bytesOf(parts.join('')));

describe(DotStuffer.name, () => {
  it('stuffs line-start dots and ends the data (CRLF-clean input, the spool case)', async () => {
    const out = await encode(new DotStuffer(), [bytesOf('.first\r\nline\r\n.\r\n..two\r\n')]);
    expect(out.toString('latin1')).toBe('..first\r\nline\r\n..\r\n...two\r\n.\r\n');
    expect((await encode(new DotStuffer(), [bytesOf('no final line end')])).toString('latin1')).toBe('no final line end\r\n.\r\n');
    expect((await encode(new DotStuffer(), [])).toString('latin1')).toBe('\r\n.\r\n');
  });

  it('sees a line-start dot and a CRLF split across chunks', async () => {
    const out = await encode(new DotStuffer(), [bytesOf('a\r'), bytesOf('\n'), bytesOf('.b\r\n')]);
    expect(out.toString('latin1')).toBe('a\r\n..b\r\n.\r\n');
  });

  it('repairs bare CR and bare LF so no lenient server can read an end of data inside the message', async () => {
    const out = await encode(new DotStuffer(), [bytesOf('a\n.\nb\r.\rc')]);
    expect(out.toString('latin1')).toBe('a\r\n..\r\nb\r\n..\r\nc\r\n.\r\n');
  });

  it('produces exactly the bytes of nodemailer DataStream for any input and any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(messageBytes, fc.array(fc.nat(), { maxLength: 6 }), async (data, cuts) => {
        const chunks = chunked(data, cuts);
        const expected = await encode(new DataStream(), chunks);
        const stuffer = new DotStuffer();
        const actual = await encode(stuffer, chunks);
        expect(actual.toString('latin1')).toBe(expected.toString('latin1'));
        expect(stuffer.inByteCount).toBe(data.length);
        expect(stuffer.outByteCount).toBe(actual.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('never lets a message end the data early: one terminator, no bare CR or LF (any input)', async () => {
    await fc.assert(
      fc.asyncProperty(messageBytes, fc.array(fc.nat(), { maxLength: 6 }), async (data, cuts) => {
        const out = (await encode(new DotStuffer(), chunked(data, cuts))).toString('latin1');
        expect(out.endsWith('\r\n.\r\n')).toBe(true);
        const body = out.slice(0, -3); // without ".\r\n": CRLF before it stays
        expect(body.includes('\r\n.\r\n')).toBe(false);
        expect(/\r(?!\n)|(?<!\r)\n/.test(out)).toBe(false);
        expect(body.startsWith('.\r\n')).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});
