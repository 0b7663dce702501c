/**
 * The one access-token cache of the relay (msal is always called with skipCache).
 *
 * Does: keep one token per `authority|tenantId|clientId|scope` and coalesce requests: however
 * many callers, concurrent or not, one token request is made per key per token lifetime.
 * Refreshes ahead of expiry: an entry turns stale `refreshBeforeExpirySeconds` before the token
 * expires; the next caller still gets the current token at once while one background request
 * fetches the next. `forceRefresh` (after an upstream refused the token) waits for a NEW token.
 * Never: hands out a token whose expiresOn <= now; serves the old token to a forceRefresh caller;
 * keeps more than `maxEntries` keys.
 * Assumes: time comes from the injected Clock. lru-cache 11 reads time through its `perf`
 * option, so we give it `{ now: clock.now }` and `ttlResolution: 0` (no 1 ms memoised "now"),
 * and let lru-cache do staleness, coalescing and the background refresh; expiry itself (as
 * opposed to staleness) is checked here against the same clock. Failed fetches: the fetcher
 * throws RelayError E_TOKEN (oauth2.ts builds it with Entra's code); a failed background
 * refresh keeps the current token (noDeleteOnFetchRejection) until it really expires, so a
 * short Entra outage inside the refresh margin costs nothing; a cold or forced fetch throws.
 * Two upstreams with the same app registration and scope share one entry (one token).
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../../core/clock.js';
import { RelayError, isRelayError } from '../../core/errors.js';
import type { AccessToken } from './token-source.js';

export interface TokenCacheKey {
  /** e.g. https://login.microsoftonline.com (no tenant) */
  readonly authority: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly scope: string;
}

/** Makes one token request; throws RelayError E_TOKEN with a log-safe message on failure. */
export type TokenFetcher = () => Promise<AccessToken>;

export interface TokenRequest {
  readonly key: TokenCacheKey;
  readonly fetchToken: TokenFetcher;
  /** default 600 s (Microsoft's high-volume endpoint refuses tokens close to expiry) */
  readonly refreshBeforeExpirySeconds?: number;
  /** true after the upstream refused the cached token: wait for a new one */
  readonly forceRefresh?: boolean;
}

export interface TokenCacheOptions {
  readonly clock: Clock;
  /** most distinct keys kept (one per app registration and scope); default 100 */
  readonly maxEntries?: number;
}

interface FetchContext {
  readonly fetchToken: TokenFetcher;
  readonly refreshBeforeExpiryMs: number;
}

export const DEFAULT_REFRESH_BEFORE_EXPIRY_SECONDS = 600;

export function tokenCacheKey(key: TokenCacheKey): string {
  return `${key.authority.replace(/\/+$/, '').toLowerCase()}|${key.tenantId.toLowerCase()}|${key.clientId.toLowerCase()}|${key.scope}`;
}

/**
 * How long a token counts as fresh: its lifetime minus the refresh margin. A margin larger than
 * half the lifetime is cut to half, so a short-lived token does not trigger a request per call.
 */
export function freshForMs(lifetimeMs: number, refreshBeforeExpiryMs: number): number {
  const marginMs = Math.min(refreshBeforeExpiryMs, lifetimeMs / 2);
  return Math.max(1, Math.floor(lifetimeMs - marginMs));
}

export class TokenCache {
  private readonly clock: Clock;
  private readonly lru: LRUCache<string, AccessToken, FetchContext>;

  constructor(options: TokenCacheOptions) {
    this.clock = options.clock;
    const clock = options.clock;
    this.lru = new LRUCache<string, AccessToken, FetchContext>({
      max: options.maxEntries ?? 100,
      perf: { now: () => clock.now() },
      ttlResolution: 0,
      allowStale: true,
      noDeleteOnFetchRejection: true,
      allowStaleOnFetchRejection: false,
      fetchMethod: async (_key, _stale, { context, options: setOptions }) => {
        const token = await fetchOrWrap(context.fetchToken);
        const lifetimeMs = token.expiresOnMs - clock.now();
        if (lifetimeMs <= 0) {
          throw new RelayError('E_TOKEN', {
            logMessage: `token endpoint returned a token that is already expired (expiresOn ${new Date(token.expiresOnMs).toISOString()}); check the clock of this host`,
          });
        }
        setOptions.ttl = freshForMs(lifetimeMs, context.refreshBeforeExpiryMs);
        return { accessToken: token.accessToken, expiresOnMs: token.expiresOnMs };
      },
    });
  }

  async getToken(request: TokenRequest): Promise<AccessToken> {
    const key = tokenCacheKey(request.key);
    const context: FetchContext = {
      fetchToken: request.fetchToken,
      refreshBeforeExpiryMs: (request.refreshBeforeExpirySeconds ?? DEFAULT_REFRESH_BEFORE_EXPIRY_SECONDS) * 1000,
    };
    let token: AccessToken | undefined;
    if (request.forceRefresh === true) {
      // allowStale:false, or lru-cache would hand back the old token and refresh in the background
      token = await this.lru.fetch(key, { context, forceRefresh: true, allowStale: false });
    } else {
      // a stale-but-unexpired token may be served while it refreshes; an expired one may not
      const held = this.lru.peek(key, { allowStale: true });
      const heldIsUsable = held !== undefined && held.expiresOnMs > this.clock.now();
      token = await this.lru.fetch(key, { context, allowStale: heldIsUsable });
    }
    if (token === undefined || token.expiresOnMs <= this.clock.now()) {
      throw new RelayError('E_TOKEN', { logMessage: 'no unexpired access token available (token request aborted or returned an expired token)' });
    }
    return token;
  }

  /** Forget every token (e.g. after a config reload changed credentials). */
  clear(): void {
    this.lru.clear();
  }
}

async function fetchOrWrap(fetchToken: TokenFetcher): Promise<AccessToken> {
  try {
    return await fetchToken();
  } catch (err) {
    if (isRelayError(err)) throw err;
    throw new RelayError('E_TOKEN', { logMessage: 'token request failed', cause: err });
  }
}
