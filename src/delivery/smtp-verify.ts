/**
 * The SMTP transport's `verify()`: talks to one upstream step by step, the way the transport
 * sends (same host, port, security, TLS material, EHLO name, timeouts, credentials), and
 * reports each step: pop3 or imap (the login before SMTP, when receiveBeforeSend is set), connect, greeting, ehlo, tls, token (oauth2), auth, quit.
 *
 * Does: open the TCP connection itself (directly or through upstream.proxy) so the connect step
 *   is measured and reported on its own; then hand the socket to nodemailer's SMTPConnection and
 *   read the server's replies from its transaction log; explain each failure with a hint an admin
 *   can act on (connect-hints.ts).
 * Never: report a password, a client secret, a private key or an access token (every detail goes
 *   through the upstream's SecretScrubber, which knows them and their base64/SASL forms); send
 *   mail; wait without a bound (every step is limited by the upstream's timeouts); throw for a
 *   failed step.
 * Assumes: the config is validated. Connection options come from connection-options.ts, the same
 *   mapping the transport uses; the token comes from the upstream's own TokenSource.
 */
import net from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import XOAuth2 from 'nodemailer/lib/xoauth2';
import type { SmtpUpstreamConfig as UpstreamConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { VERIFY_QUIT_WAIT_MS, VERIFY_SOCKET_CLOSE_MS } from '../core/delays.js';
import type { VerifyStep } from '../core/ports.js';
import {
  authHint,
  clientCertHint,
  describeSocketError,
  errorText,
  firstLine,
  handshakeFailureHint,
  noStarttlsHint,
  type SmtpErrorShape,
  tlsHint,
  withHint,
} from './connect-hints.js';
import { smtpConnectionOptions } from './connection-options.js';
import { secureSocketOf, sendCommand } from './nodemailer-internals.js';
import { openUpstreamSocket } from './open-socket.js';
import { pop3Login, pop3LoginOptions, pop3Port } from './pop3-before-smtp.js';
import { saslOptions } from './sasl.js';
import type { TokenSource } from './credentials/token-source.js';
import type { SecretScrubber } from './secret-scrubber.js';
import { readTlsMaterial } from './tls-files.js';

export interface SmtpVerifyDeps {
  readonly clock: Clock;
  /** EHLO name when the upstream sets no `hostname` (listen.hostname) */
  readonly defaultHostname: string;
  /** required when upstream.auth.type is oauth2 */
  readonly credentials?: TokenSource | undefined;
  /** knows this upstream's secrets; every reported detail passes through it */
  readonly scrubber: SecretScrubber;
}

type StepName = 'config' | 'pop3' | 'imap' | 'connect' | 'greeting' | 'ehlo' | 'tls' | 'token' | 'auth' | 'mail' | 'quit' | 'session';
type Report = (step: StepName, status: VerifyStep['status'], detail: string) => void;

/** Runs the steps against one upstream; resolves with every step (each also given to `onStep` as it ends). */
export async function verifySmtpUpstream(upstream: UpstreamConfig, deps: SmtpVerifyDeps, onStep?: (step: VerifyStep) => void): Promise<VerifyStep[]> {
  const steps: VerifyStep[] = [];
  const report: Report = (step, status, detail) => {
    const line: VerifyStep = { step, status, detail: deps.scrubber.scrub(detail) };
    steps.push(line);
    onStep?.(line);
  };
  await runSteps(upstream, deps, report);
  return steps;
}

async function runSteps(upstream: UpstreamConfig, deps: SmtpVerifyDeps, report: Report): Promise<void> {
  const clock = deps.clock;
  let tlsMaterial;
  try {
    tlsMaterial = readTlsMaterial(upstream);
  } catch (err) {
    report('config', 'failed', (err as Error).message);
    return;
  }

  // 0. POP3-/IMAP-before-SMTP: the login the server wants before it takes mail (never the cached one)
  const pop3 = upstream.receiveBeforeSend;
  if (pop3 !== undefined) {
    const pop3Started = clock.now();
    try {
      await pop3Login(pop3LoginOptions(upstream, pop3, tlsMaterial.ca));
      report(pop3.protocol, 'ok', `${pop3.protocol}-before-smtp ok: logged in as ${pop3.user} at ${pop3.host}:${pop3Port(pop3)} (${clock.now() - pop3Started} ms)`);
    } catch (err) {
      report(pop3.protocol, 'failed', `${pop3.protocol}-before-smtp failed: ${(err as Error).message}`);
    }
  }

  // 1. TCP connect (through the proxy when one is configured)
  const target = `${upstream.host}:${upstream.port}`;
  const startedMs = clock.now();
  let socket: net.Socket;
  try {
    socket = await openSocket(upstream);
  } catch (err) {
    report('connect', 'failed', `${target}: ${describeSocketError(err, upstream)}`);
    return;
  }
  report('connect', 'ok', `${target}${upstream.proxy === undefined ? '' : ` via proxy ${redactProxy(upstream.proxy)}`} (${clock.now() - startedMs} ms)`);

  // 2. greeting, EHLO, TLS: one SMTPConnection.connect(), replies read from its transaction log
  const transcript = new Transcript();
  const connection = new SMTPConnection({
    connection: socket,
    ...smtpConnectionOptions(upstream, deps.defaultHostname, tlsMaterial),
    ...customAuthOf(upstream),
    socketCloseTimeout: VERIFY_SOCKET_CLOSE_MS,
    logger: transcript.logger(),
    transactionLog: true,
    debug: false,
  });
  const ended = watchEnd(connection);
  // errors after a step's callback (e.g. a late socket error) must not become an unhandled 'error' event
  connection.on('error', () => undefined);

  try {
    const handshakeError = await runHandshake(connection);
    const handshakeOk = reportHandshake(upstream, connection, transcript, handshakeError, report);
    if (!handshakeOk) return;

    // 3. token (oauth2) and AUTH
    await authenticate(upstream, connection, transcript, deps, report);

    // 4. QUIT
    await quit(upstream, connection, transcript, ended, report);
  } finally {
    connection.close();
    socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// the TCP connection (direct, or through upstream.proxy)

function openSocket(upstream: UpstreamConfig): Promise<net.Socket> {
  return openUpstreamSocket({ host: upstream.host, port: upstream.port, proxy: upstream.proxy, connectSeconds: upstream.timeouts.connectSeconds });
}

function redactProxy(proxy: string): string {
  try {
    const url = new URL(proxy);
    url.username = '';
    url.password = '';
    return url.origin;
  } catch {
    return '(proxy)';
  }
}

// ---------------------------------------------------------------------------------------------
// transcript

interface Exchange {
  /** the command the reply answers (undefined for the greeting) */
  readonly command: string | undefined;
  readonly reply: string;
}

type LogFn = (entry: unknown, message?: unknown, ...args: unknown[]) => void;

/** The server replies nodemailer's transaction log shows, paired with the command they answer. */
class Transcript {
  readonly exchanges: Exchange[] = [];
  readonly commands: string[] = [];
  private lastCommand: string | undefined;

  logger(): Record<'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', LogFn> {
    const record: LogFn = (entry, message) => {
      const tnx = typeof entry === 'object' && entry !== null ? (entry as { tnx?: unknown }).tnx : undefined;
      if (typeof message !== 'string') return;
      if (tnx === 'client') {
        // AUTH lines are already masked by nodemailer; only the verb is kept anyway
        const command = /^AUTH\b/i.test(message) ? message.split(' ').slice(0, 2).join(' ') : message;
        this.lastCommand = command;
        this.commands.push(command);
      } else if (tnx === 'server') {
        this.exchanges.push({ command: this.lastCommand, reply: message });
      }
    };
    const ignore: LogFn = () => undefined;
    return { trace: ignore, debug: record, info: record, warn: ignore, error: ignore, fatal: ignore };
  }

  repliesTo(pattern: RegExp): Exchange[] {
    return this.exchanges.filter((e) => e.command !== undefined && pattern.test(e.command));
  }

  /** Replies received after the `index`-th exchange. */
  since(index: number): Exchange[] {
    return this.exchanges.slice(index);
  }
}

/**
 * Runs one SMTPConnection step and settles with its error (or undefined), whichever comes first:
 * the step's callback or an 'error' event (a socket error may arrive either way).
 */
function step(connection: SMTPConnection, run: (done: (err?: SmtpErrorShape | null) => void) => void): Promise<SmtpErrorShape | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (err: SmtpErrorShape | undefined): void => {
      if (settled) return;
      settled = true;
      connection.off('error', onError);
      resolve(err);
    };
    const onError = (err: SmtpErrorShape): void => settle(err);
    connection.on('error', onError);
    run((err) => settle(err ?? undefined));
  });
}

