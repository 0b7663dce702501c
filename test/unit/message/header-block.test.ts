import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RelayError } from '../../../src/core/errors.js';
import { HeaderBlockReader } from '../../../src/message/header-block.js';

const MAX = 64 * 1024;

/** Feeds `chunks` and returns [header, rest]. */
function run(chunks: readonly Buffer[], maxHeaderBytes = MAX): { header: Buffer; rest: Buffer; restChunks: Buffer[] } {
  const reader = new HeaderBlockReader(maxHeaderBytes);
  const restChunks: Buffer[] = [];
  for (const chunk of chunks) restChunks.push(...reader.push(chunk));
  reader.end();
  return { header: reader.header, rest: Buffer.concat(restChunks), restChunks };
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Splits `input` at the given offsets. */
function chunkAt(input: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(c, 0), input.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    out.push(input.subarray(start, p));
    start = p;
  }
  out.push(input.subarray(start));
  return out;
}

/** Reference: header ends before the first line (start of input or after LF) that is CRLF or LF. */
function referenceHeaderLength(input: Buffer): number {
  for (let p = 0; p < input.length; p++) {
    if (p > 0 && input[p - 1] !== 0x0a) continue;
    if (input[p] === 0x0a || (input[p] === 0x0d && input[p + 1] === 0x0a)) return p;
  }
  return input.length;
}

describe(HeaderBlockReader.name, () => {
  const message = b('From: a@example.com\r\nSubject: hi\r\n there\r\n\r\nbody line\r\n\r\nmore\r\n');
  const headerPart = b('From: a@example.com\r\nSubject: hi\r\n there\r\n');

  it('splits a CRLF message: header up to the last field line, rest from the blank line on', () => {
    const { header, rest } = run([message]);
    expect(header.toString('latin1')).toBe(headerPart.toString('latin1'));
    expect(rest.toString('latin1')).toBe('\r\nbody line\r\n\r\nmore\r\n');
  });

  it('finds the separator at every chunk boundary, including \\r\\n\\r | \\n', () => {
    for (let cut = 0; cut <= message.length; cut++) {
      const { header, rest } = run(chunkAt(message, [cut]));
      expect(header.equals(headerPart), `cut at ${cut}`).toBe(true);
      expect(Buffer.concat([header, rest]).equals(message)).toBe(true);
    }
    const oneByteChunks = [...message].map((byte) => Buffer.from([byte]));
    expect(run(oneByteChunks).header.equals(headerPart)).toBe(true);
  });

  it('returns nothing while inside the header and the body chunks as they are afterwards', () => {
    const reader = new HeaderBlockReader(MAX);
    expect(reader.push(b('Subject: x\r\n'))).toEqual([]);
    expect(reader.complete).toBe(false);
    const first = reader.push(b('\r\nbody'));
    expect(Buffer.concat(first).toString()).toBe('\r\nbody');
    expect(reader.complete).toBe(true);
    const later = b('more body');
    const returned = reader.push(later);
    expect(returned).toHaveLength(1);
    expect(returned[0]).toBe(later); // same Buffer: body bytes are never copied or changed
  });

  it('gives an empty header when the message starts with a blank line', () => {
    const { header, rest } = run([b('\r\nbody\r\n')]);
    expect(header.length).toBe(0);
    expect(rest.toString()).toBe('\r\nbody\r\n');
  });

  it('treats the whole message as header when there is no blank line', () => {
    const reader = new HeaderBlockReader(MAX);
    expect(reader.push(b('Subject: a\r\nX: b\r\n'))).toEqual([]);
    reader.end();
    expect(reader.complete).toBe(true);
    expect(reader.header.toString()).toBe('Subject: a\r\nX: b\r\n');
  });

  it('handles an empty message', () => {
    const { header, rest } = run([]);
    expect(header.length).toBe(0);
    expect(rest.length).toBe(0);
  });

  it('ends the header block at a bare-LF blank line', () => {
    const { header, rest } = run([b('Subject: a\nX: b\n\nbody\n')]);
    expect(header.toString()).toBe('Subject: a\nX: b\n');
    expect(rest.toString()).toBe('\nbody\n');
  });

  it('treats a bare CR at a line start as content, not as a separator', () => {
    const { header, rest } = run([b('A: 1\r\n\rB: 2\r\n\r\nbody')]);
    expect(header.toString('latin1')).toBe('A: 1\r\n\rB: 2\r\n');
    expect(rest.toString()).toBe('\r\nbody');
  });

  it('throws E_HEADER_TOO_BIG when the header block grows past the limit without ending', () => {
    const reader = new HeaderBlockReader(100);
    reader.push(b(`X-Long: ${'a'.repeat(60)}\r\n`));
    let thrown: unknown;
    try {
      reader.push(b(`X-More: ${'b'.repeat(60)}\r\n`));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(RelayError);
    expect((thrown as RelayError).code).toBe('E_HEADER_TOO_BIG');
    expect((thrown as RelayError).detail).toBe('Message header block exceeds 100 bytes');
    expect(() => reader.push(b('x'))).toThrow(RelayError);
  });

  it('throws E_HEADER_TOO_BIG when a complete header block in one chunk is over the limit', () => {
    const reader = new HeaderBlockReader(10);
    expect(() => reader.push(b('Subject: long enough\r\n\r\nbody'))).toThrow(/exceeds 10 bytes/);
  });

  it('accepts a header block of exactly the limit, even with the separator CR pending at a chunk end', () => {
    const header = b('Subject: 1234\r\n'); // 15 bytes
    const { header: got, rest } = run([Buffer.concat([header, b('\r')]), b('\nbody')], header.length);
    expect(got.equals(header)).toBe(true);
    expect(rest.toString()).toBe('\r\nbody');
  });

  it('property: for any input and chunking, header + rest === input and the split matches the reference', () => {
    const byteArb = fc.constantFrom(0x0d, 0x0a, 0x61, 0x20, 0x3a, 0x09, 0xff);
    fc.assert(
      fc.property(fc.array(byteArb, { maxLength: 200 }), fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 12 }), (bytes, cuts) => {
        const input = Buffer.from(bytes);
        const { header, rest } = run(chunkAt(input, cuts), 1_000);
        expect(Buffer.concat([header, rest]).equals(input)).toBe(true);
        expect(header.length).toBe(referenceHeaderLength(input));
      }),
      { seed: 20260101, numRuns: 500 },
    );
  });
});
