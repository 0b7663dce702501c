/**
 * The raw SMTP sender: a pool of nodemailer `SMTPConnection`s that sends the spool's final
 * bytes as they are.
 *
 * Does: keep up to `maxConnections` connections open per upstream (each recycled after
 *   `maxMessages`), run `beforeConnect` (the POP3-before-SMTP login) before each new socket, connect (directly or through the HTTP CONNECT proxy), greet, STARTTLS/TLS and
 *   log in exactly as nodemailer's own pool does (SMTPConnection.connect + login, AUTH forced when
 *   configured even if the server does not offer it; one XOAuth2 per connection whose
 *   provisionCallback asks the TokenSource), then per message: MAIL/RCPT/DATA with SIZE and
 *   BODY=8BITMIME, and the bytes through DotStuffer (dot-stuff.ts). A connection the server
 *   dropped while it sat idle is retried once on a new one when not a byte of the message was
 *   sent; an envelope or message refusal resets the session and keeps the connection.
 * Never: build a MIME tree per message (nodemailer's sendMail runs Mail → MailComposer →
 *   MimeNode → DataStream for every message, even for `raw`); hand a connection a stream it
 *   cannot re-read (a spool file source is opened anew per attempt: core/raw-source.ts); log message content.
 * Assumes: envelope addresses were accepted by intake (user@domain). They still go through
 *   MimeNode's envelope normalisation (punycode for an IDN domain, quoting, duplicates), as
 *   sendMail did.
 *
 * The one nodemailer internal used, RawConnection (DotStuffer instead of nodemailer's
 * DataStream), lives with the others in nodemailer-internals.ts, pinned by its test.
 */
import MimeNode from 'nodemailer/lib/mime-node';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import XOAuth2 from 'nodemailer/lib/xoauth2';
import type { XOAuth2ProvisionCallback } from 'nodemailer/lib/xoauth2';
import { NODEMAILER_CONNECTION_TIMEOUT_MS } from '../core/delays.js';
import type { RawSource } from '../core/ports.js';
import { openRaw } from '../core/raw-source.js';
import { RawConnection } from './nodemailer-internals.js';
import { asNodemailerError, openUpstreamSocket } from './open-socket.js';

export type RawSmtpAuth =
  | { readonly type: 'password'; readonly method: 'LOGIN' | 'PLAIN' | 'NTLM'; readonly user: string; readonly pass: string }
  | { readonly type: 'oauth2'; readonly user: string; readonly provisionCallback: XOAuth2ProvisionCallback };

export interface RawSmtpPoolOptions {
  /** host, port, EHLO name, timeouts, TLS mode and material, logger/transactionLog */
  readonly connection: SMTPConnection.Options;
  /** when set, every connection logs in, whether or not the server advertises AUTH */
  readonly auth?: RawSmtpAuth | undefined;
  /** how long the TCP connect (direct or through the proxy) may take; default: connection.connectionTimeout */
  readonly connectSeconds?: number | undefined;
  /** HTTP CONNECT proxy URL (upstream.proxy) */
  readonly proxy?: string | undefined;
  readonly maxConnections: number;
  /** messages per connection before it is closed and replaced */
  readonly maxMessages: number;
  /** runs before each new connection's socket opens (POP3-before-SMTP login); a rejection fails the connection */
  readonly beforeConnect?: (() => Promise<void>) | undefined;
}

export interface RawEnvelope {
  /** '' is the null sender <> */
  readonly from: string;
  readonly to: readonly string[];
  /** SIZE= (when the server offers SIZE) */
  readonly size: number;
  /** BODY=8BITMIME (when the server offers 8BITMIME) */
  readonly use8BitMime: boolean;
}

export interface RawSmtpPool {
  /** `body`: in memory, or the spool's header + body range, opened anew for every attempt */
  send(envelope: RawEnvelope, body: RawSource): Promise<SMTPConnection.SentMessageInfo>;
  /** closes every connection; queued sends fail */
  close(): void;
  /** open or opening connections */
  readonly connections: number;
}

interface Slot {
  readonly connection: RawConnection;
  messages: number;
  busy: boolean;
  retired: boolean;
}

interface Job {
  readonly envelope: RawEnvelope;
  readonly body: RawSource;
  readonly resolve: (info: SMTPConnection.SentMessageInfo) => void;
  readonly reject: (err: unknown) => void;
  /** already retried once after a reused connection turned out dead */
  retried: boolean;
}

type SmtpError = Error & { code?: string; responseCode?: number };

/** nodemailer's own notion of a failure that says nothing about the message (errors.js isTransientError). */
function isTransient(err: SmtpError): boolean {
  return err.responseCode === 421 || err.code === 'ECONNECTION' || err.code === 'ESOCKET' || err.code === 'ETIMEDOUT';
}

