import { X509Certificate, createHash } from 'node:crypto';
import { afterEach, describe, it, expect } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { RelayError } from '../../../src/core/errors.js';
import { OAuth2AuthForTest, capturedLogger } from './support.js';
import type { OAuth2Auth } from '../../../src/config/schema.js';
import { createOAuth2TokenSource, type OAuth2Deps, type OAuth2TokenSource } from '../../../src/delivery/credentials/oauth2.js';
import { createUndiciNetworkClient, type ClosableNetworkModule } from '../../../src/delivery/credentials/msal-network.js';
import { TokenCache } from '../../../src/delivery/credentials/token-cache.js';
import { TokenStatusBoard } from '../../../src/delivery/credentials/token-status.js';
import { startFakeTokenEndpoint, tlsFixture, type FakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { until } from '../../helpers/wait.js';

const SECRET = 'Zq8~fake.Secret-Value_0123456789abcdefXYZ';
const APP_CERT = tlsFixture('app.pem');
const APP_KEY = tlsFixture('app.key');
const APP_THUMBPRINT = createHash('sha256').update(new X509Certificate(APP_CERT).raw).digest('hex');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function endpoint(clock: ManualClock, https = true): Promise<FakeTokenEndpoint> {
  const fake = await startFakeTokenEndpoint({ https, clientSecret: SECRET, certificate: { certificatePem: APP_CERT }, now: () => clock.now() });
  cleanups.push(() => fake.close());
  return fake;
}

function source(name: string, auth: OAuth2Auth, deps: OAuth2Deps): OAuth2TokenSource {
  const created = createOAuth2TokenSource(name, auth, deps);
  cleanups.push(() => created.close());
  return created;
}

function network(ca?: string): ClosableNetworkModule {
  const client = createUndiciNetworkClient(ca === undefined ? {} : { ca });
  cleanups.push(() => client.close());
  return client;
}

describe(createOAuth2TokenSource.name, () => {
  describe('over HTTPS to a local fake authority (knownAuthorities + undici client trusting the test CA)', () => {
    it('gets a token with a client secret, one POST and no metadata GET', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger, text } = capturedLogger();
      const status = new TokenStatusBoard();
      const tokens = source('m365', OAuth2AuthForTest(fake, { clientSecret: SECRET }), {
        cache: new TokenCache({ clock }), clock, logger, status, networkClient: network(tlsFixture('ca.pem')),
      });
      const token = await tokens.getToken();
      expect(fake.isValid(token.accessToken, clock.now())).toBe(true);
      expect(token.expiresOnMs).toBeGreaterThan(clock.now() + 3500_000);
      expect(fake.requests).toBe(1);
      expect(fake.getRequests).toBe(0);
      expect(fake.tokenRequests[0]?.form).toMatchObject({ grant_type: 'client_credentials', scope: 'https://outlook.office365.com/.default' });
      expect(status.get('m365')).toMatchObject({ fetches: 1, lastError: undefined });
      expect(text()).toContain('token.fetched');
      expect(text()).not.toContain(token.accessToken);
      expect(text()).not.toContain(SECRET);
    });

    it('gets a token with a client certificate: the fake verifies the PS256 assertion, x5t#S256 and aud', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger, text } = capturedLogger();
      const tokens = source('m365', OAuth2AuthForTest(fake, { clientCertificate: { thumbprintSha256: APP_THUMBPRINT, privateKey: APP_KEY, x5c: APP_CERT } }), {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: network(tlsFixture('ca.pem')),
      });
      const token = await tokens.getToken();
      expect(fake.isValid(token.accessToken, clock.now())).toBe(true);
      const request = fake.tokenRequests[0];
      expect(request?.status).toBe(200);
      expect(request?.form.client_secret).toBeUndefined();
      expect(request?.assertionHeader).toMatchObject({ alg: 'PS256' });
      expect(text()).not.toContain('PRIVATE KEY');
      expect(text()).not.toContain(APP_KEY.split('\n')[1]);
    });

    it('a wrong certificate thumbprint is refused by the fake with AADSTS700027', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger } = capturedLogger();
      const tokens = source('m365', OAuth2AuthForTest(fake, { clientCertificate: { thumbprintSha256: 'ab'.repeat(32), privateKey: APP_KEY } }), {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: network(tlsFixture('ca.pem')),
      });
      await expect(tokens.getToken()).rejects.toThrow(/AADSTS700027/);
    });

    it('without the test CA the TLS handshake fails and the error says where to look', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger } = capturedLogger();
      const tokens = source('m365', OAuth2AuthForTest(fake, { clientSecret: SECRET }), {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: network(),
      });
      const error = (await tokens.getToken().catch((e: unknown) => e)) as RelayError;
      expect(error.code).toBe('E_TOKEN');
      expect(error.message).toMatch(/tokenCa/);
      expect(JSON.stringify({ message: error.message, cause: String(error.cause) })).not.toContain(SECRET);
    });

    it('a token endpoint that is down gives E_TOKEN (transient), with the failure on the status board', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      await fake.down();
      const { logger } = capturedLogger();
      const status = new TokenStatusBoard();
      const tokens = source('m365', OAuth2AuthForTest(fake, { clientSecret: SECRET }), {
        cache: new TokenCache({ clock }), clock, logger, status, networkClient: network(tlsFixture('ca.pem')),
      });
      const error = (await tokens.getToken().catch((e: unknown) => e)) as RelayError;
      expect(error).toBeInstanceOf(RelayError);
      expect(error.transient).toBe(true);
      expect(status.get('m365')?.lastError).toMatch(/could not be reached|ECONNREFUSED/);
    });
  });

  describe('in-process with the real Microsoft authority (no socket at all)', () => {
    it('uses https://login.microsoftonline.com/<tenant> without opening a socket', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger } = capturedLogger();
      const tokens = source('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' }, {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
      });
      const token = await tokens.getToken();
      expect(fake.isValid(token.accessToken)).toBe(true);
      expect(fake.inProcessRequests).toBe(1);
      expect(fake.requests).toBe(0);
      expect(fake.getRequests).toBe(0);
    });

    it('client certificate through the in-process client: aud is the real Microsoft token endpoint', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger } = capturedLogger();
      const tokens = source('m365', {
        ...OAuth2AuthForTest(fake, { clientCertificate: { thumbprintSha256: APP_THUMBPRINT.toUpperCase(), privateKey: APP_KEY, x5c: APP_CERT } }),
        authority: 'https://login.microsoftonline.com',
      }, { cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient() });
      const token = await tokens.getToken();
      expect(fake.isValid(token.accessToken)).toBe(true);
      expect(fake.requests).toBe(0);
    });

    it('one request per lifetime through msal (skipCache, our cache coalesces 50 concurrent callers)', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger } = capturedLogger();
      const tokens = source('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' }, {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
      });
      const all = await Promise.all(Array.from({ length: 50 }, () => tokens.getToken()));
      expect(new Set(all.map((t) => t.accessToken)).size).toBe(1);
      expect(fake.inProcessRequests).toBe(1);
      const forced = await tokens.getToken({ forceRefresh: true });
      expect(forced.accessToken).not.toBe(all[0]?.accessToken);
      expect(fake.inProcessRequests).toBe(2);
    });

    it('refreshes in the background inside the margin: msal is asked again (skipCache) and the new token follows', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger } = capturedLogger();
      const tokens = source('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' }, {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
      });
      const first = await tokens.getToken();
      clock.advance(3600_000 - 300_000);
      expect((await tokens.getToken()).accessToken).toBe(first.accessToken);
      await until('the background refresh asks msal for a second token', () => fake.issuedTokens.length >= 2, 1000, 5);
      await new Promise((resolve) => setImmediate(resolve));
      const next = await tokens.getToken();
      expect(next.accessToken).not.toBe(first.accessToken);
      expect(fake.inProcessRequests).toBe(2);
    });

    it('a wrong client secret gives E_TOKEN naming AADSTS7000215 and what to fix, and the secret is nowhere', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger, text } = capturedLogger();
      const wrongSecret = 'wrong-Secret~value_987654321';
      const status = new TokenStatusBoard();
      const tokens = source('m365', { ...OAuth2AuthForTest(fake, { clientSecret: wrongSecret }), authority: 'https://login.microsoftonline.com' }, {
        cache: new TokenCache({ clock }), clock, logger, status, networkClient: fake.asNetworkClient(),
      });
      const error = (await tokens.getToken().catch((e: unknown) => e)) as RelayError;
      expect(error).toBeInstanceOf(RelayError);
      expect(error.code).toBe('E_TOKEN');
      expect(error.message).toContain('AADSTS7000215');
      expect(error.message).toMatch(/secret VALUE/);
      const everything = JSON.stringify({ message: error.message, stack: error.stack, cause: error.cause, causeText: String(error.cause), causeStack: (error.cause as Error).stack });
      expect(everything).toContain('7000215');
      expect(everything).not.toContain(wrongSecret);
      expect(text()).toContain('token.failed');
      expect(text()).not.toContain(wrongSecret);
      expect(status.get('m365')?.lastError).toContain('AADSTS7000215');
      // the public SMTP reply says nothing about Entra
      expect(error.smtpReply.text).not.toContain('AADSTS');
    });

    it('an unknown tenant gives AADSTS90002 with a hint about tenantId', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger } = capturedLogger();
      const tokens = source('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), tenantId: 'no-such-tenant', authority: 'https://login.microsoftonline.com' }, {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
      });
      await expect(tokens.getToken()).rejects.toThrow(/AADSTS90002.*tenantId/);
    });

    it('a scripted Entra failure (expired secret) names AADSTS7000222', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      fake.setFailure({ status: 401, error: 'invalid_client', description: 'AADSTS7000222: The provided client secret keys for app are expired.', errorCodes: [7000222], times: 1 });
      const { logger } = capturedLogger();
      const tokens = source('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' }, {
        cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
      });
      await expect(tokens.getToken()).rejects.toThrow(/AADSTS7000222.*expired/);
      const token = await tokens.getToken();
      expect(fake.isValid(token.accessToken)).toBe(true);
    });

    it('never logs the client secret, the private key or any issued access token across a run', async () => {
      const clock = new ManualClock(Date.now());
      const fake = await endpoint(clock);
      const { logger, text } = capturedLogger();
      const cache = new TokenCache({ clock });
      const status = new TokenStatusBoard();
      const base = { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' };
      const bySecret = source('secret-upstream', base, { cache, clock, logger, status, networkClient: fake.asNetworkClient() });
      const byCert = source('cert-upstream', {
        ...OAuth2AuthForTest(fake, { clientCertificate: { thumbprintSha256: APP_THUMBPRINT, privateKey: APP_KEY, x5c: APP_CERT } }),
        authority: 'https://login.microsoftonline.com',
        scope: fake.scope,
        refreshBeforeExpirySeconds: 60,
      }, { cache: new TokenCache({ clock }), clock, logger, status, networkClient: fake.asNetworkClient() });
      await bySecret.getToken();
      await bySecret.getToken({ forceRefresh: true });
      await byCert.getToken();
      fake.setFailure({ status: 500, error: 'temporarily_unavailable', description: 'AADSTS50001: service busy', errorCodes: [50001], times: 1 });
      await byCert.getToken({ forceRefresh: true }).catch(() => undefined);
      const logged = text();
      expect(logged).toContain('token.fetched');
      expect(logged).toContain('token.failed');
      expect(fake.issuedTokens.length).toBe(3);
      for (const token of fake.issuedTokens) expect(logged).not.toContain(token);
      expect(logged).not.toContain(SECRET);
      for (const line of APP_KEY.split('\n').filter((l) => l.length > 20)) expect(logged).not.toContain(line);
      expect(JSON.stringify(status.snapshot())).not.toContain(SECRET);
    });
  });
});
