import { fileURLToPath } from 'node:url';
import { afterEach, describe, it, expect } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { createOAuth2TokenSource } from '../../../src/delivery/credentials/oauth2.js';
import { createUndiciNetworkClient } from '../../../src/delivery/credentials/msal-network.js';
import { TokenCache } from '../../../src/delivery/credentials/token-cache.js';
import { TokenStatusBoard } from '../../../src/delivery/credentials/token-status.js';
import { startLocalConnectProxy, type ConnectProxy } from '../../helpers/connect-proxy.js';
import { startFakeTokenEndpoint, tlsFixture } from '../../helpers/fake-token-endpoint.js';
import { OAuth2AuthForTest, capturedLogger } from './support.js';

const SECRET = 'proxy~test.Secret_0123456789';
const CA_PATH = fileURLToPath(new URL('../../fixtures/tls/ca.pem', import.meta.url));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startConnectProxy(): Promise<ConnectProxy> {
  const proxy = await startLocalConnectProxy();
  cleanups.push(() => proxy.close());
  return proxy;
}

describe(createUndiciNetworkClient.name, () => {
  it('reaches the token endpoint through an HTTP CONNECT proxy, trusting the private CA', async () => {
    const proxy = await startConnectProxy();
    const fake = await startFakeTokenEndpoint({ clientSecret: SECRET });
    cleanups.push(() => fake.close());
    const client = createUndiciNetworkClient({ proxyUrl: proxy.url, ca: tlsFixture('ca.pem') });
    cleanups.push(() => client.close());
    const response = await client.sendPostRequestAsync<Record<string, unknown>>(`${fake.authority}/${fake.tenantId}/oauth2/v2.0/token`, {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded;charset=utf-8' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: fake.clientId, scope: fake.scope, client_secret: SECRET }).toString(),
    });
    expect(response.status).toBe(200);
    expect(typeof response.body.access_token).toBe('string');
    expect(proxy.connects).toEqual([`localhost:${fake.port}`]);
  });

  it('answers GET with status and parsed JSON body', async () => {
    const fake = await startFakeTokenEndpoint({});
    cleanups.push(() => fake.close());
    const client = createUndiciNetworkClient({ ca: tlsFixture('ca.pem') });
    cleanups.push(() => client.close());
    const response = await client.sendGetRequestAsync<Record<string, unknown>>(`${fake.authority}/${fake.tenantId}/v2.0/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
    expect(response.body.token_endpoint).toBe(`${fake.authority}/${fake.tenantId}/oauth2/v2.0/token`);
  });

  it('a refused connection is an msal network_error that carries neither the proxy credentials nor the body', async () => {
    const fake = await startFakeTokenEndpoint({});
    await fake.close();
    const client = createUndiciNetworkClient({ ca: tlsFixture('ca.pem'), timeoutMs: 2000 });
    cleanups.push(() => client.close());
    const error = (await client
      .sendPostRequestAsync(`${fake.authority}/t/oauth2/v2.0/token?x=1`, { body: `client_secret=${SECRET}` })
      .catch((e: unknown) => e)) as Error & { errorCode?: string };
    expect(error.errorCode).toBe('network_error');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain('x=1');
  });
});

describe('createOAuth2TokenSource network wiring', () => {
  it('builds its own undici client from upstream.proxy and auth.tokenCa (a CA file path)', async () => {
    const proxy = await startConnectProxy();
    const clock = new ManualClock(Date.now());
    const fake = await startFakeTokenEndpoint({ clientSecret: SECRET, now: () => clock.now() });
    cleanups.push(() => fake.close());
    const { logger } = capturedLogger();
    const tokens = createOAuth2TokenSource('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), tokenCa: CA_PATH }, {
      cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), proxy: proxy.url,
    });
    cleanups.push(() => tokens.close());
    const token = await tokens.getToken();
    expect(fake.isValid(token.accessToken)).toBe(true);
    expect(proxy.connects).toEqual([`localhost:${fake.port}`]);
    expect(fake.getRequests).toBe(0);
  });

  it('an unreadable tokenCa is a config error at creation', () => {
    const clock = new ManualClock();
    const { logger } = capturedLogger();
    const fakeLike = { authority: 'https://localhost:1', tenantId: 't', clientId: 'c', scope: 's/.default' };
    expect(() =>
      createOAuth2TokenSource('m365', { ...OAuth2AuthForTest(fakeLike, { clientSecret: SECRET }), tokenCa: '/nonexistent/ca.pem' }, {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(),
      }),
    ).toThrow(expect.objectContaining({ code: 'E_CONFIG' }));
  });
});