function runHandshake(connection: SMTPConnection): Promise<SmtpErrorShape | undefined> {
  return step(connection, (done) => connection.connect((err?: unknown) => done(err as SmtpErrorShape | undefined)));
}

// ---------------------------------------------------------------------------------------------
// handshake report: greeting, EHLO, TLS

const isPositive = (reply: string): boolean => reply.startsWith('2');

/** "STARTTLS, AUTH PLAIN LOGIN, SIZE 35882577" from a multi-line EHLO reply (first line is the greeting name). */
function ehloSummary(reply: string): string {
  const keywords = reply
    .split(/\r?\n/)
    .slice(1)
    .map((line) => line.replace(/^\d{3}[ -]/, '').trim())
    .filter((line) => line !== '');
  return keywords.length === 0 ? firstLine(reply) : keywords.join(', ');
}

function tlsDetail(connection: SMTPConnection): string {
  const socket = secureSocketOf(connection);
  if (socket === undefined) return 'encrypted';
  const protocol = socket.getProtocol() ?? 'TLS';
  const peer = socket.getPeerCertificate();
  const subject = peer?.subject?.CN;
  const issuer = peer?.issuer?.CN;
  if (subject === undefined) return protocol;
  return `${protocol}, certificate CN=${String(subject)}${issuer === undefined ? '' : ` issued by CN=${String(issuer)}`}`;
}

