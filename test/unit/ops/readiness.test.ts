import { describe, expect, it } from 'vitest';
import { buildReadiness, createReadinessCheck } from '../../../src/ops/readiness.js';

const up = (name: string) => ({ name, up: true });
const down = (name: string) => ({ name, up: false });

describe(buildReadiness.name, () => {
  it('is ready when listening, the spool is writable and an upstream is up', () => {
    const report = buildReadiness({ listening: true, spoolWritable: true, upstreams: [down('primary'), up('secondary')] });
    expect(report.ready).toBe(true);
    expect(report.checks).toEqual({
      listener: { ok: true },
      spool: { ok: true },
      upstreams: { ok: true, up: ['secondary'], down: ['primary'] },
      tokens: { failing: [], certificateWarnings: [] },
    });
  });

  it('is not ready when the SMTP listener is not bound', () => {
    const report = buildReadiness({ listening: false, spoolWritable: true, upstreams: [up('primary')] });
    expect(report.ready).toBe(false);
    expect(report.checks.listener.ok).toBe(false);
  });

  it('is not ready when the spool is not writable', () => {
    const report = buildReadiness({ listening: true, spoolWritable: false, upstreams: [up('primary')] });
    expect(report.ready).toBe(false);
    expect(report.checks.spool.ok).toBe(false);
  });

  it('is not ready when every upstream of the default route is down', () => {
    const report = buildReadiness({ listening: true, spoolWritable: true, upstreams: [down('primary'), down('secondary')] });
    expect(report.ready).toBe(false);
    expect(report.checks.upstreams).toEqual({ ok: false, up: [], down: ['primary', 'secondary'] });
  });

  it('counts the outbox (no upstream configured) as up', () => {
    expect(buildReadiness({ listening: true, spoolWritable: true, upstreams: [] }).ready).toBe(true);
    expect(buildReadiness({ listening: true, spoolWritable: true, upstreams: [up('outbox')] }).ready).toBe(true);
  });

  it('reports token failures and certificate warnings without deciding readiness on them', () => {
    const report = buildReadiness({
      listening: true,
      spoolWritable: true,
      upstreams: [up('primary')],
      tokens: [
        { upstream: 'primary', lastError: 'token endpoint said no' },
        { upstream: 'backup', lastError: undefined, certificateWarning: 'expires in 5 days' },
      ],
    });
    expect(report.ready).toBe(true);
    expect(report.checks.tokens).toEqual({ failing: ['primary'], certificateWarnings: ['backup'] });
    expect(JSON.stringify(report)).not.toContain('token endpoint said no');
  });
});

describe(createReadinessCheck.name, () => {
  it('gathers the facts from its sources', async () => {
    const check = createReadinessCheck({
      isListening: () => true,
      probeSpoolWritable: async () => true,
      upstreams: () => [up('primary')],
      tokens: () => [],
    });
    expect((await check()).ready).toBe(true);
  });

  it('treats a spool probe that throws as not writable', async () => {
    const check = createReadinessCheck({
      isListening: () => true,
      probeSpoolWritable: async () => {
        throw new Error('EIO');
      },
      upstreams: () => [up('primary')],
    });
    const report = await check();
    expect(report.ready).toBe(false);
    expect(report.checks.spool.ok).toBe(false);
  });
});
