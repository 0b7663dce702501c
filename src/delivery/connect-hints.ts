/**
 * What `validate --connect` tells an admin about a failed step: the error in one line and a
 * hint they can act on (tls.ca / tls.servername for certificate errors, auth.user/auth.pass for
 * 535, the Microsoft 365 tenant settings for 5.7.139 / 5.7.30 / refused tokens, whose words come
 * from classify.ts: Microsoft 365's replies are known in one place).
 * Never: includes a secret (the caller scrubs every line as well).
 */
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { SmtpUpstreamConfig as UpstreamConfig } from '../config/schema.js';
import { M365_AUTH_RULES, M365_TOKEN_REFUSED_ADVICE, toErrorShape } from './classify.js';

/** The fields of a nodemailer or socket error that the hints read. */
export interface SmtpErrorShape {
  readonly code?: unknown;
  readonly originalCode?: unknown;
  readonly responseCode?: unknown;
  readonly response?: unknown;
  readonly command?: unknown;
  readonly message?: unknown;
}

export const firstLine = (text: string): string => text.split(/\r?\n/)[0] ?? '';

const UNTRUSTED_CA_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

export function errorCodeOf(err: SmtpErrorShape | undefined): string | undefined {
  const original = err?.originalCode;
  if (typeof original === 'string') return original;
  return typeof err?.code === 'string' ? err.code : undefined;
}

export function errorText(err: SmtpErrorShape | undefined): string {
  if (err === undefined) return 'connection closed';
  if (typeof err.response === 'string' && err.response !== '') return firstLine(err.response);
  const code = errorCodeOf(err);
  let message = firstLine(typeof err.message === 'string' ? err.message : 'failed');
  // OpenSSL's "80CC…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:…" → its reason
  const openssl = /SSL routines:[^:]*:([^:]+)/.exec(message);
  if (openssl?.[1] !== undefined) message = openssl[1];
  return code === undefined || message.includes(code) ? message : `${code}: ${message}`;
}

export function tlsHint(upstream: UpstreamConfig, err: SmtpErrorShape | undefined): string | undefined {
  const code = errorCodeOf(err) ?? '';
  const message = typeof err?.message === 'string' ? err.message : '';
  if (UNTRUSTED_CA_CODES.has(code) || /self[- ]signed|unable to (verify|get local issuer)/i.test(message)) {
    return 'the certificate is not signed by a CA this host trusts: set tls.ca to the PEM file of the CA that signed it';
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /altnames|does not match certificate/i.test(message)) {
    return `the certificate does not name "${upstream.tls.servername ?? upstream.host}": set tls.servername to a name in the certificate (or use that name as host)`;
  }
  if (code === 'CERT_HAS_EXPIRED' || /certificate has expired/i.test(message)) {
    return "the server's certificate has expired (or this host's clock is wrong)";
  }
  if (/wrong version number|unknown protocol|packet length too long/i.test(message)) {
    return 'the server does not speak TLS right away on this port: use security "starttls-required" for ports 587/25 and "tls" for 465';
  }
  if (/unsupported protocol|protocol version|no protocols available/i.test(message)) {
    return `no common TLS version: the server does not accept tls.minVersion ${upstream.tls.minVersion}`;
  }
  return undefined;
}

/** Where the server offers no STARTTLS: what security fits (implicit TLS only on port 465). */
export function noStarttlsHint(upstream: UpstreamConfig): string {
  if ((upstream.auth.type === 'login' || upstream.auth.type === 'plain') && upstream.port !== 465) {
    // a password is only sent over TLS (connection-options.ts): "none"/"starttls" alone do not help
    const why = upstream.security === 'starttls' ? ' (security "starttls" with login/plain works as "starttls-required")' : '';
    return `the server does not offer STARTTLS on port ${upstream.port}, and the password is only sent over TLS${why}; nothing was sent. For a plaintext server you trust, set security "starttls" and auth.allowPlaintext: true (the password then goes in clear); security "tls" is implicit TLS, for port 465 only`;
  }
  if (upstream.port === 465) return 'the server does not offer STARTTLS: port 465 speaks TLS at once, set security "tls"';
  return `the server does not offer STARTTLS on port ${upstream.port}: if this plaintext server is one you trust (a relay inside your network), set security "none" or "starttls" (STARTTLS only when offered); security "tls" is implicit TLS, for port 465 only`;
}

