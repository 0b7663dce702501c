/**
 * PeopleSoft PSAPPSRV SMTP settings on real sockets: SMTPSSLProtocol as an exact or maximum TLS
 * version (tls.maxVersion), and a SASL PLAIN authorization id (auth.authzid) that a fake
 * upstream checks in what it receives (RFC 4616: authzid NUL authcid NUL passwd), in delivery
 * and in validate --connect alike.
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
import { Cleanup, deliveryLines, relayWith, send, upstream } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const PASS = 'Ps-Relay-Pa55word';

describe('SMTPSSLProtocol (tls.minVersion / tls.maxVersion)', () => {
  it('maxVersion TLSv1.2 negotiates TLS 1.2 with a server that also offers 1.3', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'starttls' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('psoft', up.port, { security: 'starttls-required', tls: { ca: TLS_PATHS.ca, maxVersion: 'TLSv1.2' } })]),
      (r) => r.stop(),
    );
    await send(relay.port, { to: 'a@dest.test' });
    const [got] = await up.waitForMessages(1);
    expect(got!.tlsProtocol).toBe('TLSv1.2');
  });

  it('exactly TLSv1.2 (min = max) fails over from a TLS 1.3-only server; the default negotiates 1.3 there', async () => {
    const only13 = cleanup.add(await startFakeUpstream({ tls: 'starttls', tlsVersions: { min: 'TLSv1.3' } }), (u) => u.close());
    const backup = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([
        upstream('psoft', only13.port, { security: 'starttls-required', tls: { ca: TLS_PATHS.ca, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } }),
        upstream('backup', backup.port),
      ]),
      (r) => r.stop(),
    );
    const { qid } = await send(relay.port, { to: 'a@dest.test' });
    await backup.waitForMessages(1);
    await relay.logs.waitFor('delivery', (l) => l['qid'] === qid && l['status'] === 'sent');
    expect(deliveryLines(relay, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['psoft', 'failover'],
      ['backup', 'sent'],
    ]);
    expect(only13.messages).toHaveLength(0);

    const relay13 = cleanup.add(await relayWith([upstream('psoft', only13.port, { security: 'starttls-required', tls: { ca: TLS_PATHS.ca } })]), (r) => r.stop());
    await send(relay13.port, { to: 'b@dest.test' });
    const [got] = await only13.waitForMessages(1);
    expect(got!.tlsProtocol).toBe('TLSv1.3');
  });
});

describe('tls.maxVersion below tls.minVersion', () => {
  it('is a config error', async () => {
    const { configSchema } = await import('../../../src/config/schema.js');
    const r = configSchema.safeParse({ upstreams: [{ name: 'x', host: 'h', tls: { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' } }] });
    expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['upstreams.0.tls.maxVersion: must not be lower than tls.minVersion']);
  });
});

describe('SASL PLAIN authorization id (auth.authzid)', () => {
  it('is sent as RFC 4616 authzid, in delivery and in validate --connect', async () => {
    const seen: { authzid: unknown; username: unknown }[] = [];
    const up = cleanup.add(
      await startFakeUpstream({
        tls: 'none',
        auth: { methods: ['PLAIN', 'LOGIN'] },
        onAuth: (credentials) => {
          const c = credentials as typeof credentials & { authzid?: string };
          seen.push({ authzid: c.authzid, username: c.username });
          return c.username === 'relay' && c.password === PASS && c.authzid === 'ps-batch@corp.test'
            ? { user: 'ps-batch@corp.test' }
            : { responseCode: 535, message: '5.7.8 Authentication credentials invalid' };
        },
      }),
      (u) => u.close(),
    );
    const psoft = upstream('psoft', up.port, { auth: { type: 'plain', user: 'relay', pass: PASS, authzid: 'ps-batch@corp.test', allowPlaintext: true } });
    const relay = cleanup.add(await relayWith([psoft]), (r) => r.stop());
    await send(relay.port, { to: 'a@dest.test' });
    const [got] = await up.waitForMessages(1);
    expect(got!.authUser).toBe('ps-batch@corp.test');
    expect(seen).toEqual([{ authzid: 'ps-batch@corp.test', username: 'relay' }]);
    expect(relay.logs.lines.join('\n')).not.toContain(PASS);

    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-psoft-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ upstreams: [psoft] }));
    const io = captureIo();
    expect(await validateCommand({ config: path, connect: true }, io, connectCheck())).toBe(0);
    expect(io.out()).toMatch(/auth.*ok.*PLAIN as relay/);
    expect(io.out()).not.toContain(PASS);
    expect(seen).toHaveLength(2);
    expect(seen[1]).toEqual({ authzid: 'ps-batch@corp.test', username: 'relay' });
  });

  it('is refused with type "login"', async () => {
    const { configSchema } = await import('../../../src/config/schema.js');
    const r = configSchema.safeParse({ upstreams: [{ name: 'x', host: 'h', auth: { type: 'login', user: 'u', pass: 'p', authzid: 'z' } }] });
    expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['upstreams.0.auth.authzid: authzid is sent with SASL PLAIN only: set type "plain"']);
  });
});
