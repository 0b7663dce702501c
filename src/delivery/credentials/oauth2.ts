/**
 * OAuth2 client-credentials tokens for one upstream (Microsoft 365 SMTP AUTH XOAUTH2).
 *
 * Does: build one msal ConfidentialClientApplication (client secret or client certificate) and
 * serve tokens through the shared TokenCache, calling msal with `skipCache:true` so the cache is
 * the only cache layer. Gives msal `authorityMetadata` built from the configured authority for
 * every authority (so msal never GETs openid-configuration, not even for clouds whose metadata
 * msal does not hard-code), and adds non-Microsoft hosts to `knownAuthorities` (so msal never asks
 * Microsoft's instance-discovery host about them). Turns msal/Entra failures into RelayError
 * E_TOKEN whose log message names the AADSTS code and what to fix. Logs `token.fetched`
 * (upstream, expiresAt) and `token.failed`; records both on the TokenStatusBoard. Warns at start
 * when the x5c certificate expires within 30 days. Loads msal-node and undici (≈12 MB of RSS)
 * only when the first token is needed (dynamic import): a relay without an oauth2 upstream
 * never loads them.
 * Never: logs or puts into an error the client secret, the private key or an access token (error
 * text from msal is scrubbed of both secrets and the cause is a sanitised copy, not msal's object).
 * Assumes: `auth` is validated by config/schema.ts (exactly one of clientSecret/clientCertificate,
 * an https authority: a base, a base ending in the tenant, or the full v2.0 token URL, all read by
 * config/authority.ts); secrets are already resolved. msal stamps `expiresOn` with the
 * system clock: we turn it into a lifetime against the system clock once and re-anchor it on the
 * injected Clock (identical in production; lets tests drive expiry with a ManualClock).
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { ConfidentialClientApplication, Configuration, INetworkModule } from '@azure/msal-node';
import type { Clock } from '../../core/clock.js';
import { RelayError } from '../../core/errors.js';
import type { Logger } from '../../core/ports.js';
import { readAuthority } from '../../config/authority.js';
import type { OAuth2Auth } from '../../config/schema.js';
import type { ClosableNetworkModule } from './msal-network.js';
import type { TokenCache } from './token-cache.js';
import { SecretScrubber } from '../secret-scrubber.js';
import type { AccessToken, TokenSource } from './token-source.js';
import type { TokenStatusBoard } from './token-status.js';

export interface OAuth2Deps {
  readonly cache: TokenCache;
  readonly clock: Clock;
  readonly logger: Logger;
  /** upstream.proxy: token requests go through it too */
  readonly proxy?: string;
  /** a ready network client (tests, app wiring); otherwise an undici one is built from proxy/tokenCa */
  readonly networkClient?: INetworkModule;
  readonly status: TokenStatusBoard;
}

export type OAuth2TokenSource = TokenSource & {
  /** releases the network client this source built (no-op when one was passed in) */
  close(): Promise<void>;
};

/** Hosts msal knows as Microsoft clouds (msal-common AuthorityMetadata.ts aliases). */
export const MICROSOFT_AUTHORITY_HOSTS: ReadonlySet<string> = new Set([
  'login.microsoftonline.com',
  'login.windows.net',
  'login.microsoft.com',
  'sts.windows.net',
  'login.partner.microsoftonline.cn',
  'login.chinacloudapi.cn',
  'login.microsoftonline.de',
  'login.microsoftonline.us',
  'login.usgovcloudapi.net',
  'login-us.microsoftonline.com',
]);

export const CERTIFICATE_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;

/** What to fix for the Entra (AADSTS) errors admins actually meet with the client-credentials flow. */
const AADSTS_HINTS: Readonly<Record<string, string>> = {
  '7000215': 'the client secret is wrong: set clientSecret to the secret VALUE (not the secret ID) from the app registration',
  '7000222': 'the client secret has expired: create a new secret in the app registration and update clientSecret',
  '700016': 'the application was not found in the tenant: check clientId and tenantId, and that the app registration (or its service principal) exists in that tenant',
  '90002': 'the tenant was not found: check tenantId (and authority, for sovereign clouds)',
  '900023': 'the tenant identifier is malformed: set tenantId to the directory (tenant) ID or a verified domain',
  '700027': 'the client certificate assertion was refused: upload the certificate to the app registration and check clientCertificate.thumbprintSha256 and privateKey',
  '70011': 'the scope is invalid: for Exchange Online SMTP use https://outlook.office365.com/.default',
  '500011': 'the resource in the scope is not in the tenant: check scope, and that Office 365 Exchange Online is available to the tenant',
  '7000112': 'the application is disabled: enable it in Entra ID (Enterprise applications)',
  '1002012': 'the scope is not a /.default scope: client credentials need e.g. https://outlook.office365.com/.default',
};

