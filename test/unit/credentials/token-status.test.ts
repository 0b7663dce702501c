import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import type { INetworkModule } from '@azure/msal-node';
import { ManualClock } from '../../../src/core/clock.js';
import type { OAuth2Auth } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/ops/logger.js';
import { createOAuth2TokenSource } from '../../../src/delivery/credentials/oauth2.js';
import { TokenCache } from '../../../src/delivery/credentials/token-cache.js';
import { TokenStatusBoard } from '../../../src/delivery/credentials/token-status.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../fixtures/tls/${name}`, import.meta.url)), 'utf8');
const APP_CERT = fixture('app.pem');
const APP_KEY = fixture('app.key');
const VALID_TO_MS = Date.parse(new X509Certificate(APP_CERT).validTo);
const DAY_MS = 86_400_000;

const unusedNetwork: INetworkModule = {
  sendGetRequestAsync: () => Promise.reject(new Error('no network in this test')),
  sendPostRequestAsync: () => Promise.reject(new Error('no network in this test')),
};

function certAuth(x5c: string | undefined): OAuth2Auth {
  return {
    type: 'oauth2',
    user: 'relay@contoso.test',
    tenantId: 'tenant-1',
    clientId: 'client-1',
    authority: 'https://login.microsoftonline.com',
    scope: 'https://outlook.office365.com/.default',
    refreshBeforeExpirySeconds: 600,
    clientCertificate: { thumbprintSha256: 'ab'.repeat(32), privateKey: APP_KEY, ...(x5c === undefined ? {} : { x5c }) },
  };
}

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines };
}

describe(TokenStatusBoard.name, () => {
  it('records successes, failures and fetch counts per upstream', () => {
    const board = new TokenStatusBoard();
    board.register('backup');
    board.recordFailure('primary', { nowMs: Date.UTC(2026, 0, 1), message: 'AADSTS7000215 wrong secret' });
    expect(board.get('primary')).toMatchObject({ fetches: 1, lastError: 'AADSTS7000215 wrong secret', lastErrorAt: '2026-01-01T00:00:00.000Z', lastSuccessAt: undefined });
    board.recordSuccess('primary', { nowMs: Date.UTC(2026, 0, 1, 0, 5), expiresOnMs: Date.UTC(2026, 0, 1, 1, 5) });
    expect(board.get('primary')).toMatchObject({
      fetches: 2,
      lastSuccessAt: '2026-01-01T00:05:00.000Z',
      expiresAt: '2026-01-01T01:05:00.000Z',
      lastError: undefined,
      lastErrorAt: undefined,
    });
    expect(board.snapshot().map((s) => s.upstream)).toEqual(['backup', 'primary']);
    expect(board.get('backup')?.fetches).toBe(0);
  });

  it('snapshot is a copy: changing it does not change the board', () => {
    const board = new TokenStatusBoard();
    board.recordFailure('primary', { nowMs: 0, message: 'x' });
    const snapshot = board.snapshot() as unknown as { fetches: number }[];
    snapshot[0]!.fetches = 99;
    expect(board.get('primary')?.fetches).toBe(1);
  });
});

describe('client certificate expiry warning (createOAuth2TokenSource)', () => {
  it('warns in the log and on the board when the x5c certificate expires within 30 days', () => {
    const clock = new ManualClock(VALID_TO_MS - 10 * DAY_MS);
    const { logger, lines } = capture();
    const status = new TokenStatusBoard();
    createOAuth2TokenSource('m365', certAuth(APP_CERT), { cache: new TokenCache({ clock }), clock, logger, status, networkClient: unusedNetwork });
    const entry = status.get('m365');
    expect(entry?.certificateExpiresAt).toBe(new Date(VALID_TO_MS).toISOString());
    expect(entry?.certificateWarning).toMatch(/expires in 10 days/);
    const warning = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'token.certificate-expiring');
    expect(warning).toMatchObject({ level: 'warn', upstream: 'm365', daysLeft: 10 });
    expect(lines.join('')).not.toContain(APP_KEY.split('\n')[1]);
  });

  it('does not warn when the certificate has more than 30 days left', () => {
    const clock = new ManualClock(VALID_TO_MS - 31 * DAY_MS);
    const { logger, lines } = capture();
    const status = new TokenStatusBoard();
    createOAuth2TokenSource('m365', certAuth(APP_CERT), { cache: new TokenCache({ clock }), clock, logger, status, networkClient: unusedNetwork });
    expect(status.get('m365')?.certificateWarning).toBeUndefined();
    expect(status.get('m365')?.certificateExpiresAt).toBe(new Date(VALID_TO_MS).toISOString());
    expect(lines.join('')).not.toContain('token.certificate-expiring');
  });

  it('says "expired" once the certificate is past validTo', () => {
    const clock = new ManualClock(VALID_TO_MS + DAY_MS);
    const { logger } = capture();
    const status = new TokenStatusBoard();
    createOAuth2TokenSource('m365', certAuth(APP_CERT), { cache: new TokenCache({ clock }), clock, logger, status, networkClient: unusedNetwork });
    expect(status.get('m365')?.certificateWarning).toMatch(/expired/);
  });

  it('without x5c there is no certificate entry', () => {
    const clock = new ManualClock();
    const { logger } = capture();
    const status = new TokenStatusBoard();
    createOAuth2TokenSource('m365', certAuth(undefined), { cache: new TokenCache({ clock }), clock, logger, status, networkClient: unusedNetwork });
    expect(status.get('m365')).toMatchObject({ upstream: 'm365', fetches: 0 });
    expect(status.get('m365')?.certificateExpiresAt).toBeUndefined();
  });

  it('a malformed x5c is a config error at creation', () => {
    const clock = new ManualClock();
    const { logger } = capture();
    expect(() =>
      createOAuth2TokenSource('m365', certAuth('not a certificate'), { cache: new TokenCache({ clock }), clock, logger, status: new TokenStatusBoard(), networkClient: unusedNetwork }),
    ).toThrow(expect.objectContaining({ code: 'E_CONFIG' }));
  });
});

describe('TokenStatusBoard onFetched (the /metrics token counter)', () => {
  it('is told of each token obtained, never of a failed fetch', () => {
    const fetched: [string, number][] = [];
    const board = new TokenStatusBoard({ onFetched: (upstream, expiresOnMs) => fetched.push([upstream, expiresOnMs]) });
    board.recordFailure('m365', { nowMs: 1_000, message: 'AADSTS7000215: invalid client secret' });
    board.recordSuccess('m365', { nowMs: 2_000, expiresOnMs: 3_602_000 });
    expect(fetched).toEqual([['m365', 3_602_000]]);
    expect(board.get('m365')?.fetches).toBe(2);
  });
});
