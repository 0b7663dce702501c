/**
 * Oracle Argus Safety's "Server Token URL": the admin pastes the full token URL into
 * auth.authority. Tokens must then be requested from exactly that URL (the fake Entra endpoint
 * answers 404 to any other path), mail goes through a fake Exchange that accepts only tokens
 * that endpoint issued, and `validate` says how it read the value.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { startFakeExchange } from '../../helpers/fake-exchange.js';
import { startFakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { TLS_PATHS } from '../../helpers/tls.js';
import { captureIo } from '../cli/support.js';
import { Cleanup, relayWith, send } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const SECRET = 'argus-S3cret~value';
const MAILBOX = 'argus@contoso.test';

describe('auth.authority given as the full token URL (Argus "Server Token URL")', () => {
  it('requests tokens from that URL and delivers', async () => {
    const ep = cleanup.add(await startFakeTokenEndpoint({ clientSecret: SECRET }), (e) => e.close());
    const exchange = cleanup.add(await startFakeExchange({ isValid: (t) => ep.isValid(t), user: MAILBOX }), (e) => e.close());
    const tokenUrl = `${ep.authority}/${ep.tenantId}/oauth2/v2.0/token`;
    const m365 = {
      name: 'm365',
      host: '127.0.0.1',
      port: exchange.port,
      security: 'starttls-required',
      tls: { ca: TLS_PATHS.ca },
      timeouts: { connectSeconds: 2, greetingSeconds: 2 },
      auth: { type: 'oauth2', user: MAILBOX, tenantId: ep.tenantId, clientId: ep.clientId, clientSecret: SECRET, authority: tokenUrl, scope: ep.scope, tokenCa: TLS_PATHS.ca },
    };
    const relay = cleanup.add(await relayWith([m365], { delivery: { waitSeconds: 10 } }), (r) => r.stop());
    const reply = await send(relay.port, { to: 'safety@dest.test' });
    expect(reply.response).toMatch(/^250 2\.0\.0 Ok: delivered/);
    expect(exchange.messages.map((m) => m.rcptTo)).toEqual([['safety@dest.test']]);
    expect(ep.tokenRequests.map((r) => [r.via, r.tenant, r.status])).toEqual([['socket', ep.tenantId, 200]]);

    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-argus-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ upstreams: [m365] }));
    const io = captureIo();
    expect(await validateCommand({ config: path, connect: false }, io)).toBe(0);
    expect(io.out()).toContain(`note: upstreams[0].auth.authority: understood as a full token URL: authority ${ep.authority}, tokens from ${tokenUrl}`);
  });
});
