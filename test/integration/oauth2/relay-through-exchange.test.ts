/**
 * The whole relay with a Microsoft 365 upstream, fully offline: a fake Entra token endpoint
 * (validating the client-credentials form and the secret) and a fake Exchange that accepts
 * only tokens that endpoint issued. Proves the token economy at relay level, the 535 →
 * refresh → resend path, failover when Entra refuses, and that no secret or token is logged.
 */
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeExchange, type FakeExchange } from '../../helpers/fake-exchange.js';
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { startFakeUpstream, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { TLS_PATHS } from '../../helpers/tls.js';
import { until } from '../../helpers/wait.js';

const SECRET = 'cl1ent-S3cret-ABC~very.secret';
const BASIC_PASS = 'B4sic-Pa55-XYZ';
const MAILBOX = 'relay@contoso.test';

let endpoint: FakeTokenEndpoint | undefined;
let exchange: FakeExchange | undefined;
let backup: FakeUpstream | undefined;
let relay: TestRelay | undefined;

afterEach(async () => {
  if (relay !== undefined) {
    const logs = relay.logs.lines.join('\n');
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(BASIC_PASS);
    expect(logs).not.toContain(Buffer.from(BASIC_PASS).toString('base64'));
    for (const token of endpoint?.issuedTokens ?? []) expect(logs).not.toContain(token);
  }
  await relay?.stop();
  await exchange?.close();
  await backup?.close();
  await endpoint?.close();
  relay = exchange = backup = endpoint = undefined;
});

async function setUp(extraUpstreams: Record<string, unknown>[] = [], relayExtra: Record<string, unknown> = {}) {
  endpoint = await startFakeTokenEndpoint({ clientSecret: SECRET });
  const ep = endpoint;
  exchange = await startFakeExchange({ isValid: (t) => ep.isValid(t), user: MAILBOX });
  relay = await startRelay(
    {
      log: { trace: 'detail' },
      upstreams: [
        {
          name: 'm365',
          host: '127.0.0.1',
          port: exchange.port,
          security: 'starttls-required',
          tls: { ca: TLS_PATHS.ca },
          maxConnections: 3,
          timeouts: { connectSeconds: 2, greetingSeconds: 2 },
          auth: { type: 'oauth2', user: MAILBOX, tenantId: ep.tenantId, clientId: ep.clientId, clientSecret: SECRET, authority: ep.authority, scope: ep.scope },
        },
        ...extraUpstreams,
      ],
      ...relayExtra,
    },
    { tokenNetworkClient: ep.asNetworkClient() },
  );
  return relay;
}

async function sendMany(port: number, count: number, connections: number): Promise<void> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true, pool: true, maxConnections: connections, maxMessages: Infinity });
  try {
    const batch = Array.from({ length: count }, (_, i) => i);
    await Promise.all(batch.map((i) => client.sendMail({ from: 'erp@legacy.test', to: `user${i % 7}@dest.test`, subject: `m${i}`, text: `message ${i}` })));
  } finally {
    client.close();
  }
}

describe('relay through Exchange Online with OAuth2 (offline fakes)', () => {
  it('1,000 messages over a pool of 3 connections cost exactly one token request', async () => {
    const r = await setUp();
    await sendMany(r.port, 1000, 10);
    await until('1000 messages at the fake Exchange', () => exchange!.messages.length >= 1000, 60_000);
    expect(exchange!.messages).toHaveLength(1000);
    expect(endpoint!.tokenRequests).toHaveLength(1);
    expect(endpoint!.tokenRequests[0]!.form).toMatchObject({ grant_type: 'client_credentials', client_id: endpoint!.clientId, scope: endpoint!.scope });
    expect(exchange!.messages.every((m) => m.authUser === MAILBOX)).toBe(true);
    // XOAUTH2 only ever over TLS
    expect(exchange!.authAttempts.every((a) => a.secure && a.method === 'XOAUTH2')).toBe(true);
    expect(new Set(exchange!.authAttempts.map((a) => a.method))).toEqual(new Set(['XOAUTH2']));
  });

  it('100 concurrent first messages cost exactly one token request', async () => {
    const r = await setUp();
    await sendMany(r.port, 100, 100);
    await until('100 messages', () => exchange!.messages.length >= 100, 30_000);
    expect(endpoint!.tokenRequests).toHaveLength(1);
  });

  it('535 to a cached token: one forced refresh and one resend on the same upstream', async () => {
    const r = await setUp();
    exchange!.rejectNextAuths(1);
    await sendMany(r.port, 1, 1);
    await until('the resent message', () => exchange!.messages.length >= 1, 15_000);
    expect(endpoint!.tokenRequests).toHaveLength(2);
    expect(exchange!.authAttempts.map((a) => a.accepted)).toEqual([false, true]);
    const sent = r.logs.events('delivery').filter((l) => l.status === 'sent');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ relay: 'm365', attempt: 1 });
    expect(r.logs.events('delivery').filter((l) => l.status === 'failover')).toHaveLength(0);
  });

  it('Entra refuses the secret: the upstream counts as failing and the basic-auth secondary delivers', async () => {
    backup = await startFakeUpstream({ auth: { methods: ['PLAIN', 'LOGIN'], users: { relay: BASIC_PASS } } });
    const r = await setUp([{ name: 'backup', host: '127.0.0.1', port: backup.port, security: 'none', auth: { type: 'plain', user: 'relay', pass: BASIC_PASS, allowPlaintext: true } }]);
    endpoint!.setFailure({ status: 401, error: 'invalid_client', description: 'AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.', errorCodes: [7000215] });
    await sendMany(r.port, 1, 1);
    await backup.waitForMessages(1, 15_000);
    await r.logs.waitFor('delivery', (l) => l.relay === 'backup');
    expect(exchange!.messages).toHaveLength(0);
    const lines = r.logs.events('delivery');
    const primary = lines.find((l) => l.relay === 'm365');
    expect(primary).toMatchObject({ status: 'failover' });
    expect(JSON.stringify(primary)).toContain('AADSTS7000215');
    expect(lines.find((l) => l.relay === 'backup')).toMatchObject({ status: 'sent' });
    expect(backup.messages[0]!.authUser).toBe('relay');
  });
});