/**
 * A server that demands a client certificate and gets none ends the session right after the TLS
 * handshake (TLS 1.3 reports it later, as a closed connection at the greeting or EHLO).
 */
export function clientCertHint(upstream: UpstreamConfig, err: SmtpErrorShape | undefined): string | undefined {
  if (upstream.tls.cert !== undefined || upstream.security === 'none') return undefined;
  const message = typeof err?.message === 'string' ? err.message : '';
  const code = errorCodeOf(err) ?? '';
  if (/certificate required|alert number 116|closed unexpectedly|socket hang up|handshake failure/i.test(message) || code === 'ECONNRESET') {
    return 'the server closed the session during or right after TLS: it may require a client certificate; set tls.cert and tls.key (PEM files) for this upstream';
  }
  return undefined;
}

export function withHint(text: string, hint: string | undefined): string {
  return hint === undefined ? text : `${text} — ${hint}`;
}

export function handshakeFailureHint(upstream: UpstreamConfig, err: SmtpErrorShape | undefined): string | undefined {
  const message = typeof err?.message === 'string' ? err.message : '';
  if (/greeting never received/i.test(message) || (err?.code === 'ETIMEDOUT' && /greeting/i.test(message))) {
    return upstream.security === 'tls'
      ? 'no SMTP greeting: is this an SMTP port?'
      : `no greeting within ${upstream.timeouts.greetingSeconds} s: for implicit TLS (port 465) set security "tls"`;
  }
  return tlsHint(upstream, err) ?? clientCertHint(upstream, err);
}

export function authHint(upstream: UpstreamConfig, connection: SMTPConnection, err: SmtpErrorShape): string | undefined {
  const text = `${typeof err.response === 'string' ? err.response : ''} ${typeof err.message === 'string' ? err.message : ''}`;
  const responseCode = typeof err.responseCode === 'number' ? err.responseCode : undefined;
  const m365 = M365_AUTH_RULES.find((rule) => rule.match(toErrorShape(err)));
  if (m365 !== undefined) return m365.decision.reason;
  if (responseCode === 530 || /must issue a STARTTLS/i.test(text)) {
    return 'the server wants TLS before AUTH: use security "starttls-required" (or "tls" on port 465)';
  }
  if (responseCode === 504 || /5\.5\.4|unrecognized authentication|not supported/i.test(text)) {
    return `the server does not accept this AUTH method${connection.allowsAuth ? '' : ' (it advertised no AUTH at all)'}`;
  }
  if (responseCode === 535 || responseCode === 534) {
    if (upstream.auth.type === 'oauth2') {
      return M365_TOKEN_REFUSED_ADVICE;
    }
    return 'check auth.user/auth.pass';
  }
  if (!connection.allowsAuth) return 'the server did not advertise AUTH';
  return undefined;
}

export function describeSocketError(err: unknown, upstream: UpstreamConfig): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'ECONNREFUSED: nothing listens on this port — check host and port (and that the server is up)';
    case 'ETIMEDOUT':
      return `ETIMEDOUT: no answer within ${upstream.timeouts.connectSeconds} s — a firewall may drop the traffic, or the host is down`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${code}: cannot resolve "${upstream.host}" — check host and this machine's DNS`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${code}: no route to the host — check the network (and upstream.proxy if one is needed)`;
    default:
      return code === undefined || message.includes(code) ? message : `${code}: ${message}`;
  }
}
