/** The relay warns about an upstream whose certificate is not verified: once at start, and again when a reload changes it. */
import { afterEach, describe, expect, it } from 'vitest';
import { startRelay, testConfig, type TestRelay } from '../../helpers/relay.js';

const insecure = { name: 'insecure', host: '127.0.0.1', port: 1, security: 'tls', tls: { rejectUnauthorized: false } };
const other = { name: 'other', host: '127.0.0.1', port: 2, security: 'none' };

describe('upstream.tls-insecure', () => {
  let relay: TestRelay | undefined;
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
  });

  it('is logged once per insecure upstream at start, and on a reload only when that upstream changed', async () => {
    relay = await startRelay({ upstreams: [insecure, other] });
    const warnings = () => relay!.logs.events('upstream.tls-insecure').map((r) => [r['upstream'], r['level']]);
    expect(warnings()).toEqual([['insecure', 'warn']]);

    relay.app.reload(testConfig(relay.dir, { upstreams: [insecure, { ...other, port: 3 }] }));
    expect(relay.logs.events('config.changed')).toHaveLength(1);
    expect(warnings()).toEqual([['insecure', 'warn']]);

    relay.app.reload(testConfig(relay.dir, { upstreams: [{ ...insecure, port: 4 }, { ...other, port: 3 }] }));
    expect(warnings()).toEqual([['insecure', 'warn'], ['insecure', 'warn']]);
  });
});
