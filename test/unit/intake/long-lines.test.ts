import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LongLineFolder, MAX_LINE_CHARS } from '../../../src/intake/long-lines.js';

function run(input: Buffer, cuts: readonly number[]): { out: Buffer; folder: LongLineFolder } {
  const folder = new LongLineFolder();
  const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, input.length]) {
    out.push(...folder.push(input.subarray(prev, p)));
    prev = p;
  }
  out.push(...folder.end());
  return { out: Buffer.concat(out), folder };
}

const lineLengths = (b: Buffer): number[] => b.toString('latin1').split('\n').map((l) => l.replace(/\r$/, '').length);

describe(LongLineFolder.name, () => {
  it('leaves messages without long lines byte-identical (and copies no chunk)', () => {
    const input = Buffer.from(`From: a@b.test\r\n\r\n${'x'.repeat(998)}\r\nshort\r\n`);
    const folder = new LongLineFolder();
    const out = folder.push(input);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(input);
    expect(folder.end()).toEqual([]);
  });

  it('folds a long line at spaces: removing the inserted CRLFs gives the input back', () => {
    const words = Array.from({ length: 4000 }, (_, i) => `w${i}`).join(' ');
    const input = Buffer.from(`X-Long: ${words}\r\n\r\n<p>${words}</p>\r\n`);
    const { out, folder } = run(input, [17, 5000, 5001, 20_000]);
    expect(folder.tooLong).toBeUndefined();
    expect(Math.max(...lineLengths(out))).toBeLessThanOrEqual(MAX_LINE_CHARS);
    expect(out.toString('latin1').replace(/\r\n(?=[ \t])/g, '')).toBe(input.toString('latin1'));
  });

  it('reports a line with no space to fold at', () => {
    const { out, folder } = run(Buffer.from(`Subject: s\r\n\r\n${'y'.repeat(28_000)}\r\n`), [100, 9000]);
    expect(folder.tooLong).toBe(28_000);
    expect(out.toString('latin1')).toContain('y'.repeat(28_000));
  });

  it('for any lines and chunking: output minus inserted CRLFs is the input; lines fit unless reported', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.array(fc.constantFrom('word', 'x'.repeat(300), ' ', '\t', '  '), { maxLength: 60 }).map((p) => p.join('')),
      fc.nat(3000).map((n) => 'z'.repeat(n)),
    );
    fc.assert(
      fc.property(fc.array(line.map((l) => l.replace(/[\r\n]/g, '')), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), (lines, cuts, lastLineEnds) => {
        const text = lines.join('\r\n') + (lastLineEnds ? '\r\n' : '');
        const input = Buffer.from(text, 'latin1');
        const { out, folder } = run(input, cuts);
        expect(out.toString('latin1').replace(/\r\n(?=[ \t])/g, '')).toBe(text.replace(/\r\n(?=[ \t])/g, ''));
        if (folder.tooLong === undefined) expect(Math.max(0, ...lineLengths(out))).toBeLessThanOrEqual(MAX_LINE_CHARS);
      }),
      { seed: 0x5eed7, numRuns: 400 },
    );
  });
});
