import { afterEach, describe, expect, it } from 'vitest';
import { RelayError } from '../../../src/core/errors.js';
import type { UpstreamTransport } from '../../../src/core/ports.js';
import { classifyError } from '../../../src/delivery/classify.js';
import type { AccessToken, TokenSource } from '../../../src/delivery/credentials/token-source.js';
import { createSmtpTransport } from '../../../src/delivery/transport.js';
import { startFakeUpstream, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { TLS_PATHS } from '../../helpers/tls.js';
import { capturingLogger, outgoing, upstreamConfig } from './support.js';

const MAILBOX = 'relay@tenant.test';

/** Hands out `tokens[0]` until a forced refresh, then the next one; records every call. */
function scriptedTokens(tokens: readonly string[]): TokenSource & { calls: (boolean | undefined)[] } {
  let index = 0;
  const calls: (boolean | undefined)[] = [];
  return {
    calls,
    async getToken(options): Promise<AccessToken> {
      calls.push(options?.forceRefresh);
      if (options?.forceRefresh === true) index = Math.min(index + 1, tokens.length - 1);
      return { accessToken: tokens[index] ?? 'none', expiresOnMs: Date.now() + 3_600_000 };
    },
  };
}

describe(`${createSmtpTransport.name} with oauth2`, () => {
  const servers: FakeUpstream[] = [];
  const transports: UpstreamTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((t) => t.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  /** An XOAUTH2 upstream that accepts only `validToken` (535 5.7.3 otherwise) and records the tokens it saw. */
  async function xoauth2Upstream(validToken: string): Promise<{ server: FakeUpstream; seenTokens: string[] }> {
    const seenTokens: string[] = [];
    const server = await startFakeUpstream({
      tls: 'starttls',
      auth: { methods: ['XOAUTH2'] },
      onAuth: (auth) => {
        seenTokens.push(auth.accessToken ?? '');
        return auth.accessToken === validToken && auth.username === MAILBOX
          ? { user: auth.username }
          : { responseCode: 535, message: '5.7.3 Authentication unsuccessful' };
      },
    });
    servers.push(server);
    return { server, seenTokens };
  }

  function oauthTransport(port: number, credentials: TokenSource, trace?: 'detail') {
    const { logger, lines } = capturingLogger();
    const config = upstreamConfig(port, {
      security: 'starttls-required',
      tls: { ca: TLS_PATHS.ca },
      auth: { type: 'oauth2', user: MAILBOX, tenantId: 't', clientId: 'c', clientSecret: 's' },
    });
    const t = createSmtpTransport(config, { logger, defaultHostname: 'relay.test', credentials, ...(trace ? { trace } : {}) });
    transports.push(t);
    return { transport: t, lines };
  }

  it('authenticates with the token from the TokenSource', async () => {
    const { server, seenTokens } = await xoauth2Upstream('tok-A');
    const tokens = scriptedTokens(['tok-A']);
    const { transport } = oauthTransport(server.port, tokens);
    await transport.send(outgoing());
    const [received] = await server.waitForMessages(1);
    expect(received?.authUser).toBe(MAILBOX);
    expect(received?.tls).toBe(true);
    expect(seenTokens).toEqual(['tok-A']);
  });

  it('on EAUTH forces a token refresh and resends once, and the resend really uses the new token', async () => {
    const { server, seenTokens } = await xoauth2Upstream('tok-NEW');
    const tokens = scriptedTokens(['tok-OLD', 'tok-NEW']);
    const { transport, lines } = oauthTransport(server.port, tokens, 'detail');
    const report = await transport.send(outgoing());
    expect(report.accepted).toEqual(['user@dest.test']);
    expect(seenTokens).toEqual(['tok-OLD', 'tok-NEW']);
    expect(tokens.calls).toContain(true);
    expect(await server.waitForMessages(1)).toHaveLength(1);
    // the transcript never shows a token (nodemailer masks AUTH XOAUTH2)
    const log = lines.join('');
    expect(log).toContain('AUTH XOAUTH2');
    expect(log).not.toContain('tok-OLD');
    expect(log).not.toContain('tok-NEW');
    expect(log).not.toContain(Buffer.from(`user=${MAILBOX}\u0001auth=Bearer tok-NEW\u0001\u0001`).toString('base64'));
  });

  it('a second EAUTH is thrown (one refresh only), classified failover, without the token in the error', async () => {
    const { server, seenTokens } = await xoauth2Upstream('never-valid');
    const tokens = scriptedTokens(['tok-1', 'tok-2', 'tok-3']);
    const { transport } = oauthTransport(server.port, tokens);
    const err = (await transport.send(outgoing()).catch((e: unknown) => e)) as Error & { code?: string; response?: string };
    expect(err.code).toBe('EAUTH');
    expect(tokens.calls.filter((c) => c === true)).toHaveLength(1);
    expect(seenTokens).toEqual(['tok-1', 'tok-2']);
    expect(`${err.message} ${err.response ?? ''}`).not.toMatch(/tok-\d/);
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    expect(server.messages).toHaveLength(0);
  });

  it('a TokenSource failure is thrown as its own RelayError (E_TOKEN), classified failover', async () => {
    const { server, seenTokens } = await xoauth2Upstream('tok');
    const failing: TokenSource = {
      async getToken() {
        throw new RelayError('E_TOKEN', { logMessage: 'AADSTS7000215 invalid client secret' });
      },
    };
    const { transport } = oauthTransport(server.port, failing);
    const err = await transport.send(outgoing()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).code).toBe('E_TOKEN');
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    expect(seenTokens).toEqual([]);
  });

  it('Microsoft 365 "535 5.7.139 SMTP AUTH disabled" is classified failover with advice for the admin', async () => {
    const server = await startFakeUpstream({
      tls: 'starttls',
      auth: { methods: ['XOAUTH2'] },
      onAuth: () => ({ responseCode: 535, message: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.' }),
    });
    servers.push(server);
    const { transport } = oauthTransport(server.port, scriptedTokens(['a', 'b']));
    const err = await transport.send(outgoing()).catch((e: unknown) => e);
    const decision = classifyError(err);
    expect(decision).toMatchObject({ action: 'failover', markDown: true });
    expect(decision.reason).toMatch(/SmtpClientAuthenticationDisabled|enable SMTP AUTH/);
  });
});
