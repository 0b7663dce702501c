/**
 * A fake Microsoft Entra v2.0 token endpoint (client-credentials grant), for offline tests.
 *
 * Does: answer POST /<tenant>/oauth2/v2.0/token like Entra: checks the form body (grant_type,
 * client_id, scope) and the credential (client_secret, or a client_assertion JWT whose header
 * `x5t#S256` matches the configured certificate, whose PS256/RS256 signature verifies with the
 * certificate's public key, and whose aud is the token endpoint); answers with Entra's error
 * shapes (AADSTS7000215, 700016, 90002, 700027, 70011, 70003); issues JWT-shaped tokens as Entra
 * does (payload with aud = the scope's resource, roles, tid, appid, iat/nbf/exp; the signature is
 * random bytes: nothing here verifies it) and remembers their expiry (`isValid`). Serves openid-configuration GETs (counted, so tests can
 * prove msal never asked). Runs either as a node:https server on 127.0.0.1:0 (test CA's
 * localhost certificate) or in-process as an msal INetworkModule (`asNetworkClient()`), so a
 * test can use the real https://login.microsoftonline.com authority without any socket.
 * Never: listens on anything but 127.0.0.1; lets a failed request issue a token.
 * Assumes: test/fixtures/tls server.pem/server.key (localhost, 127.0.0.1) signed by ca.pem.
 */