export function createOAuth2TokenSource(upstreamName: string, auth: OAuth2Auth, deps: OAuth2Deps): OAuth2TokenSource {
  const authorityBase = authorityBaseOf(auth);
  const secrets = secretScrubber(auth);
  // config errors (unreadable tokenCa, bad authority URL) still surface when the set is built
  const tokenCa = auth.tokenCa === undefined ? undefined : readTokenCa(auth.tokenCa);
  const configuration = msalConfiguration(auth, authorityBase);
  let ownNetworkClient: ClosableNetworkModule | undefined;
  let app: Promise<ConfidentialClientApplication> | undefined;
  const msalApp = (): Promise<ConfidentialClientApplication> =>
    (app ??= (async () => {
      const msal = await import('@azure/msal-node');
      let networkClient = deps.networkClient;
      if (networkClient === undefined) {
        const { createUndiciNetworkClient } = await import('./msal-network.js');
        networkClient = ownNetworkClient = createUndiciNetworkClient({
          ...(deps.proxy === undefined ? {} : { proxyUrl: deps.proxy }),
          ...(tokenCa === undefined ? {} : { ca: tokenCa }),
        });
      }
      // msal's own log stays off: it can carry request details; our log lines say what matters
      const loggerOptions = { loggerCallback: () => {}, piiLoggingEnabled: false, logLevel: msal.LogLevel.Error };
      return new msal.ConfidentialClientApplication({ ...configuration, system: { networkClient, loggerOptions } });
    })());

  deps.status.register(upstreamName);
  if (auth.clientCertificate?.x5c !== undefined) {
    checkCertificateExpiry(upstreamName, auth.clientCertificate.x5c, deps);
  }

  const fetchToken = async (): Promise<AccessToken> => {
    try {
      const result = await (await msalApp()).acquireTokenByClientCredential({ scopes: [auth.scope], skipCache: true });
      if (result === null || result.accessToken === '' || !(result.expiresOn instanceof Date)) {
        throw new RelayError('E_TOKEN', { logMessage: `token request for upstream "${upstreamName}" returned no access token` });
      }
      // msal computed expiresOn from the system clock; keep the lifetime, anchor it on ours.
      const lifetimeMs = result.expiresOn.getTime() - Date.now();
      const nowMs = deps.clock.now();
      const token: AccessToken = { accessToken: result.accessToken, expiresOnMs: nowMs + lifetimeMs };
      deps.status.recordSuccess(upstreamName, { nowMs, expiresOnMs: token.expiresOnMs });
      deps.logger.info({ upstream: upstreamName, expiresAt: new Date(token.expiresOnMs).toISOString() }, 'token.fetched');
      return token;
    } catch (err) {
      const error = err instanceof RelayError ? err : toTokenError(upstreamName, err, secrets);
      deps.status.recordFailure(upstreamName, { nowMs: deps.clock.now(), message: error.message });
      deps.logger.warn({ upstream: upstreamName, error: error.message }, 'token.failed');
      throw error;
    }
  };

  const key = { authority: authorityBase, tenantId: auth.tenantId, clientId: auth.clientId, scope: auth.scope };
  return {
    getToken: (options) =>
      deps.cache.getToken({
        key,
        fetchToken,
        refreshBeforeExpirySeconds: auth.refreshBeforeExpirySeconds,
        forceRefresh: options?.forceRefresh === true,
      }),
    close: async () => {
      await app?.catch(() => undefined); // a load in flight may still build the client
      await ownNetworkClient?.close();
    },
  };
}

/** The base authority (no tenant, no token path), whichever form the config gave. */
export function authorityBaseOf(auth: OAuth2Auth): string {
  const reading = readAuthority(auth.authority, auth.tenantId);
  if (!reading.ok) throw new RelayError('E_CONFIG', { logMessage: `auth.authority ${reading.problem}` });
  return reading.base;
}

function msalConfiguration(auth: OAuth2Auth, authorityBase: string): Pick<Configuration, 'auth'> {
  const authority = `${authorityBase}/${auth.tenantId}`;
  const url = new URL(authorityBase);
  const isMicrosoftCloud = MICROSOFT_AUTHORITY_HOSTS.has(url.hostname.toLowerCase()) && url.port === '';
  const credential =
    auth.clientCertificate !== undefined
      ? {
          clientCertificate: {
            thumbprintSha256: auth.clientCertificate.thumbprintSha256.toLowerCase(),
            privateKey: auth.clientCertificate.privateKey,
            ...(auth.clientCertificate.x5c === undefined ? {} : { x5c: auth.clientCertificate.x5c }),
          },
        }
      : { clientSecret: auth.clientSecret ?? '' };
  return {
    auth: {
      clientId: auth.clientId,
      authority,
      ...credential,
      authorityMetadata: JSON.stringify(authorityMetadataFor(authority)),
      ...(isMicrosoftCloud ? {} : { knownAuthorities: [url.host] }),
    },
  };
}

