/**
 * POP3-/IMAP-before-SMTP (eG Enterprise "mail receiver settings"): some servers accept mail from
 * a client address only for a while after that client logged in to read mail. Before an SMTP
 * connection to such an upstream, log in to its POP3 server (USER/PASS, then QUIT) or its IMAP
 * server (LOGIN, then LOGOUT).
 *
 * Does: one POP3 login over implicit TLS, STLS (RFC 2595) or, when allowed, cleartext, bounded
 *   by the upstream's timeouts; remember a successful login for `validMinutes` (injected clock),
 *   so one login covers every connection opened meanwhile; callers that ask at the same time
 *   share one login. A failed login throws an error with code ERECEIVE (classify.ts: failover).
 * Never: send the password in cleartext unless receiveBeforeSend.allowPlaintext (the schema
 *   refuses security "none" without it); put the password or the server's reply to PASS verbatim
 *   with the password in an error (the scrubber of the transport also knows it); read mail.
 * Assumes: the config is validated. A POP3 exchange is five lines (greeting, [STLS], USER, PASS,
 *   QUIT, each answered "+OK ..." or "-ERR ..." on one line, RFC 1939); an IMAP one is four
 *   tagged commands ([STARTTLS], LOGIN with quoted strings, LOGOUT, each ended by "<tag> OK" or
 *   NO/BAD, RFC 3501). So it is written here over node:net/node:tls: the clients on npm
 *   (node-pop3 0.11: no dependencies, but no STLS upgrade with our CA/servername options and no
 *   timeout per step; ImapFlow: a full mailbox client with its own dependencies) would add
 *   packages for less than this file does.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SmtpUpstreamConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';

export type ReceiveBeforeSendConfig = NonNullable<SmtpUpstreamConfig['receiveBeforeSend']>;

export interface Pop3LoginOptions {
  readonly config: ReceiveBeforeSendConfig;
  /** CA PEM for the POP3 server's certificate (the upstream's tls.ca), and whether to verify it */
  readonly ca: string | undefined;
  readonly rejectUnauthorized: boolean;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly connectSeconds: number;
  /** longest wait for any one reply */
  readonly replySeconds: number;
}

/** The login options of an upstream: its TLS trust settings, its connect and socket timeouts. */
export function pop3LoginOptions(upstream: SmtpUpstreamConfig, config: ReceiveBeforeSendConfig, ca: string | undefined): Pop3LoginOptions {
  return {
    config,
    ca,
    rejectUnauthorized: upstream.tls.rejectUnauthorized,
    minVersion: upstream.tls.minVersion,
    connectSeconds: upstream.timeouts.connectSeconds,
    replySeconds: upstream.timeouts.greetingSeconds,
  };
}

/** The port when none is set: 995 / 993 (implicit TLS), else 110 / 143, for POP3 / IMAP. */
export function pop3Port(config: ReceiveBeforeSendConfig): number {
  const implicit = config.security === 'tls';
  return config.port ?? (config.protocol === 'imap' ? (implicit ? 993 : 143) : implicit ? 995 : 110);
}

function pop3Error(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERECEIVE' });
}

/** An IMAP quoted string (RFC 3501): backslash and double quote escaped; CR/LF the schema already refuses. */
const quoted = (value: string): string => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** Whether a reply line ends the exchange: true (success), false (refusal), undefined (read on). */
type Judge = (line: string) => boolean | undefined;