import { createHash, randomBytes, verify, X509Certificate, constants as cryptoConstants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
export const tlsFixture = (name: string): string => readFileSync(`${TLS_DIR}${name}`, 'utf8');

export interface FakeCertificateCredential {
  /** PEM certificate whose public key verifies the assertion */
  readonly certificatePem: string;
}

export interface FakeTokenEndpointOptions {
  /** serve over HTTPS with the localhost test certificate (default true); false = plain HTTP */
  readonly https?: boolean;
  readonly tenantId?: string;
  readonly clientId?: string;
  /** accepted client secret; omit to refuse secrets */
  readonly clientSecret?: string;
  /** accepted client certificate (assertion auth); omit to refuse assertions */
  readonly certificate?: FakeCertificateCredential;
  readonly scope?: string;
  /** expires_in of issued tokens (default 3600) */
  readonly tokenLifetimeSeconds?: number;
  /** time used to stamp issued tokens' expiry (default Date.now) */
  readonly now?: () => number;
  /** application permissions in the tokens' `roles` claim (default: Mail.Send for a Graph scope, SMTP.SendAsApp otherwise) */
  readonly roles?: readonly string[];
}

export interface ScriptedFailure {
  readonly status: number;
  readonly error: string;
  /** must start with the AADSTS code, as Entra's do */
  readonly description: string;
  readonly errorCodes?: readonly number[];
  /** how many requests fail (default: until cleared with setFailure(undefined)) */
  readonly times?: number;
}

export interface TokenRequestRecord {
  readonly via: 'socket' | 'in-process';
  readonly tenant: string | undefined;
  readonly form: Readonly<Record<string, string>>;
  readonly status: number;
  readonly assertionHeader?: Readonly<Record<string, unknown>>;
}

export interface FakeTokenEndpoint {
  /** https://localhost:<port> (no tenant): the `authority` to configure */
  readonly authority: string;
  readonly port: number;
  readonly tenantId: string;
  readonly clientId: string;
  readonly scope: string;
  /** HTTP requests that arrived over a socket (token POSTs and GETs) */
  readonly requests: number;
  /** requests handled through asNetworkClient() */
  readonly inProcessRequests: number;
  /** GET requests (metadata/discovery), both paths */
  readonly getRequests: number;
  /** every token POST with its form (secrets included: for assertions only, never log them) */
  readonly tokenRequests: readonly TokenRequestRecord[];
  /** access tokens issued so far, oldest first */
  readonly issuedTokens: readonly string[];
  isValid(accessToken: string, nowMs?: number): boolean;
  setFailure(failure: ScriptedFailure | undefined): void;
  /** closes the listener and every connection: later requests are refused (in-process: network error) */
  down(): Promise<void>;
  asNetworkClient(): INetworkModule;
  close(): Promise<void>;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export async function startFakeTokenEndpoint(options: FakeTokenEndpointOptions = {}): Promise<FakeTokenEndpoint> {
  const tenantId = options.tenantId ?? '11111111-2222-3333-4444-555555555555';
  const clientId = options.clientId ?? 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
  const scope = options.scope ?? 'https://outlook.office365.com/.default';
  const lifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
  const now = options.now ?? (() => Date.now());
  const certificate = options.certificate === undefined ? undefined : new X509Certificate(options.certificate.certificatePem);
  const certificateThumbprint = certificate === undefined ? undefined : createHash('sha256').update(certificate.raw).digest('base64url');

  const issued = new Map<string, number>();
  const issuedList: string[] = [];
  const tokenRequests: TokenRequestRecord[] = [];
  let failure: { spec: ScriptedFailure; remaining: number } | undefined;
  let isDown = false;
  let socketRequests = 0;
  let inProcessRequests = 0;
  let getRequests = 0;

  const entraError = (status: number, error: string, code: number, text: string): Answer => ({
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${text} Trace ID: ${randomUUIDLike()} Correlation ID: ${randomUUIDLike()} Timestamp: ${new Date(now()).toISOString()}`,
      error_codes: [code],
      timestamp: new Date(now()).toISOString(),
      trace_id: randomUUIDLike(),
      correlation_id: randomUUIDLike(),
    },
  });

  function metadata(origin: string, tenant: string): Record<string, unknown> {
    const base = `${origin}/${tenant}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
      issuer: `${base}/v2.0`,
    };
  }

  /** The validation logic shared by the socket server and the in-process client. */
  function handle(via: 'socket' | 'in-process', method: string, url: URL, contentType: string | undefined, body: string): Answer {
    const segments = url.pathname.split('/').filter((s) => s !== '');
    const tenant = segments[0];
    if (method === 'GET') {
      getRequests += 1;
      if (segments.slice(1).join('/') === 'v2.0/.well-known/openid-configuration' && tenant === tenantId) {
        return { status: 200, body: metadata(url.origin, tenant) };
      }
      return { status: 404, body: {} };
    }
    if (method !== 'POST' || segments.slice(1).join('/') !== 'oauth2/v2.0/token') return { status: 404, body: {} };

    const form = Object.fromEntries(new URLSearchParams(body));
    const answer = (() => {
      if (tenant !== tenantId) return entraError(400, 'invalid_request', 90002, `Tenant '${tenant ?? ''}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
      if (contentType === undefined || !contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
        return entraError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
      }
      if (failure !== undefined) {
        const spec = failure.spec;
        failure.remaining -= 1;
        if (failure.remaining <= 0) failure = undefined;
        return {
          status: spec.status,
          body: { error: spec.error, error_description: spec.description, error_codes: spec.errorCodes ?? [], timestamp: new Date(now()).toISOString() },
        };
      }
      if (form.grant_type !== 'client_credentials') return entraError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
      if (form.client_id !== clientId) {
        return entraError(400, 'unauthorized_client', 700016, `Application with identifier '${form.client_id ?? ''}' was not found in the directory '${tenantId}'.`);
      }
      if (form.scope !== scope) return entraError(400, 'invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid.`);
      if (form.client_secret !== undefined) {
        if (options.clientSecret === undefined || form.client_secret !== options.clientSecret) {
          return entraError(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
        }
      } else if (form.client_assertion !== undefined || form.client_assertion_type !== undefined) {
        const problem = assertionProblem(form, new URL(url.pathname, url.origin).toString());
        if (problem !== undefined) return entraError(401, 'invalid_client', 700027, `Client assertion failed signature validation. (${problem})`);
      } else {
        return entraError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
      }
      const issuedAtSeconds = Math.floor(now() / 1000);
      const resource = scope.replace(/\/\.default$/, '');
      const roles = options.roles ?? (/graph/i.test(resource) ? ['Mail.Send'] : ['SMTP.SendAsApp']);
      const claims = { aud: resource, iss: `https://sts.windows.net/${tenantId}/`, tid: tenantId, appid: clientId, roles, iat: issuedAtSeconds, nbf: issuedAtSeconds, exp: issuedAtSeconds + lifetimeSeconds, uti: randomBytes(8).toString('base64url') };
      const jwtPart = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
      const accessToken = `${jwtPart({ typ: 'JWT', alg: 'RS256' })}.${jwtPart(claims)}.${randomBytes(24).toString('base64url')}`;
      issued.set(accessToken, now() + lifetimeSeconds * 1000);
      issuedList.push(accessToken);
      return { status: 200, body: { token_type: 'Bearer', expires_in: lifetimeSeconds, ext_expires_in: lifetimeSeconds, access_token: accessToken } };
    })();
    const header = form.client_assertion === undefined ? undefined : decodeJwtPart(form.client_assertion.split('.')[0]);
    tokenRequests.push({ via, tenant, form, status: answer.status, ...(header === undefined ? {} : { assertionHeader: header }) });
    return answer;
  }

  function assertionProblem(form: Record<string, string>, tokenEndpoint: string): string | undefined {
    if (certificate === undefined || certificateThumbprint === undefined) return 'no certificate registered';
    if (form.client_assertion_type !== ASSERTION_TYPE) return 'wrong client_assertion_type';
    const parts = (form.client_assertion ?? '').split('.');
    if (parts.length !== 3) return 'not a JWT';
    const [headerPart = '', payloadPart = '', signaturePart = ''] = parts;
    const header = decodeJwtPart(headerPart);
    const payload = decodeJwtPart(payloadPart);
    if (header === undefined || payload === undefined) return 'undecodable JWT';
    if (header['x5t#S256'] !== certificateThumbprint) return 'x5t#S256 does not match the registered certificate';
    const signingInput = Buffer.from(`${headerPart}.${payloadPart}`);
    const signature = Buffer.from(signaturePart, 'base64url');
    const key = certificate.publicKey;
    let valid = false;
    if (header.alg === 'PS256') {
      valid = verify('sha256', signingInput, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
    } else if (header.alg === 'RS256') {
      valid = verify('sha256', signingInput, { key, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
    } else {
      return `unsupported alg ${String(header.alg)}`;
    }
    if (!valid) return 'signature does not verify';
    if (payload.aud !== tokenEndpoint) return `aud ${String(payload.aud)} is not ${tokenEndpoint}`;
    if (payload.iss !== clientId || payload.sub !== clientId) return 'iss/sub is not the client id';
    if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now()) return 'assertion expired';
    return undefined;
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    socketRequests += 1;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= 1_000_000) chunks.push(chunk);
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', `${options.https === false ? 'http' : 'https'}://${req.headers.host ?? 'localhost'}`);
      const answer = handle('socket', req.method ?? 'GET', url, req.headers['content-type'], Buffer.concat(chunks).toString('utf8'));
      res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(answer.body));
    });
  };

  const server: Server =
    options.https === false
      ? createHttpServer(onRequest)
      : createHttpsServer({ key: tlsFixture('server.key'), cert: tlsFixture('server.pem') }, onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const closeServer = async (): Promise<void> => {
    if (!server.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };

  const networkClient: INetworkModule = {
    async sendGetRequestAsync<T>(url: string): Promise<NetworkResponse<T>> {
      inProcessRequests += 1;
      if (isDown) throw new Error('fake token endpoint is down (ECONNREFUSED)');
      const answer = handle('in-process', 'GET', new URL(url), undefined, '');
      return { status: answer.status, headers: { 'content-type': 'application/json' }, body: answer.body as T };
    },
    async sendPostRequestAsync<T>(url: string, requestOptions?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
      inProcessRequests += 1;
      if (isDown) throw new Error('fake token endpoint is down (ECONNREFUSED)');
      const headers = requestOptions?.headers ?? {};
      const contentType = Object.entries(headers).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
      const answer = handle('in-process', 'POST', new URL(url), contentType, requestOptions?.body ?? '');
      return { status: answer.status, headers: { 'content-type': 'application/json' }, body: answer.body as T };
    },
  };

  return {
    authority: `${options.https === false ? 'http' : 'https'}://localhost:${port}`,
    port,
    tenantId,
    clientId,
    scope,
    get requests() {
      return socketRequests;
    },
    get inProcessRequests() {
      return inProcessRequests;
    },
    get getRequests() {
      return getRequests;
    },
    tokenRequests,
    issuedTokens: issuedList,
    isValid(accessToken: string, nowMs: number = now()): boolean {
      const expiresAtMs = issued.get(accessToken);
      return expiresAtMs !== undefined && expiresAtMs > nowMs;
    },
    setFailure(spec: ScriptedFailure | undefined): void {
      failure = spec === undefined ? undefined : { spec, remaining: spec.times ?? Number.POSITIVE_INFINITY };
    },
    async down(): Promise<void> {
      isDown = true;
      await closeServer();
    },
    asNetworkClient: () => networkClient,
    close: closeServer,
  };
}

/** The JSON of one JWT segment (header or payload), or undefined. */
export function decodeJwtPart(part: string | undefined): Record<string, unknown> | undefined {
  if (part === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function randomUUIDLike(): string {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
