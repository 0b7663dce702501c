/**
 * Real SMTP servers for tests: an smtp-server 3.21 instance on 127.0.0.1, port 0, that
 * records every message it accepts and can be scripted to fail.
 *
 * Does: record `{envelope, raw, sha256, authUser, tls, clientCertCN}` per accepted message;
 *   refuse at connect (421/554), fail MAIL/RCPT/DATA with any code, drop the connection in
 *   the middle of DATA or after the whole DATA (the "duplicate" case), delay every reply,
 *   offer no/STARTTLS/implicit TLS with the test PKI, PLAIN/LOGIN/XOAUTH2 or no AUTH at all,
 *   and ask for (or require) a client certificate. The failure script can be changed while
 *   the server runs (`setScript`), so a test can make a server fail and then recover.
 * Never: listen anywhere but 127.0.0.1; leave a socket open after `close()`.
 * Assumes: one test file owns the server and calls `close()` in afterEach/afterAll.
 *
 * Usage:
 *   const upstream = await startFakeUpstream({ tls: 'starttls', auth: { methods: ['PLAIN'], users: { u: 'p' } } });
 *   ... send to 127.0.0.1:upstream.port ...
 *   await upstream.waitForMessages(1);
 *   expect(upstream.messages[0]?.sha256).toBe(sha256(raw));
 *   upstream.setScript({ failRcpt: (a) => (a.startsWith('bad') ? { code: 550, message: '5.1.1 no such user' } : undefined) });
 *   await upstream.close();
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { TLS_PEM } from './tls.js';

/** An SMTP reply to script: `{ code: 550, message: '5.1.1 User unknown' }`. */
export interface ScriptedReply {
  readonly code: number;
  readonly message: string;
}

/** The part of the behaviour a test may change while the server runs. */
export interface FakeUpstreamScript {
  /** Refuse every connection with this greeting (`421 …` or `554 …`) and close. */
  readonly greeting?: '421' | '554' | undefined;
  /** Reply to MAIL FROM with this failure (a function decides per sender). */
  readonly failMail?: ScriptedReply | ((address: string) => ScriptedReply | undefined) | undefined;
  /** Reply to RCPT TO with this failure when the function returns one. */
  readonly failRcpt?: ((address: string) => ScriptedReply | undefined) | undefined;
  /** Reply to the end of DATA with this failure (the message is read, not recorded). */
  readonly failData?: ScriptedReply | undefined;
  /** Destroy the socket when the first DATA bytes arrive (nothing recorded). */
  readonly dropMidData?: boolean | undefined;
  /** Read the whole message, record it, then destroy the socket without replying. */
  readonly dropAfterData?: boolean | undefined;
  /** Wait this long before every reply to MAIL, RCPT, DATA and AUTH (a slow server). */
  readonly delayMs?: number | undefined;
}

export type AuthDecision = { readonly user: string } | { readonly responseCode: number; readonly message: string };

export interface FakeUpstreamAuth {
  readonly methods: readonly ('PLAIN' | 'LOGIN' | 'XOAUTH2')[];
  /** user → password for PLAIN/LOGIN (ignored when `onAuth` is given). */
  readonly users?: Readonly<Record<string, string>>;
}

export interface FakeUpstreamOptions extends FakeUpstreamScript {
  /** 'none' (no STARTTLS advertised), 'starttls' (default) or 'implicit' (TLS from the first byte). */
  readonly tls?: 'none' | 'starttls' | 'implicit';
  /** Refuse MAIL FROM (530 5.7.0) until the session is encrypted. */
  readonly requireTls?: boolean;
  /** 'none' (default): AUTH is not advertised and not required. */
  readonly auth?: 'none' | FakeUpstreamAuth;
  /**
   * Custom credential check (e.g. XOAUTH2 token validation). Return `{user}` to accept or
   * `{responseCode, message}` to refuse with that reply. Overrides `auth.users`.
   */
  readonly onAuth?: (auth: SMTPServerAuthentication, session: SMTPServerSession) => AuthDecision | Promise<AuthDecision>;
  /** Ask the client for a certificate (signed by the test CA); a session without one still works. */
  readonly requestClientCert?: boolean;
  /** Refuse the TLS handshake unless the client presents a certificate signed by the test CA. */
  readonly requireClientCert?: boolean;
  /** Server certificate and key (PEM); default: the test server certificate for localhost/127.0.0.1. */
  readonly certificate?: { readonly cert: string; readonly key: string };
  /** TLS versions the server accepts (default: smtp-server's, TLSv1 to the highest Node has). */
  readonly tlsVersions?: { readonly min?: 'TLSv1.2' | 'TLSv1.3'; readonly max?: 'TLSv1.2' | 'TLSv1.3' };
  /** SIZE limit in bytes (advertised). */
  readonly sizeBytes?: number;
  /** The name in the greeting. */
  readonly name?: string;
}

