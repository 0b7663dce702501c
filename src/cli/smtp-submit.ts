/**
 * A minimal SMTP client for `smtp-sidecar sendmail`: submits one message to the running relay
 * and reports every reply, so that the caller can print the relay's own answer and pick an
 * exit code.
 *
 * Does: connect, read the greeting, EHLO (HELO when EHLO is refused), MAIL FROM with
 *   BODY=8BITMIME / SMTPUTF8 / SIZE when the relay offers them, one RCPT TO per recipient,
 *   DATA with dot-stuffing, QUIT. A recipient refused with `452 4.5.3` after others were
 *   accepted means "too many recipients in this transaction" (RFC 5321 4.5.3.1.10): the
 *   accepted ones get the message, and the rest go in the next transaction.
 * Never: send DATA when any recipient of the transaction was refused for another reason
 *   (all or nothing, so that the caller's retry cannot duplicate the message for the others);
 *   wait without a bound (every reply has a timeout); follow a reply it cannot parse.
 * Assumes: a plain-text loopback connection to our own relay (no STARTTLS, no AUTH: the relay
 *   offers neither); the message is already CRLF-terminated and fits in memory.
 *
 * nodemailer's SMTPConnection is not used: it sends DATA to the accepted recipients when some
 * are refused, which is exactly what a sendmail must not do.
 */
import net from 'node:net';
import { openUpstreamSocket } from '../delivery/open-socket.js';
import type { SmtpStep } from './sysexits.js';

/** `HOST:PORT` or `[IPv6]:PORT`; undefined when it is neither. */
export function parseVia(via: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(via);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

export interface SmtpReply {
  readonly code: number;
  /** the reply lines without the code, joined with a space */
  readonly text: string;
  /** the reply as the relay wrote it (all lines, CRLF removed, joined with " / ") */
  readonly raw: string;
  readonly enhanced: string | undefined;
}

export interface SubmitTarget {
  readonly host: string;
  readonly port: number;
  /** the EHLO name */
  readonly heloName: string;
  readonly connectTimeoutMs: number;
  readonly replyTimeoutMs: number;
  /** the reply to the end of DATA: the relay may hold it for delivery.waitSeconds */
  readonly finalReplyTimeoutMs: number;
}

export interface SubmitEnvelope {
  /** '' for the null sender */
  readonly from: string;
  readonly to: readonly string[];
  readonly eightBit: boolean;
}

export interface Refusal {
  readonly step: SmtpStep;
  readonly reply: SmtpReply;
  /** the recipient a RCPT reply was about */
  readonly recipient?: string;
}

export type SubmitResult =
  /** `replies`: the relay's answer to each transaction's end of DATA (more than one when it limits recipients) */
  | { readonly kind: 'accepted'; readonly replies: readonly SmtpReply[] }
  /** refused: nothing of this transaction was sent; `delivered` went out in earlier transactions */
  | { readonly kind: 'refused'; readonly refusals: readonly Refusal[]; readonly delivered: readonly string[] }
  /** no SMTP session at all: connection refused, no route, timeout */
  | { readonly kind: 'unreachable'; readonly reason: string }
  /** the session broke in the middle (connection lost, timeout, unparseable reply) */
  | { readonly kind: 'broken'; readonly step: SmtpStep; readonly reason: string; readonly delivered: readonly string[] };

class SessionBroken extends Error {
  constructor(
    readonly step: SmtpStep,
    reason: string,
  ) {
    super(reason);
  }
}

const REPLY_LINE = /^(\d{3})([ -])(.*)$/;
const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})\b/;

/** Reads CRLF- (or LF-) terminated SMTP replies from a socket. */
class ReplyReader {
  private buffer = '';
  private readonly replies: SmtpReply[] = [];
  private pendingLines: string[] = [];
  private waiter: (() => void) | undefined;
  private ended: string | undefined;

