/**
 * Routing decisions without sockets: the catch-all route ("*"), the default route when there is
 * none, the config rules that keep patterns matchable, and validate's routing advice.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { configSchema } from '../../../src/config/schema.js';
import { planRoutes, routingWarnings } from '../../../src/routing/route.js';
import { captureIo } from '../../integration/cli/support.js';

const ALL = ['mail1', 'mail2', 'sms1', 'sms2'];
const up = () => false;

/** OpCon: SMS may fall back to the email servers, email never goes to the SMS servers. */
const OPCON = [
  { recipients: ['*@sms.test'], upstreams: ['sms1', 'sms2', 'mail1', 'mail2'] },
  { recipients: ['*'], upstreams: ['mail1', 'mail2'] },
];

describe(planRoutes.name, () => {
  it('gives recipients that match no route only the catch-all route\'s upstreams', () => {
    const groups = planRoutes(['alice@dest.test', '0170@sms.test'], OPCON, ALL, up);
    expect(groups).toEqual([
      { recipients: ['alice@dest.test'], routeIndex: 1, upstreams: ['mail1', 'mail2'] },
      { recipients: ['0170@sms.test'], routeIndex: 0, upstreams: ['sms1', 'sms2', 'mail1', 'mail2'] },
    ]);
  });

  it('keeps the catch-all for the unmatched even when it is listed first', () => {
    const groups = planRoutes(['0170@sms.test', 'bob@dest.test'], [OPCON[1]!, OPCON[0]!], ALL, up);
    expect(groups.map((g) => [g.recipients, g.upstreams])).toEqual([
      [['0170@sms.test'], ['sms1', 'sms2', 'mail1', 'mail2']],
      [['bob@dest.test'], ['mail1', 'mail2']],
    ]);
  });

  it('with every catch-all upstream down still tries only those (down ones last, all tried)', () => {
    const groups = planRoutes(['alice@dest.test'], OPCON, ALL, (u) => u.startsWith('mail'));
    expect(groups[0]!.upstreams).toEqual(['mail1', 'mail2']);
  });

  it('without a catch-all, unmatched recipients use every upstream in order', () => {
    const groups = planRoutes(['alice@dest.test'], [OPCON[0]!], ALL, up);
    expect(groups).toEqual([{ recipients: ['alice@dest.test'], routeIndex: -1, upstreams: ALL }]);
  });
});

describe('route patterns in the config', () => {
  const upstreams = ALL.map((name) => ({ name, host: '127.0.0.1' }));
  const problems = (routes: unknown) => {
    const r = configSchema.safeParse({ upstreams, routes });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts the catch-all and the three pattern forms', () => {
    expect(problems([{ recipients: ['*@sms.test', '*@*.sms.test', 'pager@dest.test'], upstreams: ['sms1'] }, { recipients: ['*'], upstreams: ['mail1'] }])).toEqual([]);
  });

  it.each(['*@*', '*@*.', 'a*@dest.test', '*@sms.*', '*@*.*.test'])('refuses %s, which can never match, and names the forms that do', (pattern) => {
    const found = problems([{ recipients: [pattern], upstreams: ['sms1'] }]);
    expect(found).toEqual([expect.stringMatching(/^routes\.0\.recipients\.0: .*can never match.*"\*" alone/)]);
  });

  it('refuses "*" mixed with other patterns, and a second catch-all', () => {
    expect(problems([{ recipients: ['*', '*@sms.test'], upstreams: ['sms1'] }])).toEqual([expect.stringMatching(/^routes\.0\.recipients: "\*" \(the catch-all\) must be the only pattern/)]);
    expect(problems([{ recipients: ['*'], upstreams: ['sms1'] }, { recipients: ['*'], upstreams: ['mail1'] }])).toEqual([
      expect.stringMatching(/^routes\.1\.recipients: only one catch-all route/),
    ]);
  });

  it('refuses "*" alone as an allowed sender (it is a route pattern only)', () => {
    const r = configSchema.safeParse({ message: { allowedSenders: ['*'] } });
    expect(r.success).toBe(false);
  });
});

describe(routingWarnings.name, () => {
  it('warns, per route, that its upstreams also carry unrouted mail when there is no catch-all', () => {
    expect(routingWarnings([OPCON[0]!])).toEqual([
      { path: 'routes[0].upstreams', message: expect.stringContaining('"sms1", "sms2", "mail1", "mail2" also carry mail whose recipients match no route') },
    ]);
    expect(routingWarnings(OPCON)).toEqual([]);
    expect(routingWarnings([])).toEqual([]);
  });

  it('is printed by validate, which still exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-routes-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ upstreams: ALL.map((name) => ({ name, host: '127.0.0.1' })), routes: [OPCON[0]] }));
    const io = captureIo();
    expect(await validateCommand({ config: path, connect: false }, io)).toBe(0);
    expect(io.out()).toMatch(/^warning: routes\[0\]\.upstreams: "sms1", "sms2", "mail1", "mail2" also carry mail whose recipients match no route/m);
    await writeFile(path, JSON.stringify({ upstreams: ALL.map((name) => ({ name, host: '127.0.0.1' })), routes: OPCON }));
    const quiet = captureIo();
    expect(await validateCommand({ config: path, connect: false }, quiet)).toBe(0);
    expect(quiet.out()).not.toMatch(/warning/);
  });
});
