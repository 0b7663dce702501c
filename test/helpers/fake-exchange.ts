/**
 * A fake Exchange Online SMTP submission endpoint (smtp.office365.com:587) for offline tests.
 *
 * Does: listen on 127.0.0.1:0; offer STARTTLS with the test localhost certificate; advertise
 * `AUTH XOAUTH2 LOGIN` only after STARTTLS (allowInsecureAuth:false); decode XOAUTH2
 * (`user=<u>\x01auth=Bearer <t>\x01\x01`) and accept only tokens the injected `isValid` callback
 * accepts (the fake token endpoint's), for the expected mailbox; otherwise answer
 * `535 5.7.3 Authentication unsuccessful` (or, with failureStyle 'challenge', the Gmail-style
 * 334 error challenge first). Records messages (envelope, raw bytes, authUser), counts AUTH
 * attempts, can refuse the next N AUTHs whatever the token.
 * Never: accepts MAIL before a successful AUTH (authOptional false); listens elsewhere.
 * Assumes: test/fixtures/tls server.pem/server.key signed by ca.pem.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import { tlsFixture } from './fake-token-endpoint.js';

export interface FakeExchangeOptions {
  /** decides whether an access token is valid now (e.g. `(t) => endpoint.isValid(t, clock.now())`) */
  readonly isValid: (accessToken: string) => boolean;
  /** mailbox the tokens are for; unset: any user */
  readonly user?: string;
  /** AUTH LOGIN credentials accepted (basic auth); unset: LOGIN always fails */
  readonly basicPassword?: string;
  /** 'direct' (535 right away, default) or 'challenge' (334 error JSON, then 535) */
  readonly failureStyle?: 'direct' | 'challenge';
}

export interface ReceivedMessage {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly raw: Buffer;
  readonly authUser: string | undefined;
}

export interface AuthAttempt {
  readonly method: string;
  readonly username: string | undefined;
  readonly accepted: boolean;
  readonly secure: boolean;
}

export interface FakeExchange {
  readonly port: number;
  readonly messages: readonly ReceivedMessage[];
  readonly authAttempts: readonly AuthAttempt[];
  /** access tokens presented with XOAUTH2, in order (for leak checks in tests) */
  readonly presentedTokens: readonly string[];
  /** refuse the next `count` AUTH commands with 535 whatever they carry */
  rejectNextAuths(count: number): void;
  close(): Promise<void>;
}

const AUTH_FAILED = '5.7.3 Authentication unsuccessful';

export async function startFakeExchange(options: FakeExchangeOptions): Promise<FakeExchange> {
  const messages: ReceivedMessage[] = [];
  const authAttempts: AuthAttempt[] = [];
  const presentedTokens: string[] = [];
  let rejectRemaining = 0;

  const authFailure = (): Error & { responseCode: number } => Object.assign(new Error(AUTH_FAILED), { responseCode: 535 });

  const server = new SMTPServer({
    name: 'fake-exchange.test',
    banner: 'Microsoft ESMTP MAIL Service ready (fake)',
    key: tlsFixture('server.key'),
    cert: tlsFixture('server.pem'),
    secure: false,
    authMethods: ['XOAUTH2', 'LOGIN'],
    allowInsecureAuth: false,
    authOptional: false,
    disableReverseLookup: true,
    // sessions still open at close() (a pooled client) get 421 after 1 s instead of smtp-server's 30 s
    closeTimeout: 1000,
    logger: false,
    onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback) {
      const secure = session.secure === true;
      const record = (accepted: boolean): void => {
        authAttempts.push({ method: auth.method, username: auth.username, accepted, secure });
      };
      if (auth.method === 'XOAUTH2' && auth.accessToken !== undefined) presentedTokens.push(auth.accessToken);
      if (rejectRemaining > 0) {
        rejectRemaining -= 1;
        record(false);
        return callback(authFailure());
      }
      let accepted = false;
      if (auth.method === 'XOAUTH2') {
        accepted =
          auth.accessToken !== undefined &&
          options.isValid(auth.accessToken) &&
          (options.user === undefined || auth.username?.toLowerCase() === options.user.toLowerCase());
      } else if (auth.method === 'LOGIN') {
        accepted = options.basicPassword !== undefined && auth.password === options.basicPassword;
      }
      record(accepted);
      if (accepted) return callback(null, { user: auth.username });
      if (auth.method === 'XOAUTH2' && options.failureStyle === 'challenge') {
        return callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://outlook.office365.com/.default' } });
      }
      return callback(authFailure());
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', () => {});
      stream.on('end', () => {
        messages.push({
          mailFrom: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          authUser: typeof session.user === 'string' ? session.user : undefined,
        });
        callback(null, `2.6.0 <${messages.length}@fake-exchange.test> Queued mail for delivery`);
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    messages,
    authAttempts,
    presentedTokens,
    rejectNextAuths(count: number): void {
      rejectRemaining = count;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}
