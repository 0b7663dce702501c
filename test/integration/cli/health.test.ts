/** `smtp-sidecar health`: the HTTP /healthz of the configured relay, or its SMTP greeting when HTTP is off. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { healthCommand } from '../../../src/cli/health.js';
import { startRefusingPort } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { captureIo } from './support.js';

let relay: TestRelay | undefined;
const dir = mkdtempSync(join(tmpdir(), 'smtp-sidecar-health-'));
afterEach(async () => {
  await relay?.stop();
  relay = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe('smtp-sidecar health', () => {
  it('with http.enabled false checks the SMTP greeting on the listen address (0.0.0.0 asked on loopback)', async () => {
    relay = await startRelay();
    const io = captureIo();
    const code = await healthCommand({ config: configFile('smtp.json', { listen: { host: '0.0.0.0', port: relay.port }, http: { enabled: false } }) }, io);
    expect(code).toBe(0);
    expect(io.out()).toMatch(new RegExp(`^healthy: SMTP 127\\.0\\.0\\.1:${relay.port} greeted with "220 `));
  });

  it('exits 1 and names the address and the config when nothing answers', async () => {
    const port = await startRefusingPort();
    const io = captureIo();
    const config = configFile('dead.json', { listen: { port }, http: { enabled: false } });
    expect(await healthCommand({ config }, io)).toBe(1);
    expect(io.out()).toBe(`not healthy: SMTP 127.0.0.1:${port} (from ${config}) does not answer (ECONNREFUSED); is the relay running?\n`);
  });

  it('reads only listen and http: upstream secrets it cannot resolve do not matter; an invalid http.port is exit 2', async () => {
    relay = await startRelay({ http: { enabled: true, port: 0 } });
    const io = captureIo();
    const config = configFile('secrets.json', {
      http: { port: relay.httpPort },
      upstreams: [{ name: 'm365', host: 'smtp.office365.com', auth: { type: 'login', user: 'u', pass: '${file:/run/secrets/not-readable-here}' } }],
    });
    expect(await healthCommand({ config }, io)).toBe(0);
    expect(io.out()).toContain(`healthy: http://127.0.0.1:${relay.httpPort}/healthz answered 200`);
    const bad = captureIo();
    expect(await healthCommand({ config: configFile('bad.json', { http: { port: 'x' } }) }, bad)).toBe(2);
    expect(bad.err()).toContain('http.port');
  });
});
