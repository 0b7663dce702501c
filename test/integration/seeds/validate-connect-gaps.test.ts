/**
 * validate --connect fails where delivery would, and says what to change: a server that wants
 * AUTH when none is configured (MAIL FROM gets 530), a plaintext server with the default
 * "starttls-required" (the fix is "none" or "starttls", not implicit TLS), and a server that
 * demands a client certificate none is configured for. Real fake upstreams on 127.0.0.1.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { connectCheck } from '../../../src/cli/validate-connect.js';
import { startFakeUpstream } from '../../helpers/fake-upstream.js';
import { TLS_PATHS } from '../../helpers/tls.js';
import { captureIo } from '../cli/support.js';
import { Cleanup, upstream } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function validate(entry: Record<string, unknown>): Promise<{ code: number; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-vc-'));
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify({ upstreams: [entry] }));
  const io = captureIo();
  const code = await validateCommand({ config: path, connect: true }, io, connectCheck());
  return { code, out: io.out() };
}

describe('validate --connect gaps', () => {
  it('fails against a server that requires AUTH when no auth is configured', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none', auth: { methods: ['PLAIN', 'LOGIN'], users: { relay: 'pw-123456' } } }), (u) => u.close());
    const { code, out } = await validate(upstream('needs-auth', up.port));
    expect(code).toBe(1);
    expect(out).toMatch(/needs-auth\s+mail\s+failed\s+MAIL FROM refused: 530 .*the server requires authentication: configure auth/);

    const open = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const ok = await validate(upstream('open-relay', open.port));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/open-relay\s+mail\s+ok\s+MAIL FROM accepted without AUTH/);
    expect(open.messages).toHaveLength(0);
  });

  it('suggests "none" or "starttls" (not implicit TLS) for a plaintext server with starttls-required', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const { code, out } = await validate(upstream('port25', up.port, { security: 'starttls-required' }));
    expect(code).toBe(1);
    const tlsLine = out.split('\n').find((l) => /port25\s+tls\s+failed/.test(l)) ?? '';
    expect(tlsLine).toMatch(/set security "none" or "starttls"/);
    expect(tlsLine).not.toMatch(/set security "tls"/);
  });

  it('hints at tls.cert and tls.key when the server demands a client certificate', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'implicit', requireClientCert: true }), (u) => u.close());
    const { code, out } = await validate(upstream('mtls', up.port, { security: 'tls', tls: { ca: TLS_PATHS.ca } }));
    expect(code).toBe(1);
    expect(out).toMatch(/mtls\s+\S+\s+failed\s+.*client certificate; set tls\.cert and tls\.key/);

    const withCert = await validate(upstream('mtls', up.port, { security: 'tls', tls: { ca: TLS_PATHS.ca, cert: TLS_PATHS.clientCert, key: TLS_PATHS.clientKey } }));
    expect(withCert.code).toBe(0);
  });
});
