/**
 * A relay configured by environment variables alone, as a container without a config file
 * runs it: the built `smtp-sidecar start` with the default config path (which does not exist),
 * SMTP_SIDECAR_* variables for the listener, the spool, the policy and the upstream; a message
 * submitted with the sendmail command reaches the upstream with the policy applied.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_PATH } from '../../../src/config/load.js';
import { startFakeUpstream, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { BUILT_MAIN, ensureBuilt, startRelayProcess, type RelayProcess } from '../../helpers/relay-process.js';

const hasDefaultFile = existsSync(DEFAULT_CONFIG_PATH);
if (hasDefaultFile) console.warn(`env-only relay test skipped: ${DEFAULT_CONFIG_PATH} exists on this machine, so the relay would read it`);

let relay: RelayProcess | undefined;
let up: FakeUpstream | undefined;
let dir: string | undefined;
afterEach(async () => {
  await relay?.kill('SIGTERM').catch(() => relay?.kill('SIGKILL'));
  await up?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  relay = up = dir = undefined;
});

describe('configuration from the environment alone', () => {
  it.skipIf(hasDefaultFile)('starts a relay with no config file and delivers through the upstream the variables name', async () => {
    await ensureBuilt();
    up = await startFakeUpstream({ tls: 'none' });
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-env-only-'));
    const env: NodeJS.ProcessEnv = {
      PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
      SMTP_SIDECAR_LISTEN__PORT: '0',
      SMTP_SIDECAR_LISTEN__HOSTNAME: 'relay.env.test',
      SMTP_SIDECAR_LISTEN__ALLOWED_CLIENTS: '127.0.0.0/8,::1/128',
      SMTP_SIDECAR_HTTP__ENABLED: 'false',
      SMTP_SIDECAR_DELIVERY__SPOOL_DIR: join(dir, 'spool'),
      SMTP_SIDECAR_DELIVERY__WAIT_SECONDS: '5',
      SMTP_SIDECAR_DELIVERY__FSYNC: 'false',
      SMTP_SIDECAR_MESSAGE__GLOBAL_FROM: 'noreply@corp.test',
      SMTP_SIDECAR_UPSTREAMS__0__NAME: 'primary',
      SMTP_SIDECAR_UPSTREAMS__0__HOST: '127.0.0.1',
      SMTP_SIDECAR_UPSTREAMS__0__PORT: String(up.port),
      SMTP_SIDECAR_UPSTREAMS__0__SECURITY: 'none',
    };
    // the default path, as the image's CMD names it; there is no file there
    relay = await startRelayProcess({ configPath: DEFAULT_CONFIG_PATH, cwd: dir, env });
    expect(relay.logs.events('listening')[0]).toMatchObject({ port: relay.port });

    const sent = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(BUILT_MAIN, ['sendmail', '-t', '-i'], { env: { ...env, SMTP_SIDECAR_RELAY: `127.0.0.1:${relay!.port}` }, stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
      child.stdin.end('From: App <app@legacy.test>\nTo: ops@dest.test\nSubject: env only\n\nno config file\n');
    });
    expect(sent).toEqual({ code: 0, stderr: '' });
    const [received] = await up.waitForMessages(1);
    expect(received!.envelope).toMatchObject({ mailFrom: 'noreply@corp.test', rcptTo: ['ops@dest.test'] });
    expect(received!.raw.toString()).toMatch(/^From: App <noreply@corp\.test>\r$/m);
    expect(received!.raw.toString()).toMatch(/^Message-ID: <[^>]+@relay\.env\.test>\r$/m);
    expect(existsSync(join(dir, 'spool'))).toBe(true);
  });
});
