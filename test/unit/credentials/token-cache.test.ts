import { describe, it, expect } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { RelayError } from '../../../src/core/errors.js';
import { TokenCache, freshForMs, tokenCacheKey } from '../../../src/delivery/credentials/token-cache.js';
import type { AccessToken } from '../../../src/delivery/credentials/token-source.js';

const KEY = { authority: 'https://login.microsoftonline.com', tenantId: 'tenant-1', clientId: 'client-1', scope: 'https://outlook.office365.com/.default' };
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** A token fetcher that counts calls and hands out numbered tokens valid for `lifetimeMs`. */
function countingFetcher(clock: ManualClock, lifetimeMs = HOUR_MS) {
  const state = { calls: 0, failWith: undefined as Error | undefined, gate: undefined as Promise<void> | undefined };
  const fetchToken = async (): Promise<AccessToken> => {
    state.calls += 1;
    const n = state.calls;
    if (state.gate !== undefined) await state.gate;
    if (state.failWith !== undefined) throw state.failWith;
    return { accessToken: `token-${n}`, expiresOnMs: clock.now() + lifetimeMs };
  };
  return { state, fetchToken };
}

/** Lets pending promise callbacks (a background refresh) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

describe(TokenCache.name, () => {
  it('makes one token request for 1,000 sequential calls within the lifetime', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    for (let i = 0; i < 1000; i += 1) {
      const token = await cache.getToken({ key: KEY, fetchToken });
      expect(token.accessToken).toBe('token-1');
    }
    expect(state.calls).toBe(1);
  });

  it('coalesces 100 concurrent cold calls into exactly one request', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    let open!: () => void;
    state.gate = new Promise<void>((resolve) => (open = resolve));
    const pending = Array.from({ length: 100 }, () => cache.getToken({ key: KEY, fetchToken }));
    open();
    const tokens = await Promise.all(pending);
    expect(state.calls).toBe(1);
    expect(new Set(tokens.map((t) => t.accessToken))).toEqual(new Set(['token-1']));
  });

  it('keys by authority, tenant, client and scope: another scope gets its own token', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    await cache.getToken({ key: KEY, fetchToken });
    const other = await cache.getToken({ key: { ...KEY, scope: 'https://graph.microsoft.com/.default' }, fetchToken });
    await cache.getToken({ key: { ...KEY, authority: 'https://login.microsoftonline.com/' }, fetchToken });
    expect(other.accessToken).toBe('token-2');
    expect(state.calls).toBe(2);
    expect(tokenCacheKey(KEY)).toBe('https://login.microsoftonline.com|tenant-1|client-1|https://outlook.office365.com/.default');
  });

  it('refreshes ahead of expiry: same token before the margin, current token plus one background request inside it, new token next', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    const request = { key: KEY, fetchToken, refreshBeforeExpirySeconds: 600 };

    expect((await cache.getToken(request)).accessToken).toBe('token-1');
    clock.advance(HOUR_MS - 11 * MINUTE_MS); // 11 minutes left: before the 10-minute margin
    expect((await cache.getToken(request)).accessToken).toBe('token-1');
    await settle();
    expect(state.calls).toBe(1);

    clock.advance(2 * MINUTE_MS); // 9 minutes left: inside the margin
    let open!: () => void;
    state.gate = new Promise<void>((resolve) => (open = resolve));
    const duringRefresh = await Promise.all([cache.getToken(request), cache.getToken(request), cache.getToken(request)]);
    expect(duringRefresh.map((t) => t.accessToken)).toEqual(['token-1', 'token-1', 'token-1']);
    expect(state.calls).toBe(2);
    open();
    state.gate = undefined;
    await settle();

    expect((await cache.getToken(request)).accessToken).toBe('token-2');
    expect(state.calls).toBe(2);
  });

  it('forceRefresh waits for a new token instead of handing back the cached one', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    const first = await cache.getToken({ key: KEY, fetchToken });
    const forced = await cache.getToken({ key: KEY, fetchToken, forceRefresh: true });
    expect(forced.accessToken).not.toBe(first.accessToken);
    expect(state.calls).toBe(2);
    expect((await cache.getToken({ key: KEY, fetchToken })).accessToken).toBe(forced.accessToken);
    expect(state.calls).toBe(2);
  });

  it('forceRefresh inside the refresh margin still waits for the new token', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { fetchToken } = countingFetcher(clock);
    await cache.getToken({ key: KEY, fetchToken });
    clock.advance(HOUR_MS - 5 * MINUTE_MS);
    const forced = await cache.getToken({ key: KEY, fetchToken, forceRefresh: true });
    expect(forced.accessToken).toBe('token-2');
  });

  it('never hands out an expired token: past expiry the caller waits for the new one', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    await cache.getToken({ key: KEY, fetchToken });
    clock.advance(HOUR_MS); // expiresOn == now
    const token = await cache.getToken({ key: KEY, fetchToken });
    expect(token.accessToken).toBe('token-2');
    expect(token.expiresOnMs).toBeGreaterThan(clock.now());
    expect(state.calls).toBe(2);
  });

  it('throws the fetcher RelayError E_TOKEN on a cold failure, and does not cache the failure', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    state.failWith = new RelayError('E_TOKEN', { logMessage: 'token request failed (AADSTS7000215, invalid_client): fix the secret' });
    const failures = await Promise.allSettled([cache.getToken({ key: KEY, fetchToken }), cache.getToken({ key: KEY, fetchToken })]);
    expect(state.calls).toBe(1);
    for (const failure of failures) {
      expect(failure.status).toBe('rejected');
      const reason = (failure as PromiseRejectedResult).reason as RelayError;
      expect(reason).toBeInstanceOf(RelayError);
      expect(reason.code).toBe('E_TOKEN');
      expect(reason.message).toContain('AADSTS7000215');
    }
    state.failWith = undefined;
    expect((await cache.getToken({ key: KEY, fetchToken })).accessToken).toBe('token-2');
  });

  it('wraps a non-RelayError failure into E_TOKEN with the original as cause', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const boom = new Error('socket hang up');
    await expect(cache.getToken({ key: KEY, fetchToken: () => Promise.reject(boom) })).rejects.toMatchObject({ code: 'E_TOKEN', cause: boom });
  });

  it('keeps serving the current token when a background refresh fails, and throws once it has expired', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock);
    await cache.getToken({ key: KEY, fetchToken });
    state.failWith = new RelayError('E_TOKEN', { logMessage: 'AADSTS90002 tenant not found' });
    clock.advance(HOUR_MS - 5 * MINUTE_MS);
    expect((await cache.getToken({ key: KEY, fetchToken })).accessToken).toBe('token-1');
    await settle();
    expect((await cache.getToken({ key: KEY, fetchToken })).accessToken).toBe('token-1');
    await settle();
    clock.advance(5 * MINUTE_MS);
    await expect(cache.getToken({ key: KEY, fetchToken })).rejects.toMatchObject({ code: 'E_TOKEN' });
  });

  it('rejects a token that is already expired when it arrives', async () => {
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const fetchToken = async (): Promise<AccessToken> => ({ accessToken: 'old', expiresOnMs: clock.now() - 1 });
    await expect(cache.getToken({ key: KEY, fetchToken })).rejects.toMatchObject({ code: 'E_TOKEN' });
  });

  it('caps the refresh margin at half the lifetime so short-lived tokens are not refetched on every call', async () => {
    expect(freshForMs(HOUR_MS, 10 * MINUTE_MS)).toBe(50 * MINUTE_MS);
    expect(freshForMs(4 * MINUTE_MS, 10 * MINUTE_MS)).toBe(2 * MINUTE_MS);
    const clock = new ManualClock();
    const cache = new TokenCache({ clock });
    const { state, fetchToken } = countingFetcher(clock, 4 * MINUTE_MS);
    await cache.getToken({ key: KEY, fetchToken });
    clock.advance(MINUTE_MS);
    await cache.getToken({ key: KEY, fetchToken });
    await settle();
    expect(state.calls).toBe(1);
  });
});
