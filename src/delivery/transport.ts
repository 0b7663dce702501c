/**
 * The smtp protocol's transport: one pool of SMTP connections per upstream (smtp-raw.ts, the
 * raw sender over nodemailer's SMTPConnection).
 *
 * Does: send a spooled message's final bytes unchanged (raw pass-through, explicit
 *   envelope with SIZE and BODY=8BITMIME), map nodemailer's result to a SendReport
 *   (partial RCPT rejections included), and rethrow nodemailer's errors (code, responseCode,
 *   command, response) for delivery/classify.ts. With OAuth2, an EAUTH triggers one token
 *   refresh and one resend on the same upstream. With receiveBeforeSend, each new connection
 *   first gets the cached POP3 login (pop3-before-smtp.ts). `verify()` runs smtp-verify.ts with the same
 *   options, credentials and scrubber.
 * Never: send unauthenticated when auth is configured (forceAuth); put a password or token
 *   into an error message, a log line or the transcript; log message content.
 * Assumes: the upstream config is validated; `raw` paths are our own spool files; addresses
 *   in the envelope were already parsed by smtp-server.
 *
 * Verified in nodemailer 10.6.0 source (node_modules/nodemailer/dist/esm):
 * - TCP_NODELAY: nodemailer's SMTPConnection sets it itself on every connection, plain, TLS or proxied
 *   (smtp-connection/index.js:797-802, `_onConnect`: "Nagle would only hold a write back ...
 *   40ms on every message"), so nothing is needed here. The integration test
 *   "sets TCP_NODELAY on the upstream socket" guards it against a nodemailer upgrade.
 * - Each pooled connection builds its own XOAuth2 (smtp-raw.ts, as nodemailer's
 *   smtp-pool/pool-resource.js does), which asks the provisionCallback for a token; a failed
 *   login closes that connection. So the resend after
 *   an EAUTH runs on a new connection whose XOAuth2 asks again, and gets the refreshed token
 *   (tested in test/integration/delivery/transport-oauth2.test.ts).
 */
import { format as formatLine } from 'node:util';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { SmtpUpstreamConfig as UpstreamConfig } from '../config/schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { Logger, OutgoingMessage, RecipientRejection, SendReport, UpstreamTransport } from '../core/ports.js';
import type { TokenSource } from './credentials/token-source.js';
import { smtpConnectionOptions } from './connection-options.js';
import { saslOptions, type SaslOptions } from './sasl.js';
import { SecretScrubber } from './secret-scrubber.js';
import { createReceiveBeforeSend, pop3LoginOptions } from './pop3-before-smtp.js';
import { createRawSmtpPool, type RawSmtpAuth } from './smtp-raw.js';
import { verifySmtpUpstream } from './smtp-verify.js';
import { readTlsMaterial } from './tls-files.js';

export interface SmtpTransportDeps {
  readonly logger: Logger;
  /** EHLO name when the upstream sets no `hostname` (listen.hostname) */
  readonly defaultHostname: string;
  /** required when upstream.auth.type is oauth2 */
  readonly credentials?: TokenSource;
  /** for verify(): how long each step took (default: the system clock) */
  readonly clock?: Clock;
  /** 'detail' adds the SMTP transcript (commands and replies, AUTH masked, never the message) at debug level */
  readonly trace?: 'off' | 'summary' | 'detail';
}

/** Messages per pooled connection before it is recycled (nodemailer's default, kept explicit). */
const MAX_MESSAGES_PER_CONNECTION = 100;

type NodemailerLogger = Exclude<NonNullable<SMTPConnection.Options['logger']>, boolean>;

/**
 * A bunyan-style logger for nodemailer's transcript that drops message content
 * (`tnx: 'message'` at debug level; nodemailer only emits those with `debug: true`, which we
 * never set, so this is a second line of defence).
 */