export function createRawSmtpPool(options: RawSmtpPoolOptions): RawSmtpPool {
  const slots = new Set<Slot>();
  const queue: Job[] = [];
  let opening = 0;
  let closed = false;
  // one MimeNode, used only for its envelope normalisation (setEnvelope replaces the last one)
  const normalizer = new MimeNode();

  const authData = (): SMTPConnection.AuthenticationType | undefined => {
    const auth = options.auth;
    if (auth === undefined) return undefined;
    if (auth.type === 'password') return { user: auth.user, pass: auth.pass, method: auth.method };
    // a new XOAuth2 per connection, as nodemailer's pool does: each asks for its own token
    return { user: auth.user, method: 'XOAUTH2', oauth2: new XOAuth2({ user: auth.user, provisionCallback: auth.provisionCallback }) };
  };

  const retire = (slot: Slot, how: 'quit' | 'close'): void => {
    if (slot.retired) return;
    slot.retired = true;
    slots.delete(slot);
    if (how === 'quit') slot.connection.quit();
    else slot.connection.close();
  };

  const connect = async (): Promise<Slot> => {
    await options.beforeConnect?.();
    // the TCP connect is ours, bounded by connectSeconds alone (open-socket.ts says why)
    const socket = await openUpstreamSocket({
      host: options.connection.host ?? 'localhost',
      port: Number(options.connection.port ?? 25),
      proxy: options.proxy,
      connectSeconds: options.connectSeconds ?? (options.connection.connectionTimeout ?? NODEMAILER_CONNECTION_TIMEOUT_MS) / 1000,
    }).catch((err: unknown) => {
      throw asNodemailerError(err);
    });
    const connection = new RawConnection({ ...options.connection, connection: socket });
    return new Promise<Slot>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        connection.close();
        reject(err);
      };
      const onEnd = (): void => fail(Object.assign(new Error('Connection closed before the session was ready'), { code: 'ECONNECTION' }));
      connection.on('error', fail);
      connection.once('end', onEnd);
      const ready = (): void => {
        if (settled) return;
        settled = true;
        connection.removeListener('error', fail);
        connection.removeListener('end', onEnd);
        const slot: Slot = { connection, messages: 0, busy: false, retired: false };
        // while a send is in flight its callback gets the error; an idle connection that fails
        // or that the server closes (idle timeout) just leaves the pool
        connection.on('error', () => {
          if (!slot.busy) retire(slot, 'close');
        });
        connection.once('end', () => {
          slot.retired = true;
          slots.delete(slot);
        });
        resolve(slot);
      };
      connection.connect((err) => {
        if (err !== undefined && err !== null) return fail(err);
        const auth = authData();
        if (auth === undefined) return ready();
        // forceAuth: a server that does not advertise AUTH still gets it (and refuses), so a
        // configured login never silently turns into an unauthenticated send
        connection.login(auth, (loginErr) => (loginErr !== null && loginErr !== undefined ? fail(loginErr) : ready()));
      });
    });
  };

  const release = (slot: Slot): void => {
    if (slot.retired) return pump();
    if (slot.messages >= options.maxMessages) retire(slot, 'quit');
    else slot.busy = false;
    pump();
  };

  const run = (slot: Slot, job: Job): void => {
    slot.busy = true;
    const reused = slot.messages > 0;
    const connection = slot.connection;
    connection.bodyStarted = false;
    const normalized = normalizer.setEnvelope({ from: job.envelope.from, to: [...job.envelope.to] }).getEnvelope();
    const envelope = { from: normalized.from === false ? '' : normalized.from, to: normalized.to, size: job.envelope.size, use8BitMime: job.envelope.use8BitMime };
    const message = Buffer.isBuffer(job.body) ? job.body : openRaw(job.body);
    connection.send(envelope, message, (err, info) => {
      slot.messages += 1;
      if (err === null || err === undefined) {
        job.resolve(info!);
        return release(slot);
      }
      const error = err as SmtpError;
      if (reused && !connection.bodyStarted && isTransient(error) && !job.retried) {
        // the server dropped a connection that sat idle in the pool, before any message byte:
        // the message goes out once more, on a new connection
        job.retried = true;
        retire(slot, 'close');
        queue.unshift(job);
        return pump();
      }
      job.reject(err);
      if ((error.code === 'EENVELOPE' || error.code === 'EMESSAGE') && error.responseCode !== 421 && !connection.destroyed) {
        // the server refused this message; the session is fine: RSET and keep the connection
        connection.reset((resetErr) => {
          if (resetErr !== null && resetErr !== undefined) retire(slot, 'close');
          release(slot);
        });
        return;
      }
      retire(slot, 'close');
      pump();
    });
  };

  const open = (): void => {
    opening += 1;
    connect().then(
      (slot) => {
        opening -= 1;
        if (closed) return retire(slot, 'close');
        slots.add(slot);
        pump();
      },
      (err: unknown) => {
        opening -= 1;
        // the message this connection was opened for fails with the reason, as in nodemailer's pool
        queue.shift()?.reject(err);
        pump();
      },
    );
  };

  function pump(): void {
    if (closed) return;
    for (const slot of slots) {
      if (queue.length === 0) break;
      if (!slot.busy && !slot.retired) run(slot, queue.shift()!);
    }
    while (queue.length > opening && slots.size + opening < options.maxConnections) open();
  }

  return {
    send(envelope, body) {
      if (closed) return Promise.reject(Object.assign(new Error('the upstream transport is closed'), { code: 'ECONNECTION' }));
      return new Promise((resolve, reject) => {
        queue.push({ envelope, body, resolve, reject, retried: false });
        pump();
      });
    },
    close() {
      closed = true;
      for (const job of queue.splice(0)) job.reject(Object.assign(new Error('the upstream transport was closed'), { code: 'ECONNECTION' }));
      for (const slot of [...slots]) retire(slot, slot.busy ? 'close' : 'quit');
    },
    get connections() {
      return slots.size + opening;
    },
  };
}