/** Logs in once (POP3 USER/PASS then QUIT, or IMAP LOGIN then LOGOUT); rejects with an ERECEIVE error that says what to fix. */
export async function pop3Login(options: Pop3LoginOptions): Promise<void> {
  const { config } = options;
  const imap = config.protocol === 'imap';
  const target = `${imap ? 'IMAP' : 'POP3'} server ${config.host}:${pop3Port(config)}`;
  const tlsOptions = { servername: net.isIP(config.host) === 0 ? config.host : undefined, ca: options.ca, rejectUnauthorized: options.rejectUnauthorized, minVersion: options.minVersion };
  let socket: net.Socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = config.security === 'tls' ? tls.connect({ host: config.host, port: pop3Port(config), ...tlsOptions }) : net.connect({ host: config.host, port: pop3Port(config) });
    const timer = setTimeout(() => fail(new Error(`no connection within ${options.connectSeconds} s`)), options.connectSeconds * 1000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(pop3Error(`${target}: ${err.message} (check receiveBeforeSend.host, port and security)`));
    };
    s.once('error', fail);
    s.once(config.security === 'tls' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      s.removeListener('error', fail);
      resolve(s);
    });
  });
  let buffered = '';
  /** reads reply lines until `judge` decides; rejects on a refusal, close or timeout */
  const reply = (what: string, judge: Judge): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const done = (err: Error | undefined): void => {
        clearTimeout(timer);
        socket.removeListener('data', onData).removeListener('error', onError).removeListener('close', onClose);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onData = (chunk: Buffer): void => {
        buffered += chunk.toString('latin1');
        let end: number;
        while ((end = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, end).replace(/\r$/, '');
          buffered = buffered.slice(end + 1);
          const verdict = judge(line);
          if (verdict === true) return done(undefined);
          if (verdict === false) return done(pop3Error(`${target} refused ${what}: ${line.slice(0, 200)}`));
        }
      };
      const onError = (err: Error): void => done(pop3Error(`${target}: ${err.message} during ${what}`));
      const onClose = (): void => done(pop3Error(`${target} closed the connection during ${what}`));
      const timer = setTimeout(() => done(pop3Error(`${target}: no reply to ${what} within ${options.replySeconds} s`)), options.replySeconds * 1000);
      socket.on('data', onData).once('error', onError).once('close', onClose);
      onData(Buffer.alloc(0));
    });
  let tags = 0;
  /** POP3: one +OK/-ERR line; IMAP: untagged lines, then the tagged OK (NO/BAD refuse) */
  const command = (line: string, what: string): Promise<void> => {
    if (!imap) {
      socket.write(`${line}\r\n`);
      return reply(what, (l) => l.startsWith('+OK'));
    }
    const tag = `a${++tags}`;
    socket.write(`${tag} ${line}\r\n`);
    return reply(what, (l) => (l.startsWith(`${tag} `) ? /^OK\b/i.test(l.slice(tag.length + 1)) : undefined));
  };
  try {
    await reply('the greeting', imap ? (l) => /^\* (OK|PREAUTH)\b/i.test(l) : (l) => l.startsWith('+OK'));
    if (config.security === 'starttls') {
      const port = imap ? 993 : 995;
      await command(imap ? 'STARTTLS' : 'STLS', `STARTTLS: set receiveBeforeSend.security "tls" (port ${port}) if the server offers implicit TLS only`);
      socket = await new Promise<net.Socket>((resolve, reject) => {
        const secured = tls.connect({ socket, ...tlsOptions });
        secured.once('secureConnect', () => resolve(secured));
        secured.once('error', (err) => reject(pop3Error(`${target}: TLS after STARTTLS failed: ${err.message} (check tls.ca of this upstream)`)));
      });
    }
    const loginFailed = 'the login: check receiveBeforeSend.user and receiveBeforeSend.pass';
    if (imap) {
      await command(`LOGIN ${quoted(config.user)} ${quoted(config.pass)}`, loginFailed);
      await command('LOGOUT', 'LOGOUT').catch(() => undefined); // logged in is what counts
    } else {
      await command(`USER ${config.user}`, 'USER: check receiveBeforeSend.user');
      await command(`PASS ${config.pass}`, loginFailed);
      await command('QUIT', 'QUIT').catch(() => undefined); // logged in is what counts
    }
  } finally {
    socket.destroy();
  }
}

export interface ReceiveBeforeSend {
  /** resolves at once when a login succeeded within validMinutes, else logs in */
  ensure(): Promise<void>;
}

/** The cached login of one upstream: one POP3 login per `validMinutes`, shared by every connection. */
export function createReceiveBeforeSend(options: Pop3LoginOptions, clock: Clock, login: (o: Pop3LoginOptions) => Promise<void> = pop3Login): ReceiveBeforeSend {
  let validUntilMs = -Infinity;
  let inFlight: Promise<void> | undefined;
  return {
    ensure() {
      if (clock.now() < validUntilMs) return Promise.resolve();
      inFlight ??= login(options).then(
        () => {
          inFlight = undefined;
          validUntilMs = clock.now() + options.config.validMinutes * 60_000;
        },
        (err: unknown) => {
          inFlight = undefined;
          throw err;
        },
      );
      return inFlight;
    },
  };
}