export interface ReceivedMessage {
  readonly envelope: { readonly mailFrom: string; readonly rcptTo: readonly string[] };
  readonly raw: Buffer;
  readonly sha256: string;
  readonly authUser: string | undefined;
  readonly tls: boolean;
  readonly clientCertCN: string | undefined;
  /** the negotiated TLS protocol ('TLSv1.2', 'TLSv1.3'), undefined without TLS */
  readonly tlsProtocol: string | undefined;
  /** the EHLO name the client used */
  readonly heloName: string;
  /** MAIL FROM parameters, upper-cased keys (e.g. SIZE, BODY) */
  readonly mailParams: Readonly<Record<string, string | boolean>>;
}

export interface FakeUpstream {
  readonly port: number;
  readonly host: '127.0.0.1';
  /** every accepted message, in order */
  readonly messages: ReceivedMessage[];
  /** TCP connections accepted so far */
  readonly connections: number;
  /** connections currently open */
  readonly openConnections: number;
  /** the AUTH attempts seen, in order (method, username; never the secret) */
  readonly authAttempts: { readonly method: string; readonly username: string | undefined; readonly accepted: boolean }[];
  /** Replace the failure script (fields not given are cleared). */
  setScript(script: FakeUpstreamScript): void;
  /** Resolves once `count` messages have been recorded; rejects after `timeoutMs` (default 5000). */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Stops listening and destroys every open socket. Idempotent. */
  close(): Promise<void>;
}

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

function smtpError(reply: ScriptedReply): Error & { responseCode: number } {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}

function pickScript(options: FakeUpstreamScript): FakeUpstreamScript {
  return {
    greeting: options.greeting,
    failMail: options.failMail,
    failRcpt: options.failRcpt,
    failData: options.failData,
    dropMidData: options.dropMidData,
    dropAfterData: options.dropAfterData,
    delayMs: options.delayMs,
  };
}