function transcriptLogger(parent: Logger): NodemailerLogger {
  // log.trace "detail" asks for the transcript whatever log.level says: its lines go out at debug
  // level through a child that logs debug even when the relay logs info or less (a child level
  // only ever lowers the threshold here, never raises it).
  const logger = parent.levelVal > parent.levels.values['debug']! ? parent.child({}, { level: 'debug' }) : parent;
  const forward =
    (level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal') =>
    (...args: unknown[]): void => {
      const first = args[0];
      const entry = typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : undefined;
      if (entry !== undefined && entry['tnx'] === 'message' && (level === 'debug' || level === 'trace')) return;
      const rest = entry === undefined ? args : args.slice(1);
      const [format, ...values] = rest;
      // one event, at debug: a failure the transcript shows is also thrown, and logged where it is decided
      logger.debug({ ...(entry ?? {}), line: formatLine(typeof format === 'string' ? format : '', ...values) }, 'smtp.transcript');
    };
  return {
    trace: forward('trace'),
    debug: forward('debug'),
    info: forward('info'),
    warn: forward('warn'),
    error: forward('error'),
    fatal: forward('fatal'),
  } as NodemailerLogger;
}

function toAddress(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { address?: unknown }).address === 'string') {
    return (value as { address: string }).address;
  }
  return String(value);
}

interface RejectedError {
  readonly recipient?: unknown;
  readonly responseCode?: unknown;
  readonly response?: unknown;
  readonly message?: unknown;
}

