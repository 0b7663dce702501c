/**
 * The one-way data flow, enforced: a stage imports only core/, config/ (types and schema) and
 * its own folder; only the conductors (intake/receive.ts, delivery/dispatch.ts) wire stages.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(process.cwd(), 'src');
const STAGES = ['intake', 'message', 'policies', 'spool', 'routing', 'delivery', 'outcome', 'notify'];
const CONDUCTORS = new Set(['intake/receive.ts', 'delivery/dispatch.ts', 'delivery/attempt.ts']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.ts') ? [path] : [];
  });
}

describe('stage imports', () => {
  it('no stage reaches into another stage except through a conductor', () => {
    const violations: string[] = [];
    for (const stage of STAGES) {
      for (const file of files(join(SRC, stage))) {
        const rel = relative(SRC, file);
        if (CONDUCTORS.has(rel)) continue;
        for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
          const target = relative(SRC, join(file, '..', spec!));
          const top = target.split('/')[0]!;
          if (top === 'core' || top === 'config' || top === stage) continue;
          violations.push(`${rel} imports ${target}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