  constructor(socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let lf: number;
      while ((lf = this.buffer.indexOf('\n')) !== -1) {
        this.line(this.buffer.slice(0, lf).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(lf + 1);
      }
      this.wake();
    });
    socket.on('close', () => this.end('the relay closed the connection'));
    socket.on('error', (err: NodeJS.ErrnoException) => this.end(`connection error (${err.code ?? err.message})`));
  }

  private line(line: string): void {
    const match = REPLY_LINE.exec(line);
    if (match === null) {
      this.end(`unexpected reply line ${JSON.stringify(line.slice(0, 200))}`);
      return;
    }
    this.pendingLines.push(line);
    if (match[2] === ' ') {
      const code = Number(match[1]);
      const texts = this.pendingLines.map((l) => l.slice(4));
      const text = texts.join(' ');
      this.replies.push({ code, text, raw: this.pendingLines.join(' / '), enhanced: ENHANCED.exec(texts[0] ?? '')?.[1] });
      this.pendingLines = [];
    }
  }

  private end(reason: string): void {
    this.ended ??= reason;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  async next(step: SmtpStep, timeoutMs: number): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.replies.shift();
      if (reply !== undefined) return reply;
      if (this.ended !== undefined) throw new SessionBroken(step, this.ended);
      const left = deadline - Date.now();
      if (left <= 0) throw new SessionBroken(step, `no answer within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** The relay's socket, opened like an upstream's (delivery/open-socket.ts), with errors in this client's words. */
function connect(target: SubmitTarget): Promise<net.Socket> {
  return openUpstreamSocket({ host: target.host, port: target.port, connectSeconds: target.connectTimeoutMs / 1000 }).catch((err: NodeJS.ErrnoException) => {
    // the connect timer's own ETIMEDOUT has no syscall; a system error keeps its code (ECONNREFUSED, ...)
    if (err.code === 'ETIMEDOUT' && err.syscall === undefined) throw new Error(`no connection within ${Math.round(target.connectTimeoutMs / 1000)} s`);
    throw new Error(err.code ?? err.message);
  });
}

/** Dot-stuffs CRLF-terminated data and appends the end-of-data line. */
export function dotStuff(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < data.length) {
    if (data[start] === 0x2e) parts.push(Buffer.from('.'));
    const lf = data.indexOf(0x0a, start);
    const end = lf === -1 ? data.length : lf + 1;
    parts.push(data.subarray(start, end));
    start = end;
  }
  if (data.length > 0 && data[data.length - 1] !== 0x0a) parts.push(Buffer.from('\r\n'));
  parts.push(Buffer.from('.\r\n'));
  return Buffer.concat(parts);
}

const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s);

export async function submitMessage(target: SubmitTarget, envelope: SubmitEnvelope, data: Buffer): Promise<SubmitResult> {
  let socket: net.Socket;
  try {
    socket = await connect(target);
  } catch (err) {
    return { kind: 'unreachable', reason: (err as Error).message };
  }
  const reader = new ReplyReader(socket);
  const delivered: string[] = [];
  const finals: SmtpReply[] = [];
  const send = (line: string): void => void socket.write(`${line}\r\n`);
  const ask = async (line: string, step: SmtpStep, timeoutMs = target.replyTimeoutMs): Promise<SmtpReply> => {
    send(line);
    return reader.next(step, timeoutMs);
  };
  try {
    const greeting = await reader.next('greeting', target.replyTimeoutMs);
    if (greeting.code !== 220) return { kind: 'refused', refusals: [{ step: 'greeting', reply: greeting }], delivered };
    let hello = await ask(`EHLO ${target.heloName}`, 'EHLO');
    let extensions = new Set<string>();
    if (hello.code === 250) {
      extensions = new Set(hello.raw.split(' / ').slice(1).map((l) => l.slice(4).split(' ')[0]!.toUpperCase()));
    } else {
      hello = await ask(`HELO ${target.heloName}`, 'EHLO');
      if (hello.code !== 250) return { kind: 'refused', refusals: [{ step: 'EHLO', reply: hello }], delivered };
    }
    const params: string[] = [];
    if (envelope.eightBit && extensions.has('8BITMIME')) params.push('BODY=8BITMIME');
    if (extensions.has('SMTPUTF8') && ![envelope.from, ...envelope.to].every(isAscii)) params.push('SMTPUTF8');
    if (extensions.has('SIZE')) params.push(`SIZE=${data.length}`);
    const mailFrom = `MAIL FROM:<${envelope.from}>${params.map((p) => ` ${p}`).join('')}`;
    const payload = dotStuff(data);

    let remaining = [...envelope.to];
    while (remaining.length > 0) {
      const mail = await ask(mailFrom, 'MAIL');
      if (mail.code !== 250) return { kind: 'refused', refusals: [{ step: 'MAIL', reply: mail }], delivered };
      const accepted: string[] = [];
      const refusals: Refusal[] = [];
      let next: string[] = [];
      for (const [i, recipient] of remaining.entries()) {
        const reply = await ask(`RCPT TO:<${recipient}>`, 'RCPT');
        if (reply.code === 250 || reply.code === 251) accepted.push(recipient);
        else if (reply.code === 452 && accepted.length > 0 && refusals.length === 0) {
          next = remaining.slice(i); // this transaction is full; the rest go in the next one
          break;
        } else refusals.push({ step: 'RCPT', reply, recipient });
      }
      if (refusals.length > 0) {
        await ask('RSET', 'MAIL').catch(() => undefined);
        return { kind: 'refused', refusals, delivered };
      }
      const dataReply = await ask('DATA', 'DATA');
      if (dataReply.code !== 354) return { kind: 'refused', refusals: [{ step: 'DATA', reply: dataReply }], delivered };
      socket.write(payload);
      const final = await reader.next('END-OF-DATA', target.finalReplyTimeoutMs);
      if (final.code < 200 || final.code > 299) return { kind: 'refused', refusals: [{ step: 'END-OF-DATA', reply: final }], delivered };
      delivered.push(...accepted);
      finals.push(final);
      remaining = next;
    }
    await ask('QUIT', 'MAIL').catch(() => undefined);
    return { kind: 'accepted', replies: finals };
  } catch (err) {
    if (err instanceof SessionBroken) return { kind: 'broken', step: err.step, reason: err.message, delivered };
    throw err;
  } finally {
    socket.destroy();
  }
}
