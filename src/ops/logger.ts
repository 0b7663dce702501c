/**
 * The pino logger: JSON lines on stdout, fields first, then a fixed event name (`msg`).
 *
 * Does: redact every secret-bearing path (pino's `*` matches one level only, so each
 * path is listed explicitly); write level names ("info", "warn"), not pino's numbers; with
 * `format: 'line'` write one human line per event instead (ops/log-line.ts, no extra package,
 * so it works in a production install). Never: log message bodies, passwords, client secrets,
 * private keys or access tokens.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { formatLogLine } from './log-line.js';

/** Every path where a secret could sit in a logged object. */
export const REDACT_PATHS = [
  'pass',
  'password',
  'clientSecret',
  'privateKey',
  'accessToken',
  'token',
  'auth.pass',
  'auth.clientSecret',
  'auth.accessToken',
  'auth.clientCertificate.privateKey',
  'config.upstreams[*].auth.pass',
  'config.upstreams[*].auth.clientSecret',
  'config.upstreams[*].auth.clientCertificate.privateKey',
  'upstreams[*].auth.pass',
  'upstreams[*].auth.clientSecret',
  'upstreams[*].auth.clientCertificate.privateKey',
  'upstream.auth.pass',
  'upstream.auth.clientSecret',
  'upstream.auth.clientCertificate.privateKey',
  'err.config.auth',
  'headers.authorization',
  'headers.Authorization',
];

export interface LoggerOptions {
  readonly level?: string;
  /** json (default): JSON lines; line: one human line per event (log.format, start --pretty) */
  readonly format?: 'json' | 'line';
  /** where lines go; defaults to stdout */
  readonly destination?: DestinationStream;
}

/** Passes each JSON line through the human formatter on its way to `target`. */
function lineDestination(target: DestinationStream): DestinationStream {
  const flushable = target as DestinationStream & { flush?: (cb?: (err?: Error) => void) => void; flushSync?: () => void };
  return Object.assign(
    { write: (chunk: string) => void target.write(formatLogLine(chunk)) },
    flushable.flush !== undefined ? { flush: (cb?: (err?: Error) => void) => flushable.flush?.(cb) } : {},
    flushable.flushSync !== undefined ? { flushSync: () => flushable.flushSync?.() } : {},
  );
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(base, options.format === 'line' ? lineDestination(destination) : destination);
}