function reportHandshake(
  upstream: UpstreamConfig,
  connection: SMTPConnection,
  transcript: Transcript,
  err: SmtpErrorShape | undefined,
  report: Report,
): boolean {
  const implicitTls = upstream.security === 'tls';
  const greeting = transcript.exchanges.find((e) => e.command === undefined);
  const ehloReplies = transcript.repliesTo(/^(EHLO|HELO|LHLO)\b/i);
  const starttlsSent = transcript.commands.includes('STARTTLS');
  const starttlsReply = transcript.repliesTo(/^STARTTLS$/i)[0];
  const failed = (step: StepName, detail: string): false => {
    report(step, 'failed', detail);
    return false;
  };
  // Public API only: SMTPConnection.secure turns true once STARTTLS upgraded the socket. With
  // implicit TLS it is true from the start, but any server reply can only arrive over TLS, so
  // a reply shows the handshake passed.
  const tlsEstablished = implicitTls ? transcript.exchanges.length > 0 : connection.secure;

  if (implicitTls) {
    if (!tlsEstablished) return failed('tls', withHint(errorText(err), tlsHint(upstream, err) ?? clientCertHint(upstream, err)));
    report('tls', 'ok', tlsDetail(connection));
  }

  if (greeting === undefined) return failed('greeting', withHint(errorText(err), handshakeFailureHint(upstream, err)));
  if (!greeting.reply.startsWith('220')) return failed('greeting', firstLine(greeting.reply));
  report('greeting', 'ok', firstLine(greeting.reply));

  const firstEhlo = ehloReplies[0];
  if (firstEhlo === undefined) return failed('ehlo', withHint(errorText(err), handshakeFailureHint(upstream, err)));
  if (isPositive(firstEhlo.reply)) {
    report('ehlo', 'ok', ehloSummary(firstEhlo.reply));
  } else {
    const helo = ehloReplies[1];
    if (helo === undefined || !isPositive(helo.reply)) return failed('ehlo', firstLine(helo?.reply ?? firstEhlo.reply));
    report('ehlo', 'ok', `EHLO refused (${firstLine(firstEhlo.reply)}); HELO accepted`);
  }

  if (!implicitTls) {
    const offered = /[ -]STARTTLS\b/im.test(firstEhlo.reply);
    if (!starttlsSent) {
      if (upstream.security === 'none') report('tls', 'skipped', 'security is "none": the session stays in plaintext');
      else report('tls', 'skipped', 'the server does not offer STARTTLS: the session stays in plaintext (security "starttls-required" would refuse it)');
    } else if (starttlsReply !== undefined && !isPositive(starttlsReply.reply)) {
      return failed('tls', withHint(`STARTTLS refused: ${firstLine(starttlsReply.reply)}`, offered ? undefined : noStarttlsHint(upstream)));
    } else if (!tlsEstablished) {
      const hint = tlsHint(upstream, err) ?? clientCertHint(upstream, err) ?? (offered ? undefined : noStarttlsHint(upstream));
      return failed('tls', withHint(errorText(err), hint));
    } else {
      report('tls', 'ok', tlsDetail(connection));
      const secondEhlo = ehloReplies.find((e, i) => i > 0 && isPositive(e.reply));
      if (secondEhlo === undefined && err !== undefined) return failed('ehlo', withHint(`after STARTTLS: ${errorText(err)}`, clientCertHint(upstream, err)));
    }
  }

  if (err !== undefined) return failed('session', errorText(err));
  return true;
}

// ---------------------------------------------------------------------------------------------
// token + AUTH

async function login(connection: SMTPConnection, auth: SMTPConnection.AuthenticationType): Promise<SmtpErrorShape | undefined> {
  return step(connection, (done) => connection.login(auth, (err) => done(err)));
}

