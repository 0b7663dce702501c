/**
 * Golden .eml pairs: the real receive pipeline (facts parser and header reader fed the
 * same chunks → runPolicies with a fixed clock and id → applyHeaderEdits → header + rest)
 * must produce test/fixtures/eml/<name>.out.eml byte for byte, and the body (everything
 * after the header block) must be bit-identical to the input's.
 *
 * Regenerate with `UPDATE_GOLDEN=1 npx vitest run test/unit/policies/golden.test.ts`,
 * then review every changed .out.eml by eye before committing.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import type { Envelope } from '../../../src/core/types.js';
import { HeaderBlockReader } from '../../../src/message/header-block.js';
import { applyHeaderEdits } from '../../../src/message/header-edits.js';
import { createFactsParser } from '../../../src/message/parse.js';
import { runPolicies } from '../../../src/policies/index.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/eml/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const CHUNK_BYTES = 7; // small and odd, so separators and fields straddle chunk boundaries
const MAX_HEADER_BYTES = 64 * 1024;

const config = configSchema.parse({
  listen: { hostname: 'relay.corp.example' },
  message: {
    globalFrom: 'noreply@corp.example',
    rewriteFrom: 'always',
    confidential: { enabled: true, headers: { Sensitivity: 'Company-Confidential' } },
    alwaysCc: ['audit@corp.example'],
    alwaysBcc: ['archive@corp.example'],
  },
});

const sha256 = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex');

function write(input: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => input.write(chunk, (err) => (err ? reject(err) : resolve())));
}

function splitHeader(raw: Buffer): { header: Buffer; rest: Buffer } {
  const reader = new HeaderBlockReader(MAX_HEADER_BYTES);
  const rest = reader.push(raw);
  reader.end();
  return { header: reader.header, rest: Buffer.concat(rest) };
}

/** What the receive conductor does, minus the network and the spool. */
async function relayPipeline(raw: Buffer, envelope: Envelope): Promise<{ out: Buffer; envelope: Envelope }> {
  const reader = new HeaderBlockReader(MAX_HEADER_BYTES);
  const parser = createFactsParser({ maxHeaderBytes: MAX_HEADER_BYTES });
  const rest: Buffer[] = [];
  for (let i = 0; i < raw.length; i += CHUNK_BYTES) {
    const chunk = raw.subarray(i, i + CHUNK_BYTES);
    rest.push(...reader.push(chunk));
    await write(parser.input, chunk);
  }
  reader.end();
  parser.input.end();
  const facts = await parser.facts;
  const outcome = runPolicies({
    envelope,
    facts,
    message: config.message,
    limits: config.limits,
    hostname: config.listen.hostname,
    now: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    newMessageIdLocalPart: () => 'golden-0001',
  });
  if (outcome.kind !== 'accept') throw new Error(`unexpected reject: ${outcome.detail}`);
  const header = applyHeaderEdits(reader.header, outcome.headerEdits);
  return { out: Buffer.concat([header, ...rest]), envelope: outcome.envelope };
}

const names = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.in.eml'))
  .map((f) => f.slice(0, -'.in.eml'.length))
  .sort();

describe('golden .eml pipeline', () => {
  it('has fixtures', () => {
    expect(names.length).toBeGreaterThanOrEqual(4);
  });

  for (const name of names) {
    it(name, async () => {
      const input = readFileSync(join(FIXTURES, `${name}.in.eml`));
      const { out, envelope } = await relayPipeline(input, { mailFrom: 'app@app.internal', rcptTo: ['to@corp.example'] });
      const goldenPath = join(FIXTURES, `${name}.out.eml`);
      if (UPDATE) writeFileSync(goldenPath, out);
      const golden = readFileSync(goldenPath);
      expect(out.toString('latin1')).toBe(golden.toString('latin1'));
      expect(out.equals(golden)).toBe(true);

      // the body is untouched: sha256 of everything after the header block, in and out
      expect(sha256(splitHeader(out).rest)).toBe(sha256(splitHeader(input).rest));

      expect(envelope).toEqual({ mailFrom: 'noreply@corp.example', rcptTo: ['to@corp.example', 'audit@corp.example', 'archive@corp.example'] });
    });
  }
});
