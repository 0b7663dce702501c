import fc from 'fast-check';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineEndingTransform } from '../../../src/intake/line-endings.js';

async function run(mode: 'normalize' | 'reject', chunks: string[]): Promise<{ out: string; sawBare: boolean }> {
  const t = new LineEndingTransform(mode);
  const parts: Buffer[] = [];
  Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(t);
  for await (const p of t) parts.push(p as Buffer);
  return { out: Buffer.concat(parts).toString('latin1'), sawBare: t.sawBareLineEnd };
}

describe(LineEndingTransform.name, () => {
  it('normalizes bare LF and bare CR to CRLF and leaves CRLF alone', async () => {
    expect(await run('normalize', ['a\nb\rc\r\nd\n'])).toEqual({ out: 'a\r\nb\r\nc\r\nd\r\n', sawBare: true });
    expect(await run('normalize', ['a\r\nb\r\n'])).toEqual({ out: 'a\r\nb\r\n', sawBare: false });
  });

  it('keeps a CRLF split across chunks and sees a bare CR at a chunk end', async () => {
    expect(await run('normalize', ['a\r', '\nb\r\n'])).toEqual({ out: 'a\r\nb\r\n', sawBare: false });
    expect(await run('normalize', ['a\r', 'b\r'])).toEqual({ out: 'a\r\nb\r\n', sawBare: true });
  });

  it('passes bytes unchanged in reject mode but remembers the bare line end', async () => {
    expect(await run('reject', ['a\nb\r', 'c'])).toEqual({ out: 'a\nb\rc', sawBare: true });
  });

  it('output never contains a bare CR or LF, for any input and chunking (normalize)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ unit: fc.constantFrom('a', '\r', '\n', '.', ' ') }), { maxLength: 8 }), async (chunks) => {
        const { out } = await run('normalize', chunks);
        expect(/\r(?!\n)|(?<!\r)\n/.test(out)).toBe(false);
        expect(out.replace(/\r\n/g, '')).toBe(chunks.join('').replace(/\r\n|\r|\n/g, ''));
      }),
      { numRuns: 300, seed: 4242 },
    );
  });
});