/** The custom SASL handlers delivery uses for this upstream (PLAIN with authzid), so the check authenticates the same way. */
function customAuthOf(upstream: UpstreamConfig): { customAuth?: SMTPConnection.Options['customAuth'] } {
  const auth = upstream.auth;
  if (auth.type !== 'login' && auth.type !== 'plain' && auth.type !== 'ntlm') return {};
  const custom = saslOptions(auth).customAuth;
  return custom === undefined ? {} : { customAuth: custom as unknown as SMTPConnection.Options['customAuth'] };
}

async function authenticate(upstream: UpstreamConfig, connection: SMTPConnection, transcript: Transcript, deps: SmtpVerifyDeps, report: Report): Promise<boolean> {
  const auth = upstream.auth;
  if (auth.type === 'none') {
    report('auth', 'skipped', connection.allowsAuth ? 'no auth configured (the server offers AUTH)' : 'no auth configured');
    return mailWithoutAuth(upstream, connection, report);
  }

  let authData: SMTPConnection.AuthenticationType;
  if (auth.type === 'oauth2') {
    if (deps.credentials === undefined) {
      report('token', 'failed', `upstream "${upstream.name}": oauth2 needs a TokenSource`);
      return false;
    }
    let accessToken: string;
    try {
      const token = await deps.credentials.getToken();
      accessToken = token.accessToken;
      deps.scrubber.addToken(auth.user, accessToken);
      report('token', 'ok', `expires ${new Date(token.expiresOnMs).toISOString()}`);
    } catch (err) {
      report('token', 'failed', (err as Error).message);
      return false;
    }
    authData = { user: auth.user, method: 'XOAUTH2', oauth2: new XOAuth2({ user: auth.user, accessToken }) };
  } else {
    authData = { user: auth.user, pass: auth.pass, method: saslOptions(auth).authMethod };
  }

  const before = transcript.exchanges.length;
  const err = await login(connection, authData);
  const method = typeof authData.method === 'string' ? authData.method : 'AUTH';
  if (err !== undefined) {
    report('auth', 'failed', withHint(`${method}: ${errorText(err)}`, authHint(upstream, connection, err)));
    return false;
  }
  const final = transcript.since(before).at(-1);
  report('auth', 'ok', `${method} as ${auth.user}${final === undefined ? '' : `: ${firstLine(final.reply)}`}`);
  return true;
}

/**
 * Without auth configured, delivery's first command is MAIL FROM: a server that requires AUTH
 * refuses it (530 5.7.0), and every message would then fail. Ask it once (MAIL FROM:<>, then
 * RSET) so validate fails where delivery would.
 */
async function mailWithoutAuth(upstream: UpstreamConfig, connection: SMTPConnection, report: Report): Promise<boolean> {
  const timeoutMs = upstream.timeouts.socketSeconds * 1000;
  const reply = await sendCommand(connection, 'MAIL FROM:<>', timeoutMs);
  if (reply === undefined) {
    report('mail', 'failed', `no reply to MAIL FROM within ${upstream.timeouts.socketSeconds} s`);
    return false;
  }
  if (/^530[ -]|^5\d\d[ -]5\.7\.0\b|authentication required/i.test(reply)) {
    report('mail', 'failed', withHint(`MAIL FROM refused: ${firstLine(reply)}`, 'the server requires authentication: configure auth (type "login" or "plain" with user and pass, or "oauth2")'));
    return false;
  }
  await sendCommand(connection, 'RSET', timeoutMs);
  report('mail', 'ok', /^2/.test(reply) ? `MAIL FROM accepted without AUTH: ${firstLine(reply)}` : `MAIL FROM:<> answered ${firstLine(reply)} (no demand for authentication)`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// QUIT

/** Whether the session is over, from the public API: SMTPConnection emits 'end' once its socket closed. */
interface EndWatch {
  readonly closed: boolean;
  readonly promise: Promise<void>;
}

function watchEnd(connection: SMTPConnection): EndWatch {
  const watch = { closed: false, promise: Promise.resolve() };
  watch.promise = new Promise<void>((resolve) =>
    connection.once('end', () => {
      watch.closed = true;
      resolve();
    }),
  );
  return watch;
}

async function quit(
  upstream: UpstreamConfig,
  connection: SMTPConnection,
  transcript: Transcript,
  ended: EndWatch,
  report: Report,
): Promise<void> {
  if (connection.destroyed || ended.closed) return;
  const before = transcript.exchanges.length;
  connection.quit();
  let timer: NodeJS.Timeout | undefined;
  const boundMs = Math.min(upstream.timeouts.socketSeconds * 1000, VERIFY_QUIT_WAIT_MS);
  await Promise.race([ended.promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs)))]);
  clearTimeout(timer);
  const reply = transcript.since(before).find((e) => e.command === 'QUIT');
  report('quit', 'ok', reply === undefined ? '' : firstLine(reply.reply));
}
