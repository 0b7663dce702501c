import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { planReload } from '../../../src/config/reload-plan.js';

const upstream = (name: string, host: string) => ({ name, host, port: 587, security: 'starttls-required', auth: { type: 'none' } });
const base = parseConfig({ upstreams: [upstream('primary', 'mail.example.com'), upstream('backup', 'backup.example.com')] });
const withChange = (change: Record<string, unknown>) => parseConfig({ upstreams: [upstream('primary', 'mail.example.com'), upstream('backup', 'backup.example.com')], ...change });

describe(planReload.name, () => {
  it('an unchanged config plans nothing', () => {
    expect(planReload(base, base)).toEqual({ changed: [], needsRestart: [], rebuildUpstreams: false, changedUpstreams: [] });
  });

  it('a listener port change waits for the next start and leaves the upstreams alone', () => {
    const plan = planReload(base, withChange({ listen: { port: 2525 } }));
    expect(plan).toMatchObject({ changed: ['listen.port'], needsRestart: ['listen.port'], rebuildUpstreams: false });
  });

  it('log.level and log.format wait for the next start; log.trace rebuilds the upstreams at once', () => {
    expect(planReload(base, withChange({ log: { level: 'debug' } }))).toMatchObject({ needsRestart: ['log.level'], rebuildUpstreams: false });
    expect(planReload(base, withChange({ log: { trace: 'detail' } }))).toMatchObject({ needsRestart: [], rebuildUpstreams: true });
  });

  it('the EHLO name rebuilds the upstream set (transports greet with it)', () => {
    expect(planReload(base, withChange({ listen: { hostname: 'relay.example.org' } }))).toMatchObject({ rebuildUpstreams: true, needsRestart: [] });
  });

  it('names the existing upstream whose settings changed, not a new one', () => {
    const next = parseConfig({ upstreams: [upstream('primary', 'mail2.example.com'), upstream('backup', 'backup.example.com'), upstream('third', 'third.example.com')] });
    const plan = planReload(base, next);
    expect(plan.rebuildUpstreams).toBe(true);
    expect(plan.changedUpstreams).toEqual(['primary']);
    expect(plan.needsRestart).toEqual([]);
  });

  it('a key that merely starts like a restart key is not one (listen.hostname is not listen.host)', () => {
    const plan = planReload(base, withChange({ listen: { hostname: 'relay.example.org' } }));
    expect(plan.changed).toEqual(['listen.hostname']);
    expect(plan.needsRestart).toEqual([]);
    expect(planReload(base, withChange({ listen: { host: '0.0.0.0' } })).needsRestart).toEqual(['listen.host']);
  });

  it('a changed secret is listed by path only', () => {
    const next = parseConfig({ upstreams: [{ ...upstream('primary', 'mail.example.com'), auth: { type: 'login', user: 'u', pass: 'hunter2' } }, upstream('backup', 'backup.example.com')] });
    const plan = planReload(base, next);
    expect(JSON.stringify(plan)).not.toContain('hunter2');
    expect(plan.changed).toContain('upstreams[0].auth.pass');
  });
});