/** The OpenID metadata msal would otherwise download (v2.0 endpoint layout of Entra). */
export function authorityMetadataFor(authorityWithTenant: string): Record<string, string> {
  return {
    token_endpoint: `${authorityWithTenant}/oauth2/v2.0/token`,
    authorization_endpoint: `${authorityWithTenant}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${authorityWithTenant}/oauth2/v2.0/logout`,
    jwks_uri: `${authorityWithTenant}/discovery/v2.0/keys`,
    issuer: `${authorityWithTenant}/v2.0`,
  };
}

/** The scrubber for what must never appear in a log line or an error: the client secret and the private key. */
function secretScrubber(auth: OAuth2Auth): SecretScrubber {
  const scrubber = new SecretScrubber();
  for (const value of [auth.clientSecret, auth.clientCertificate?.privateKey]) if (value !== undefined) scrubber.add(auth.user, value);
  return scrubber;
}

interface MsalErrorShape {
  readonly name?: unknown;
  readonly errorCode?: unknown;
  readonly errorNo?: unknown;
  readonly status?: unknown;
  readonly correlationId?: unknown;
  readonly message?: unknown;
}

/**
 * msal/Entra failure → RelayError E_TOKEN: "AADSTS<n> (<error>, HTTP <status>): <what to fix>".
 * The cause is a plain Error with the scrubbed msal message and its codes, never msal's object.
 */
export function toTokenError(upstreamName: string, err: unknown, scrubber: SecretScrubber): RelayError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as MsalErrorShape;
  const errorCode = typeof e.errorCode === 'string' && e.errorCode !== '' ? e.errorCode : undefined;
  const errorNo = typeof e.errorNo === 'string' || typeof e.errorNo === 'number' ? String(e.errorNo) : undefined;
  const status = typeof e.status === 'number' ? e.status : undefined;
  const rawMessage = err instanceof Error ? err.message : String(err);
  const message = scrubber.scrub(rawMessage).slice(0, 600);
  const hint = errorNo === undefined ? undefined : AADSTS_HINTS[errorNo];
  const what = [errorNo === undefined ? undefined : `AADSTS${errorNo}`, errorCode, status === undefined ? undefined : `HTTP ${status}`]
    .filter((part) => part !== undefined)
    .join(', ');
  const fix =
    hint ??
    (errorCode === 'network_error' || errorCode === 'endpoints_resolution_error'
      ? 'the token endpoint could not be reached: check network access to the authority, upstream.proxy and auth.tokenCa'
      : 'see the message from Entra below');
  const logMessage = `token request for upstream "${upstreamName}" failed${what === '' ? '' : ` (${what})`}: ${fix}. Entra/msal said: ${message}`;
  const cause = Object.assign(new Error(message), {
    name: typeof e.name === 'string' ? e.name : 'Error',
    ...(errorCode === undefined ? {} : { errorCode }),
    ...(errorNo === undefined ? {} : { errorNo }),
    ...(status === undefined ? {} : { status }),
    ...(typeof e.correlationId === 'string' && e.correlationId !== '' ? { correlationId: e.correlationId } : {}),
  });
  return new RelayError('E_TOKEN', { logMessage, cause });
}

function readTokenCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new RelayError('E_CONFIG', { logMessage: `auth.tokenCa: cannot read the CA file ${path}: ${(err as Error).message}` });
  }
}

/** Leaf certificate of a PEM chain: the first CERTIFICATE block. */
function leafCertificate(pemChain: string): X509Certificate {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pemChain);
  return new X509Certificate(match === null ? pemChain : match[0]);
}

function checkCertificateExpiry(upstreamName: string, x5c: string, deps: OAuth2Deps): void {
  let expiresOnMs: number;
  try {
    expiresOnMs = Date.parse(leafCertificate(x5c).validTo);
  } catch (err) {
    throw new RelayError('E_CONFIG', {
      logMessage: `upstream "${upstreamName}": auth.clientCertificate.x5c is not a PEM certificate: ${(err as Error).message}`,
    });
  }
  const nowMs = deps.clock.now();
  const daysLeft = Math.floor((expiresOnMs - nowMs) / DAY_MS);
  const expiresAt = new Date(expiresOnMs).toISOString();
  let warning: string | undefined;
  if (expiresOnMs <= nowMs) {
    warning = `client certificate expired on ${expiresAt}: upload a new certificate to the app registration and update clientCertificate`;
  } else if (expiresOnMs - nowMs <= CERTIFICATE_WARNING_DAYS * DAY_MS) {
    warning = `client certificate expires in ${daysLeft} days (${expiresAt}): upload a new certificate to the app registration and update clientCertificate`;
  }
  deps.status.recordCertificate(upstreamName, { expiresOnMs, warning });
  if (warning !== undefined) deps.logger.warn({ upstream: upstreamName, certificateExpiresAt: expiresAt, daysLeft }, 'token.certificate-expiring');
}
