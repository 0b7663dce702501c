/**
 * Graph failures in the shape delivery/classify.ts reads (code, responseCode, command, response).
 *
 * Does: turn an HTTP answer from Graph into a GraphError (code EGRAPH, responseCode = the HTTP
 *   status, response = "HTTP <status> <Graph error code>: <message>", retryAfterMs from
 *   Retry-After), and a network failure into one with the connection codes the SMTP transport
 *   uses (ECONNECTION, ETIMEDOUT, ETLS), so the same rule rows apply.
 * Never: put an access token, a URL's query (upload URLs carry a credential) or the message into
 *   an error text.
 * Assumes: Graph error bodies look like {"error":{"code":"ErrorAccessDenied","message":"..."}}.
 */

export type GraphErrorCode = 'EGRAPH' | 'ECONNECTION' | 'ETIMEDOUT' | 'ETLS';

export class GraphError extends Error {
  readonly code: GraphErrorCode;
  /** the HTTP status (undefined for network failures) */
  readonly responseCode: number | undefined;
  /** the Graph step, e.g. "sendMail", "createUploadSession" */
  readonly command: string;
  readonly response: string;
  /** Graph's own error code, e.g. ErrorSendAsDenied */
  readonly graphCode: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(fields: { code: GraphErrorCode; responseCode?: number; command: string; response: string; graphCode?: string; retryAfterMs?: number }) {
    super(`Graph ${fields.command}: ${fields.response}`);
    this.name = 'GraphError';
    this.code = fields.code;
    this.responseCode = fields.responseCode;
    this.command = fields.command;
    this.response = fields.response;
    this.graphCode = fields.graphCode;
    this.retryAfterMs = fields.retryAfterMs;
  }
}

/** Retry-After as delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function graphErrorBody(body: unknown): { code: string | undefined; message: string | undefined } {
  const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  if (typeof error !== 'object' || error === null) return { code: undefined, message: undefined };
  const { code, message } = error as { code?: unknown; message?: unknown };
  return { code: typeof code === 'string' ? code : undefined, message: typeof message === 'string' ? message.slice(0, 300) : undefined };
}

export function httpError(command: string, status: number, body: unknown, retryAfter: number | undefined, extra?: string): GraphError {
  const { code, message } = graphErrorBody(body);
  const text = [`HTTP ${status}`, code].filter(Boolean).join(' ') + (message === undefined ? '' : `: ${message}`) + (extra === undefined ? '' : ` (${extra})`);
  return new GraphError({
    code: 'EGRAPH',
    responseCode: status,
    command,
    response: text.replace(/[\r\n]+/g, ' '),
    ...(code === undefined ? {} : { graphCode: code }),
    ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
  });
}

const CERT = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|altname|certificate/i;
const TIMEOUT = /TIMEOUT/i;

/** undici/socket failure → a GraphError with the SMTP transport's connection codes. */
export function networkError(command: string, err: unknown): GraphError {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const code = [e.code, e.cause?.code].find((c): c is string => typeof c === 'string') ?? '';
  const message = [e.cause?.message, e.message].find((m): m is string => typeof m === 'string') ?? String(err);
  const kind: GraphErrorCode = CERT.test(`${code} ${message}`) ? 'ETLS' : TIMEOUT.test(code) || (err as Error)?.name === 'TimeoutError' ? 'ETIMEDOUT' : 'ECONNECTION';
  const text = `${code === '' ? '' : `${code} `}${message}`.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s]+/gi, '(url)').slice(0, 300);
  return new GraphError({ code: kind, command, response: `network error: ${text}` });
}
