import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { ManualClock } from '../../../src/core/clock.js';
import { isRelayError } from '../../../src/core/errors.js';
import type { VerifyStep } from '../../../src/core/ports.js';
import { classifyError } from '../../../src/delivery/classify.js';
import { buildUpstreamSet, OUTBOX, TRANSPORTS } from '../../../src/delivery/upstream-set.js';

const deps = { clock: new ManualClock(), logger: pino({ enabled: false }) };
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const smtp = (name: string, extra: Record<string, unknown> = {}) => ({ name, host: '127.0.0.1', port: 2525, security: 'none', ...extra });

describe(buildUpstreamSet.name, () => {
  it('builds the outbox when no upstream is configured', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-set-'));
    dirs.push(dir);
    const set = buildUpstreamSet(parseConfig({ delivery: { outboxDir: join(dir, 'out') } }), deps);
    expect(set.names).toEqual([OUTBOX]);
    const steps: VerifyStep[] = [];
    expect(await set.get(OUTBOX)?.transport.verify((s) => steps.push(s))).toEqual(steps);
    expect(steps).toEqual([{ step: 'outbox', status: 'ok', detail: expect.stringContaining(join(dir, 'out')) }]);
    await set.close();
  });

  it('builds every upstream in configured order with its own settings', async () => {
    const config = parseConfig({
      upstreams: [smtp('primary', { from: 'relay@corp.test', maxMessagesPerMinute: 30, limits: { maxAttachments: 2 } }), smtp('backup')],
    });
    const set = buildUpstreamSet(config, deps);
    expect(set.names).toEqual(['primary', 'backup']);
    expect(set.get('primary')?.settings).toEqual({ from: 'relay@corp.test', maxMessagesPerMinute: 30, limits: { maxAttachments: 2 } });
    expect(set.get('backup')?.settings).toEqual({ from: undefined, maxMessagesPerMinute: undefined, limits: undefined });
    expect(set.get('primary')?.transport.name).toBe('primary');
    expect(set.get('nope')).toBeUndefined();
    await set.close();
  });

  it('has a transport for every protocol (the smtp default included)', () => {
    const config = parseConfig({ upstreams: [smtp('primary')] });
    expect(config.upstreams[0]?.protocol).toBe('smtp');
    expect(Object.keys(TRANSPORTS)).toContain('smtp');
  });

  it('refuses a config whose upstream cannot be built (the relay), or keeps it as a broken upstream (the CLI checks)', async () => {
    const config = parseConfig({ upstreams: [smtp('primary', { tls: { ca: '/nonexistent/ca.pem' } }), smtp('backup')] });
    expect(() => buildUpstreamSet(config, deps)).toThrow(/cannot read tls\.ca file \/nonexistent\/ca\.pem/);

    const set = buildUpstreamSet(config, { ...deps, tolerateBroken: true });
    expect(set.names).toEqual(['primary', 'backup']);
    const broken = set.get('primary')!.transport;
    expect(await broken.verify()).toEqual([{ step: 'config', status: 'failed', detail: expect.stringMatching(/cannot read tls\.ca/) }]);
    const err = await broken.send({ qid: 'Q1', envelope: { mailFrom: '', rcptTo: ['a@b.test'] }, raw: Buffer.from('x'), sizeBytes: 1 }).catch((e: unknown) => e);
    expect(isRelayError(err) && err.code).toBe('E_CONFIG');
    // send-test and the attempt loop move on to the next upstream
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    await set.close();
  });
});