export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  let script = pickScript(options);
  const tlsMode = options.tls ?? 'starttls';
  const auth = options.auth ?? 'none';
  const messages: ReceivedMessage[] = [];
  const authAttempts: { method: string; username: string | undefined; accepted: boolean }[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const clientCertBySession = new Map<string, string>();
  const tlsProtocolBySession = new Map<string, string>();
  const recorded = new EventEmitter();
  let connections = 0;
  let closed = false;

  /** Runs `fn` after the scripted delay (timers are cleared by close()). */
  const later = (fn: () => void): void => {
    const delayMs = script.delayMs ?? 0;
    if (delayMs <= 0) return fn();
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, delayMs);
    timers.add(timer);
  };

  const disabledCommands: string[] = [];
  if (tlsMode !== 'starttls') disabledCommands.push('STARTTLS');
  if (auth === 'none') disabledCommands.push('AUTH');

  const certificate = options.certificate ?? { cert: TLS_PEM.serverCert, key: TLS_PEM.serverKey };
  const wantsClientCert = options.requestClientCert === true || options.requireClientCert === true;

  const serverOptions: SMTPServerOptions = {
    name: options.name ?? 'fake-upstream.test',
    secure: tlsMode === 'implicit',
    key: certificate.key,
    cert: certificate.cert,
    ...(wantsClientCert ? { requestCert: true, rejectUnauthorized: options.requireClientCert === true, ca: TLS_PEM.ca } : {}),
    disabledCommands,
    authOptional: auth === 'none',
    authMethods: auth === 'none' ? [] : [...auth.methods],
    allowInsecureAuth: true,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 100,
    ...(options.sizeBytes === undefined ? {} : { size: options.sizeBytes }),
    ...(options.tlsVersions?.min === undefined ? {} : { minVersion: options.tlsVersions.min }),
    ...(options.tlsVersions?.max === undefined ? {} : { maxVersion: options.tlsVersions.max }),

    onConnect(_session, callback) {
      const greeting = script.greeting;
      if (greeting === '421') return callback(smtpError({ code: 421, message: '4.3.2 Service not available, try later' }));
      if (greeting === '554') return callback(smtpError({ code: 554, message: '5.7.1 No SMTP service here' }));
      callback();
    },

    onSecure(socket, session, callback) {
      const peer = (socket as TLSSocket).getPeerCertificate?.();
      const cn = peer?.subject?.CN;
      if (typeof cn === 'string' && cn !== '') clientCertBySession.set(session.id, cn);
      const protocol = (socket as TLSSocket).getProtocol?.();
      if (typeof protocol === 'string') tlsProtocolBySession.set(session.id, protocol);
      callback();
    },

    onAuth(credentials, session, callback) {
      const decide = async (): Promise<AuthDecision> => {
        if (options.onAuth !== undefined) return options.onAuth(credentials, session);
        const users = auth === 'none' ? {} : (auth.users ?? {});
        const username = credentials.username ?? '';
        const expected = Object.hasOwn(users, username) ? users[username] : undefined;
        if (expected !== undefined && credentials.password === expected) return { user: username };
        return { responseCode: 535, message: '5.7.8 Authentication credentials invalid' };
      };
      decide().then(
        (decision) => {
          const accepted = 'user' in decision;
          authAttempts.push({ method: credentials.method, username: credentials.username, accepted });
          later(() => {
            if (accepted) callback(null, { user: decision.user });
            else callback(smtpError({ code: decision.responseCode, message: decision.message }));
          });
        },
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    },

    onMailFrom(address, session, callback) {
      if (options.requireTls === true && !session.secure) {
        return callback(smtpError({ code: 530, message: '5.7.0 Must issue a STARTTLS command first' }));
      }
      const fail = typeof script.failMail === 'function' ? script.failMail(address.address) : script.failMail;
      later(() => callback(fail === undefined ? undefined : smtpError(fail)));
    },

    onRcptTo(address, _session, callback) {
      const fail = script.failRcpt?.(address.address);
      later(() => callback(fail === undefined ? undefined : smtpError(fail)));
    },

    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      const dropMid = script.dropMidData === true;
      const dropAfter = script.dropAfterData === true;
      const failData = script.failData;
      const destroySession = (): void => {
        for (const connection of server.connections) {
          if (connection.id === session.id) connection._socket.destroy();
        }
      };
      stream.on('data', (chunk: Buffer) => {
        if (dropMid) {
          destroySession();
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', () => undefined); // a client that disconnects mid-DATA destroys the stream
      stream.on('end', () => {
        if (dropMid) return;
        const raw = Buffer.concat(chunks);
        if (failData === undefined) {
          const mailFrom = session.envelope.mailFrom;
          const message: ReceivedMessage = {
            envelope: {
              mailFrom: mailFrom === false ? '' : mailFrom.address,
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
            },
            raw,
            sha256: sha256(raw),
            authUser: typeof session.user === 'string' ? session.user : undefined,
            tls: session.secure,
            clientCertCN: clientCertBySession.get(session.id),
            tlsProtocol: tlsProtocolBySession.get(session.id),
            heloName: session.hostNameAppearsAs,
            mailParams: mailFrom === false ? {} : { ...(mailFrom.args || {}) },
          };
          messages.push(message);
          recorded.emit('message');
        }
        if (dropAfter) {
          destroySession();
          return;
        }
        later(() => callback(failData === undefined ? null : smtpError(failData), failData === undefined ? 'OK: queued as FAKE' : undefined));
      });
    },
  };

  const server = new SMTPServer(serverOptions);
  server.on('error', () => undefined); // e.g. a plaintext client on the implicit-TLS port
  server.server.on('connection', (socket: net.Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const addressInfo = server.server.address();
  if (addressInfo === null || typeof addressInfo === 'string') throw new Error('fake upstream: no port');

  return {
    port: addressInfo.port,
    host: '127.0.0.1',
    messages,
    get connections() {
      return connections;
    },
    get openConnections() {
      return sockets.size;
    },
    authAttempts,
    setScript(next) {
      script = pickScript(next);
    },
    waitForMessages(count, timeoutMs = 5000) {
      if (messages.length >= count) return Promise.resolve(messages.slice());
      return new Promise((resolve, reject) => {
        const onMessage = (): void => {
          if (messages.length < count) return;
          clearTimeout(timer);
          recorded.off('message', onMessage);
          resolve(messages.slice());
        };
        const timer = setTimeout(() => {
          recorded.off('message', onMessage);
          reject(new Error(`fake upstream: expected ${count} messages within ${timeoutMs} ms, got ${messages.length}`));
        }, timeoutMs);
        recorded.on('message', onMessage);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // Destroy the socket on top (TLS wrap or SMTP session socket), never a raw socket under a
      // TLS handshake in progress: that tears the wrap down from below and crashed Node 20
      // (SIGSEGV) in an experiment with a client that refused the server certificate.
      for (const top of server._pendingSockets.values()) top.destroy();
      for (const connection of server.connections) connection._socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) if (!server._pendingSockets.has(socket)) socket.destroy();
    },
  };
}

/** A port on 127.0.0.1 where nothing listens (bound, then closed): connecting gets ECONNREFUSED. */
export async function startRefusingPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('refusing port: no port');
  return address.port;
}
