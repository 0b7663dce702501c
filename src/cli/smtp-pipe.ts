/**
 * `sendmail -bs`: an SMTP session on stdin/stdout, relayed to the running relay (programs that
 * speak SMTP to a sendmail child process use it, e.g. Symfony Mailer's default
 * `/usr/sbin/sendmail -bs`).
 *
 * Does: connect to the relay; once its greeting has arrived, copy stdin to it with every bare
 *   LF turned into CRLF (a program writing to a pipe often ends lines with LF only); copy the
 *   relay's replies to stdout. When stdin ends, wait until every command sent has its reply
 *   (the reply to the end of DATA may be held for delivery.waitSeconds) and then close.
 * Never: change a command or a reply (the relay applies every policy and writes every reply);
 *   wait without a bound after stdin ends.
 * Assumes: the relay is local; the caller maps "unreachable" to EX_TEMPFAIL.
 */
import net from 'node:net';

export type PipeResult = { readonly kind: 'done' } | { readonly kind: 'unreachable'; readonly reason: string };

/** Turns bare LF into CRLF across chunk boundaries. */
export function crlfNormalizer(): (chunk: Buffer) => Buffer {
  let previous = -1;
  return (chunk) => {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === 0x0a && previous !== 0x0d) out.push(0x0d);
      out.push(byte);
      previous = byte;
    }
    return Buffer.from(out);
  };
}

/**
 * Counts the replies a client's lines call for: one per command line; none for the lines of a
 * message after DATA, one for its final ".". (After DATA the relay's 354 is the command's reply.)
 */
export function replyCounter(): { readonly lines: (text: string) => void; readonly expected: () => number } {
  let expected = 0;
  let inData = false;
  let partial = '';
  return {
    lines(text) {
      partial += text;
      let lf: number;
      while ((lf = partial.indexOf('\n')) !== -1) {
        const line = partial.slice(0, lf).replace(/\r$/, '');
        partial = partial.slice(lf + 1);
        if (inData) {
          if (line === '.') {
            inData = false;
            expected++;
          }
          continue;
        }
        expected++;
        if (/^DATA\s*$/i.test(line)) inData = true;
      }
    },
    expected: () => expected,
  };
}

const FINAL_REPLY_LINE = /^\d{3}(?: .*)?$/;

export function pipeSmtpSession(
  target: { readonly host: string; readonly port: number; readonly connectTimeoutMs: number; readonly finalReplyTimeoutMs: number },
  stdin: NodeJS.ReadableStream,
  stdout: (text: string) => void,
): Promise<PipeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    let connected = false;
    let timer = setTimeout(() => {
      socket.destroy();
      resolve({ kind: 'unreachable', reason: `no connection within ${Math.round(target.connectTimeoutMs / 1000)} s` });
    }, target.connectTimeoutMs);
    const normalize = crlfNormalizer();
    const sent = replyCounter();
    let replies = -1; // the greeting is not an answer to a command
    let replyTail = '';
    let inputEnded = false;
    const closeWhenAnswered = () => {
      if (inputEnded && replies >= sent.expected()) socket.end();
    };
    const onInput = (chunk: Buffer | string) => {
      const bytes = normalize(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      sent.lines(bytes.toString('latin1'));
      socket.write(bytes);
    };
    const onInputEnd = () => {
      inputEnded = true;
      // bounded: a reply that never comes (the relay's own timeouts are longer) ends the session
      timer = setTimeout(() => socket.end(), target.finalReplyTimeoutMs);
      closeWhenAnswered();
    };
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
    });
    let greeted = false;
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      stdout(text);
      replyTail += text;
      let lf: number;
      while ((lf = replyTail.indexOf('\n')) !== -1) {
        if (FINAL_REPLY_LINE.test(replyTail.slice(0, lf).replace(/\r$/, ''))) replies++;
        replyTail = replyTail.slice(lf + 1);
      }
      closeWhenAnswered();
      if (greeted) return;
      // Only after the greeting: the relay (smtp-server) answers "421 You talk too soon" to a
      // client that writes first, and a program piping a whole session writes at once.
      greeted = true;
      stdin.on('data', onInput);
      stdin.once('end', onInputEnd);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected) resolve({ kind: 'unreachable', reason: err.code ?? err.message });
    });
    socket.once('close', () => {
      clearTimeout(timer);
      stdin.removeListener('data', onInput);
      stdin.removeListener('end', onInputEnd);
      // stop reading stdin so that the process can exit
      (stdin as NodeJS.ReadableStream & { pause?: () => void }).pause?.();
      resolve({ kind: 'done' });
    });
  });
}