function toReport(info: { accepted?: unknown[]; rejected?: unknown[]; rejectedErrors?: unknown[]; response?: unknown }): SendReport {
  const errors = (info.rejectedErrors ?? []) as RejectedError[];
  const rejected: RecipientRejection[] = (info.rejected ?? []).map((entry) => {
    const address = toAddress(entry);
    const error = errors.find((e) => toAddress(e.recipient) === address);
    return {
      address,
      responseCode: typeof error?.responseCode === 'number' ? error.responseCode : undefined,
      response: typeof error?.response === 'string' ? error.response : typeof error?.message === 'string' ? error.message : '',
    };
  });
  return {
    accepted: (info.accepted ?? []).map(toAddress),
    rejected,
    response: typeof info.response === 'string' ? info.response : '',
  };
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

export function createSmtpTransport(upstream: UpstreamConfig, deps: SmtpTransportDeps): UpstreamTransport {
  const log = deps.logger.child({ upstream: upstream.name });
  const tlsFiles = readTlsMaterial(upstream);

  /** what to scrub from error texts and verify steps: the configured secrets and the OAuth2 tokens handed out */
  const scrubber = new SecretScrubber();
  const auth = upstream.auth;
  if (auth.type === 'oauth2') {
    for (const secret of [auth.clientSecret, auth.clientCertificate?.privateKey]) if (secret !== undefined) scrubber.add(auth.user, secret);
  }
  // every configured login is forced: nodemailer's transport skips AUTH silently when EHLO does
  // not list it (unless forceAuth); smtp-raw.ts logs in regardless, so the server refuses instead
  let rawAuth: RawSmtpAuth | undefined;
  /** SASL handlers nodemailer runs instead of its own (PLAIN with an authorization id) */
  let customAuth: SaslOptions['customAuth'];
  if (auth.type === 'login' || auth.type === 'plain' || auth.type === 'ntlm') {
    scrubber.add(auth.user, auth.pass, auth.type === 'plain' ? auth.authzid : undefined);
    const sasl = saslOptions(auth);
    rawAuth = { type: 'password', method: sasl.authMethod, user: auth.user, pass: auth.pass };
    customAuth = sasl.customAuth;
  } else if (auth.type === 'oauth2') {
    const credentials = deps.credentials;
    if (credentials === undefined) throw new Error(`upstream "${upstream.name}": oauth2 needs a TokenSource (deps.credentials)`);
    rawAuth = {
      type: 'oauth2',
      user: auth.user,
      // asked once per pooled connection (each connection has its own XOAuth2)
      provisionCallback: (_user, renew, callback) => {
        credentials.getToken(renew ? { forceRefresh: true } : undefined).then(
          (token) => {
            scrubber.addToken(auth.user, token.accessToken);
            callback(null, token.accessToken, token.expiresOnMs);
          },
          // nodemailer rewrites the code of the error it gets to EAUTH: wrap ours so send() can unwrap it
          (err: unknown) => callback(new Error('OAuth2 access token unavailable', { cause: err })),
        );
      },
    };
  }

  // POP3-before-SMTP: one cached login (validMinutes) covers every connection opened meanwhile
  const pop3 = upstream.receiveBeforeSend;
  if (pop3 !== undefined) scrubber.add(pop3.user, pop3.pass);
  const receiveBeforeSend = pop3 === undefined ? undefined : createReceiveBeforeSend(pop3LoginOptions(upstream, pop3, tlsFiles.ca), deps.clock ?? systemClock);

  const detail = deps.trace === 'detail';
  const pool = createRawSmtpPool({
    // Exchange Online allows 3 concurrent connections per mailbox (more get 432 4.3.2):
    // the config default for maxConnections is 3.
    maxConnections: upstream.maxConnections,
    maxMessages: MAX_MESSAGES_PER_CONNECTION,
    // host, port, EHLO name, timeouts, TLS (oauth2 always requires TLS: connection-options.ts)
    connection: {
      ...smtpConnectionOptions(upstream, deps.defaultHostname, tlsFiles),
      // the transcript (commands and replies, AUTH masked) without the message body: transactionLog
      // logs client/server lines; debug (which adds the body) stays off
      debug: false,
      transactionLog: detail,
      logger: detail ? transcriptLogger(log) : false,
      ...(customAuth === undefined ? {} : { customAuth: customAuth as unknown as SMTPConnection.Options['customAuth'] }),
    },
    proxy: upstream.proxy,
    connectSeconds: upstream.timeouts.connectSeconds,
    auth: rawAuth,
    beforeConnect: receiveBeforeSend === undefined ? undefined : () => receiveBeforeSend.ensure(),
  });

  const sendOnce = async (message: OutgoingMessage): Promise<SendReport> => {
    const info = await pool.send(
      {
        from: message.envelope.mailFrom, // '' is the null sender: MAIL FROM:<>
        to: message.envelope.rcptTo,
        size: message.sizeBytes,
        use8BitMime: message.envelope.bodyType === '8bitmime',
      },
      message.raw,
    );
    return toReport(info as unknown as Parameters<typeof toReport>[0]);
  };

  const send = async (message: OutgoingMessage): Promise<SendReport> => {
    try {
      return await sendOnce(message);
    } catch (err) {
      const tokenFailure = (err as { cause?: unknown }).cause;
      if (auth.type === 'oauth2' && errorCode(err) === 'EAUTH' && tokenFailure !== undefined) {
        throw tokenFailure; // the TokenSource failed (its RelayError), not the upstream
      }
      if (auth.type !== 'oauth2' || errorCode(err) !== 'EAUTH' || deps.credentials === undefined) {
        scrubber.scrubError(err);
        throw err;
      }
      scrubber.scrubError(err);
      log.info({ qid: message.qid, responseCode: (err as { responseCode?: unknown }).responseCode }, 'upstream.token-refresh');
      const fresh = await deps.credentials.getToken({ forceRefresh: true });
      scrubber.addToken(auth.user, fresh.accessToken);
      try {
        return await sendOnce(message);
      } catch (second) {
        scrubber.scrubError(second);
        throw second;
      }
    }
  };

  return {
    name: upstream.name,
    send,
    verify: (onStep) =>
      verifySmtpUpstream(upstream, { clock: deps.clock ?? systemClock, defaultHostname: deps.defaultHostname, credentials: deps.credentials, scrubber }, onStep),
    async close() {
      pool.close();
    },
  };
}
