/**
 * msal's network client, built on undici, for token requests through an HTTP(S) proxy and/or
 * to a token endpoint signed by a private CA (TLS inspection, tests).
 *
 * Does: send msal's GET/POST requests with undici `fetch` through one dispatcher:
 * `ProxyAgent({uri, requestTls:{ca}})` when a proxy is set, otherwise `Agent({connect:{ca}})`;
 * abort each request after `timeoutMs`; hand msal `{status, headers, body}` with the JSON body.
 * Never: put the proxy URL (it may carry user:password) or request bodies (client secret,
 * client assertion) into errors; follow redirects (a token POST must not be replayed elsewhere).
 * Assumes: msal-node 7 dropped `proxyUrl`/`customAgentOptions` (their node config has only a networkClient hook), so this is the
 * only way to reach Entra through a proxy; `ca` is PEM text (config holds a path: the caller
 * reads the file) and, when given, replaces the default trust store for these requests only.
 */
import { AuthError, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';
import { Agent, ProxyAgent, fetch, type Dispatcher } from 'undici';

export interface UndiciNetworkClientOptions {
  readonly proxyUrl?: string;
  /** PEM text of the CA(s) to trust for the token endpoint (and for an https:// proxy) */
  readonly ca?: string;
  /** per request; default 10 s */
  readonly timeoutMs?: number;
}

export type ClosableNetworkModule = INetworkModule & { close(): Promise<void> };

export const DEFAULT_TOKEN_REQUEST_TIMEOUT_MS = 10_000;

export function createUndiciNetworkClient(opts: UndiciNetworkClientOptions = {}): ClosableNetworkModule {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TOKEN_REQUEST_TIMEOUT_MS;
  const tls = opts.ca === undefined ? {} : { ca: opts.ca };
  const dispatcher: Dispatcher =
    opts.proxyUrl === undefined
      ? new Agent({ connect: tls })
      : new ProxyAgent({ uri: opts.proxyUrl, requestTls: tls, proxyTls: tls });

  async function send<T>(url: string, method: 'GET' | 'POST', options: NetworkRequestOptions | undefined): Promise<NetworkResponse<T>> {
    let response;
    try {
      response = await fetch(url, {
        method,
        ...(options?.headers === undefined ? {} : { headers: options.headers }),
        ...(method === 'POST' ? { body: options?.body ?? '' } : {}),
        dispatcher,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new AuthError('network_error', '', `token endpoint request failed: ${describeFetchFailure(err, timeoutMs)} (${method} ${originOf(url)})`);
    }
    const text = await response.text();
    let body: unknown = {};
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new AuthError('token_parsing_error', '', `token endpoint answered HTTP ${response.status} with a body that is not JSON (${method} ${originOf(url)})`);
      }
    }
    return { status: response.status, headers: Object.fromEntries(response.headers), body: body as T };
  }

  return {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>(url, 'GET', options),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => send<T>(url, 'POST', options),
    close: () => dispatcher.close(),
  };
}

/** scheme://host:port only: never the path or query of someone else's URL */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

/** undici wraps the socket error in `cause`; keep its code and message (never a URL with credentials). */
function describeFetchFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const message = typeof cause?.message === 'string' ? cause.message : err instanceof Error ? err.message : String(err);
  return stripUrls(code === undefined ? message : `${code} ${message}`);
}

function stripUrls(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s]+/gi, '(url)');
}
