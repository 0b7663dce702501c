import { afterEach, describe, it, expect } from 'vitest';
import nodemailer from 'nodemailer';
import { ManualClock } from '../../../src/core/clock.js';
import { createOAuth2TokenSource } from '../../../src/delivery/credentials/oauth2.js';
import { TokenCache } from '../../../src/delivery/credentials/token-cache.js';
import { TokenStatusBoard } from '../../../src/delivery/credentials/token-status.js';
import { startFakeExchange, type FakeExchange } from '../../helpers/fake-exchange.js';
import { startFakeTokenEndpoint, tlsFixture, type FakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { OAuth2AuthForTest, capturedLogger } from './support.js';

const SECRET = 'Xo~auth2.Secret_value-0123456789';
const MAILBOX = 'relay@contoso.test';
const CA = tlsFixture('ca.pem');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { failureStyle?: 'direct' | 'challenge' } = {}): Promise<{ clock: ManualClock; fake: FakeTokenEndpoint; exchange: FakeExchange }> {
  const clock = new ManualClock(Date.now());
  const fake = await startFakeTokenEndpoint({ clientSecret: SECRET, now: () => clock.now() });
  cleanups.push(() => fake.close());
  const exchange = await startFakeExchange({ isValid: (token) => fake.isValid(token, clock.now()), user: MAILBOX, ...options });
  cleanups.push(() => exchange.close());
  return { clock, fake, exchange };
}

async function send(port: number, accessToken: string, extra: Record<string, unknown> = {}) {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    forceAuth: true,
    tls: { ca: CA },
    auth: { type: 'OAuth2', user: MAILBOX, accessToken },
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 5000,
    ...extra,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  try {
    return await transport.sendMail({
      envelope: { from: MAILBOX, to: ['someone@example.test'] },
      raw: Buffer.from(`From: ${MAILBOX}\r\nTo: someone@example.test\r\nSubject: hi\r\n\r\nbody\r\n`),
    });
  } finally {
    transport.close();
  }
}

describe('XOAUTH2 against the fake Exchange Online', () => {
  it('delivers with a token from the fake endpoint (through msal and the cache)', async () => {
    const { clock, fake, exchange } = await setup();
    const { logger, text } = capturedLogger();
    const tokens = createOAuth2TokenSource('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' }, {
      cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
    });
    cleanups.push(() => tokens.close());
    const token = await tokens.getToken();
    const info = await send(exchange.port, token.accessToken);
    expect(info.accepted).toEqual(['someone@example.test']);
    expect(exchange.messages).toHaveLength(1);
    expect(exchange.messages[0]).toMatchObject({ mailFrom: MAILBOX, rcptTo: ['someone@example.test'], authUser: MAILBOX });
    expect(exchange.messages[0]?.raw.toString()).toContain('Subject: hi');
    expect(exchange.authAttempts).toEqual([{ method: 'XOAUTH2', username: MAILBOX, accepted: true, secure: true }]);
    expect(exchange.presentedTokens).toEqual([token.accessToken]);
    expect(text()).not.toContain(token.accessToken);
  });

  it('an expired token gets 535 5.7.3; forceRefresh gives a new token that is accepted', async () => {
    const { clock, fake, exchange } = await setup();
    const { logger } = capturedLogger();
    const tokens = createOAuth2TokenSource('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' }, {
      cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
    });
    cleanups.push(() => tokens.close());
    const first = await tokens.getToken();
    clock.advance(2 * 3_600_000);
    const error = (await send(exchange.port, first.accessToken).catch((e: unknown) => e)) as { code?: string; responseCode?: number; response?: string };
    expect(error.code).toBe('EAUTH');
    expect(error.responseCode).toBe(535);
    expect(error.response).toContain('5.7.3 Authentication unsuccessful');
    const renewed = await tokens.getToken({ forceRefresh: true });
    expect(renewed.accessToken).not.toBe(first.accessToken);
    await send(exchange.port, renewed.accessToken);
    expect(exchange.messages).toHaveLength(1);
  });

  it('an unknown token gets 535 and nothing is delivered', async () => {
    const { exchange } = await setup();
    const error = (await send(exchange.port, 'not-a-token-the-endpoint-issued').catch((e: unknown) => e)) as { responseCode?: number };
    expect(error.responseCode).toBe(535);
    expect(exchange.messages).toHaveLength(0);
    expect(exchange.authAttempts[0]?.accepted).toBe(false);
  });

  it('rejectNextAuths refuses a valid token once, then accepts it', async () => {
    const { clock, fake, exchange } = await setup();
    const { logger } = capturedLogger();
    const tokens = createOAuth2TokenSource('m365', { ...OAuth2AuthForTest(fake, { clientSecret: SECRET }), authority: 'https://login.microsoftonline.com' }, {
      cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: fake.asNetworkClient(),
    });
    cleanups.push(() => tokens.close());
    const token = await tokens.getToken();
    exchange.rejectNextAuths(1);
    await expect(send(exchange.port, token.accessToken)).rejects.toMatchObject({ responseCode: 535 });
    await send(exchange.port, token.accessToken);
    expect(exchange.authAttempts.map((a) => a.accepted)).toEqual([false, true]);
  });

  it('the challenge failure style answers 334 then 535 (nodemailer asks for a renewed token)', async () => {
    const { exchange } = await setup({ failureStyle: 'challenge' });
    const error = (await send(exchange.port, 'unknown-token').catch((e: unknown) => e)) as { responseCode?: number };
    expect(error.responseCode).toBe(535);
  });

  it('does not offer AUTH before STARTTLS: a client that skips TLS never gets to present the token', async () => {
    const { exchange } = await setup();
    const error = (await send(exchange.port, 'some-token', { requireTLS: false, ignoreTLS: true }).catch((e: unknown) => e)) as { code?: string; responseCode?: number };
    expect(error.code).toBe('EAUTH');
    expect(exchange.presentedTokens).toHaveLength(0);
    expect(exchange.messages).toHaveLength(0);
  });
});
