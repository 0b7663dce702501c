/**
 * The pino logger: JSON lines on stdout, fields first, then a fixed event name (`msg`).
 *
 * Does: redact every secret-bearing path (pino's `*` matches one level only, so each
 * path is listed explicitly). Never: log message bodies, passwords, client secrets,
 * private keys or access tokens.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

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
  readonly pretty?: boolean;
  /** where lines go; defaults to stdout */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.pretty === true && options.destination === undefined) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname' } } });
  }
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: false }));
}
