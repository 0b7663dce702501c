/**
 * How an upstream's config maps onto nodemailer's connection options: host, EHLO name,
 * timeouts, TLS mode and TLS material. One mapping, used by the delivery transport and by
 * `validate --connect`, so a check tests exactly what delivery will do.
 */
import type { SmtpUpstreamConfig as UpstreamConfig } from '../config/schema.js';
import type { TlsMaterial } from './tls-files.js';

export interface SmtpConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly connectionTimeout: number;
  readonly greetingTimeout: number;
  readonly socketTimeout: number;
  readonly secure: boolean;
  readonly requireTLS?: boolean;
  readonly ignoreTLS?: boolean;
  readonly tls: {
    readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
    readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3';
    readonly rejectUnauthorized: boolean;
    readonly ca?: string;
    readonly servername?: string;
    readonly cert?: string;
    readonly key?: string;
  };
}

/** Whether STARTTLS is required in effect: a secret (token or password) never goes over plaintext unless auth.allowPlaintext says so. */
function starttlsRequired(upstream: UpstreamConfig): boolean {
  if (upstream.security === 'starttls-required') return true;
  if (upstream.security !== 'starttls') return false;
  const auth = upstream.auth;
  return auth.type === 'oauth2' || ((auth.type === 'login' || auth.type === 'plain') && !auth.allowPlaintext);
}

/** `security` → nodemailer's TLS switches (see starttlsRequired). */
function tlsMode(upstream: UpstreamConfig): Pick<SmtpConnectionOptions, 'secure' | 'requireTLS' | 'ignoreTLS'> {
  const requireTls = starttlsRequired(upstream);
  switch (upstream.security) {
    case 'none':
      return { secure: false, ignoreTLS: true };
    case 'tls':
      return { secure: true };
    case 'starttls':
    case 'starttls-required':
      // starttls alone is opportunistic: STARTTLS when the server offers it
      return requireTls ? { secure: false, requireTLS: true } : { secure: false };
  }
}

export function smtpConnectionOptions(upstream: UpstreamConfig, defaultHostname: string, tlsFiles: TlsMaterial): SmtpConnectionOptions {
  return {
    host: upstream.host,
    port: upstream.port,
    name: upstream.hostname ?? defaultHostname,
    // nodemailer 10's connectionTimeout is a deadline for the whole setup (connect, TLS, greeting,
    // STARTTLS) and cuts greetingTimeout short; the TCP connect is opened by open-socket.ts and
    // bounded by connectSeconds alone, so this deadline gives the greeting its full greetingSeconds
    connectionTimeout: (upstream.timeouts.connectSeconds + upstream.timeouts.greetingSeconds) * 1000,
    greetingTimeout: upstream.timeouts.greetingSeconds * 1000,
    socketTimeout: upstream.timeouts.socketSeconds * 1000,
    ...tlsMode(upstream),
    tls: {
      minVersion: upstream.tls.minVersion,
      ...(upstream.tls.maxVersion === undefined ? {} : { maxVersion: upstream.tls.maxVersion }),
      rejectUnauthorized: upstream.tls.rejectUnauthorized,
      ...(tlsFiles.ca === undefined ? {} : { ca: tlsFiles.ca }),
      ...(upstream.tls.servername === undefined ? {} : { servername: upstream.tls.servername }),
      ...(tlsFiles.cert === undefined ? {} : { cert: tlsFiles.cert }),
      ...(tlsFiles.key === undefined ? {} : { key: tlsFiles.key }),
    },
  };
}
