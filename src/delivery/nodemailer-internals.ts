/**
 * Every nodemailer internal the relay relies on, in one file: the three things nodemailer's
 * public SMTPConnection API cannot do. Read against nodemailer 10.6.0
 * (node_modules/nodemailer/dist/esm/smtp-connection/index.js); each is pinned by
 * test/unit/delivery/nodemailer-internals.test.ts, which fails naming the change when an
 * upgrade moves them.
 *
 * Does:
 *   - `secureSocketOf`: the TLSSocket of a secured connection, for validate's "TLSv1.3,
 *     certificate CN=..." line. The public API only says *whether* TLS is on (`secure`). Node's
 *     `tls.checkServerIdentity` option (passed through `options.tls`) would show the certificate
 *     but not the protocol version, and after STARTTLS the TLSSocket exists only inside
 *     nodemailer: `_upgradeConnection()` stores what `tls.connect({ socket })` returns in
 *     `this._socket` and then sets `secure = true`.
 *   - `sendCommand`: one command and its reply, for validate's "MAIL FROM:<> then RSET" probe.
 *     The public `send()` always goes on to RCPT TO and DATA. nodemailer sends a command with
 *     `_sendCommand(line)` and hands the next reply to the first function in `_responseActions`.
 *   - `RawConnection`: an SMTPConnection whose message bytes go through DotStuffer instead of
 *     nodemailer's DataStream (the raw sender's fast path, smtp-raw.ts). `send()` asks
 *     `this._createSendStream(callback)` for the stream it pipes the message into after the 354
 *     and reads `outByteCount` from it. The override returns a DotStuffer (same bytes out, see
 *     dot-stuff.ts); the rest (queue the final-reply handler `_actionSMTPStream`, remember the
 *     stream in `_currentDataStream` so close() can unpipe it, pipe it into `_socket` without
 *     ending it) is copied from nodemailer's `_createSendStream`, minus LMTP and debug logging,
 *     which we never use.
 * Never: reach into nodemailer anywhere else (a new need goes here, with its pin).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { DotStuffer } from './dot-stuff.js';

type SendCallback = (err: Error | null, result?: string) => void;

/** The SMTPConnection members used below (not all in nodemailer's type declarations). */
interface Internals {
  _socket: Socket | TLSSocket | false | null;
  _responseActions: ((reply: string) => void)[];
  _sendCommand(command: string): void;
  _actionSMTPStream(reply: string, callback: SendCallback): void;
  _currentDataStream: unknown;
}

const internals = (connection: SMTPConnection): Internals => connection as unknown as Internals;

/** The connection's TLSSocket once TLS is on (implicit TLS or after STARTTLS); undefined otherwise. */
export function secureSocketOf(connection: SMTPConnection): TLSSocket | undefined {
  if (!connection.secure) return undefined;
  const socket = internals(connection)._socket;
  if (socket === false || socket === null || typeof (socket as Partial<TLSSocket>).getProtocol !== 'function') return undefined;
  return socket as TLSSocket;
}

/**
 * Sends one command and resolves with the server's reply, or with undefined when none came
 * within timeoutMs (a socket-level bound: a real timer, like nodemailer's own socket timeout).
 * The connection must be idle (no command of its own waiting for a reply).
 */
export function sendCommand(connection: SMTPConnection, line: string, timeoutMs: number): Promise<string | undefined> {
  const smtp = internals(connection);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    smtp._responseActions.push((reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
    smtp._sendCommand(line);
  });
}

/** An SMTPConnection whose message data goes through DotStuffer instead of DataStream. */
export class RawConnection extends SMTPConnection {
  /** true once the current send started writing message bytes (after the server's 354) */
  bodyStarted = false;

  _createSendStream(callback: SendCallback): DotStuffer {
    const self = internals(this);
    const stream = new DotStuffer();
    this.bodyStarted = true;
    self._responseActions.push((reply) => self._actionSMTPStream(reply, callback));
    self._currentDataStream = stream;
    stream.pipe(self._socket as Socket, { end: false });
    stream.once('end', () => {
      if (self._currentDataStream === stream) self._currentDataStream = false;
    });
    return stream;
  }
}
