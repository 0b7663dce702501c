/**
 * A raw SMTP client over a real socket, for tests that need exact bytes on the wire
 * (smuggling sequences, garbage, pipelining) and every reply line.
 */
import { connect, type Socket } from 'node:net';

export interface RawSmtp {
  readonly socket: Socket;
  /** every complete reply received so far (multi-line replies joined with \n) */
  readonly replies: string[];
  /** waits for the next reply not yet consumed by `next()` */
  next(timeoutMs?: number): Promise<string>;
  /** sends bytes (string or Buffer) as they are */
  write(data: string | Buffer): void;
  /** sends a command line and returns its reply */
  command(line: string, timeoutMs?: number): Promise<string>;
  close(): void;
  readonly closed: Promise<void>;
}

export async function rawSmtp(port: number, options: { host?: string; localAddress?: string } = {}): Promise<RawSmtp> {
  const socket = connect({ port, host: options.host ?? '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  socket.setNoDelay(true);
  const replies: string[] = [];
  let consumed = 0;
  let buffer = '';
  let current: string[] = [];
  const waiters: (() => void)[] = [];
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let at;
    while ((at = buffer.indexOf('\r\n')) !== -1) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      current.push(line);
      if (line.length < 4 || line[3] !== '-') {
        replies.push(current.join('\n'));
        current = [];
        for (const w of waiters.splice(0)) w();
      }
    }
  });
  socket.on('close', () => {
    for (const w of waiters.splice(0)) w();
  });
  const next = (timeoutMs = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SMTP reply within ${timeoutMs} ms (got: ${JSON.stringify(replies)})`)), timeoutMs);
      const check = () => {
        if (consumed < replies.length) {
          clearTimeout(timer);
          resolve(replies[consumed++]!);
        } else if (socket.destroyed) {
          clearTimeout(timer);
          reject(new Error(`connection closed (replies: ${JSON.stringify(replies)})`));
        } else waiters.push(check);
      };
      check();
    });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    replies,
    next,
    write: (data) => socket.write(data),
    command: (line, timeoutMs) => {
      socket.write(`${line}\r\n`);
      return next(timeoutMs);
    },
    close: () => socket.destroy(),
    closed,
  };
}

/** Greeting, EHLO, MAIL, RCPT..., DATA; returns the client ready to send message data. */
export async function openTransaction(port: number, from: string, to: readonly string[], options: { localAddress?: string } = {}): Promise<RawSmtp> {
  const c = await rawSmtp(port, options);
  const greeting = await c.next();
  if (!greeting.startsWith('220')) throw new Error(`greeting: ${greeting}`);
  await c.command('EHLO client.test');
  const mail = await c.command(`MAIL FROM:<${from}>`);
  if (!mail.startsWith('250')) throw new Error(`MAIL: ${mail}`);
  for (const r of to) {
    const rcpt = await c.command(`RCPT TO:<${r}>`);
    if (!rcpt.startsWith('250')) throw new Error(`RCPT: ${rcpt}`);
  }
  const data = await c.command('DATA');
  if (!data.startsWith('354')) throw new Error(`DATA: ${data}`);
  return c;
}
