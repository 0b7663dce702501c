/**
 * HTTPS to Microsoft Graph for one upstream, over undici.
 *
 * Does: send one request at a time per slot, at most `maxConcurrent` at once (Graph allows 4
 *   concurrent requests per app per mailbox: "Application is over its MailboxConcurrency limit");
 *   add the bearer token (from the upstream's TokenSource) to Graph calls, never to upload URLs
 *   (they carry their own credential); on a 401 fetch a new token once and resend once; on 429,
 *   503 or 504 with a Retry-After of at most `maxInlineWaitMs` wait and resend (twice at most),
 *   otherwise hand the status to the caller; go through `upstream.proxy` (ProxyAgent) and trust
 *   `tls.ca` when set.
 * Never: follow redirects; log or return a token, a request body or an upload URL.
 * Assumes: answers are JSON or empty; every request is bounded by the upstream's timeouts.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../../core/clock.js';
import type { TokenSource } from '../credentials/token-source.js';
import { httpError, networkError, retryAfterMs, type GraphError } from './errors.js';
import { GRAPH_MAX_INLINE_WAIT_MS } from '../../core/delays.js';

export interface GraphHttpOptions {
  readonly proxy?: string;
  readonly tls: { readonly ca?: string; readonly cert?: string; readonly key?: string; readonly servername?: string; readonly rejectUnauthorized: boolean; readonly minVersion: 'TLSv1.2' | 'TLSv1.3' };
  readonly connectTimeoutMs: number;
  /** longest wait for an answer (headers, then each body chunk) */
  readonly socketTimeoutMs: number;
  readonly tokens: TokenSource;
  readonly clock: Clock;
  /** Graph: 4 concurrent requests per app per mailbox */
  readonly maxConcurrent?: number;
  /** a Retry-After up to this long is waited out here; longer ones go back to the spool (default 30 s) */
  readonly maxInlineWaitMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** called once per token refresh forced by a 401 (logging) */
  readonly onTokenRefused?: (command: string) => void;
  readonly onThrottled?: (command: string, status: number, waitMs: number) => void;
}

export interface GraphRequest {
  /** the step's name in errors and logs, e.g. "sendMail" */
  readonly command: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  readonly url: string;
  readonly body?: Buffer | string;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** false for upload URLs: they must not carry the bearer token */
  readonly bearer: boolean;
}

export interface GraphAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
}

export const GRAPH_MAX_CONCURRENT_PER_MAILBOX = 4;
const RETRYABLE_STATUS = new Set([429, 503, 504]);
const MAX_INLINE_RETRIES = 2;

/** A counting semaphore (FIFO). */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async take(): Promise<() => void> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free += 1;
    };
  }
}

export class GraphHttp {
  /** undici is loaded on the first request, so a relay without a graph upstream never loads it */
  private client: Promise<{ readonly dispatcher: Dispatcher; readonly request: typeof import('undici').request }> | undefined;
  private readonly connect: () => Promise<{ readonly dispatcher: Dispatcher; readonly request: typeof import('undici').request }>;
  private readonly slots: Slots;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: GraphHttpOptions) {
    const tls = {
      ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }),
      ...(options.tls.cert === undefined ? {} : { cert: options.tls.cert }),
      ...(options.tls.key === undefined ? {} : { key: options.tls.key }),
      ...(options.tls.servername === undefined ? {} : { servername: options.tls.servername }),
      rejectUnauthorized: options.tls.rejectUnauthorized,
      minVersion: options.tls.minVersion,
    };
    const timeouts = { headersTimeout: options.socketTimeoutMs, bodyTimeout: options.socketTimeoutMs, connectTimeout: options.connectTimeoutMs };
    this.connect = async () => {
      const { Agent, ProxyAgent, request } = await import('undici');
      const dispatcher =
        options.proxy === undefined
          ? new Agent({ connect: { ...tls, timeout: options.connectTimeoutMs }, ...timeouts })
          : new ProxyAgent({ uri: options.proxy, requestTls: tls, proxyTls: tls, ...timeouts });
      return { dispatcher, request };
    };
    this.slots = new Slots(options.maxConcurrent ?? GRAPH_MAX_CONCURRENT_PER_MAILBOX);
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** One request; resolves with any HTTP answer the caller may inspect, throws GraphError for the rest. */
  async send(req: GraphRequest, accept: (status: number) => boolean = (s) => s >= 200 && s < 300, extra?: string): Promise<GraphAnswer> {
    let refreshed = false;
    let forceRefresh = false;
    for (let attempt = 0; ; attempt += 1) {
      const answer = await this.once(req, forceRefresh);
      forceRefresh = false;
      if (accept(answer.status)) return answer;
      if (answer.status === 401 && req.bearer && !refreshed) {
        refreshed = true;
        forceRefresh = true;
        this.options.onTokenRefused?.(req.command);
        continue;
      }
      const wait = retryAfterMs(answer.headers['retry-after'], this.options.clock.now());
      if (RETRYABLE_STATUS.has(answer.status) && wait !== undefined && wait <= (this.options.maxInlineWaitMs ?? GRAPH_MAX_INLINE_WAIT_MS) && attempt < MAX_INLINE_RETRIES) {
        this.options.onThrottled?.(req.command, answer.status, wait);
        await this.sleep(wait);
        continue;
      }
      throw httpError(req.command, answer.status, answer.body, wait, extra);
    }
  }

  private async once(req: GraphRequest, forceRefresh: boolean): Promise<GraphAnswer> {
    const headers: Record<string, string> = { ...(req.headers ?? {}) };
    if (req.contentType !== undefined) headers['content-type'] = req.contentType;
    if (req.bearer) {
      // a token failure is the TokenSource's RelayError E_TOKEN: it goes up as it is
      const token = await this.options.tokens.getToken(forceRefresh ? { forceRefresh: true } : undefined);
      headers.authorization = `Bearer ${token.accessToken}`;
    }
    const { dispatcher, request } = await (this.client ??= this.connect());
    const release = await this.slots.take();
    try {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(req.url, {
          method: req.method,
          headers,
          ...(req.body === undefined ? {} : { body: req.body }),
          dispatcher,
        });
      } catch (err) {
        throw networkError(req.command, err);
      }
      let text: string;
      try {
        text = await res.body.text();
      } catch (err) {
        throw networkError(req.command, err);
      }
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.statusCode, headers: res.headers, body };
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    if (this.client !== undefined) await (await this.client).dispatcher.close();
  }
}

export type { GraphError };
