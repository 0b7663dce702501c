/**
 * The benchmark's load generator: N concurrent raw-socket SMTP sessions (TCP_NODELAY, no
 * pipelining: MAIL, RCPT, DATA, body, each waiting for its reply, as a legacy app does).
 * Either one connection per session kept for all its messages, or (`perMessage`) a new
 * connection for every message: connect, greeting, EHLO, MAIL, RCPT, DATA, QUIT, close, as
 * ERP batch jobs and monitoring tools do.
 *
 * Does: carry each message's id in the envelope sender (`<id>@bench.test`) so the sink can
 *   key receipts without parsing; record per message the time its last byte was handed to
 *   the kernel (`dataEndMs`) and the time the final reply arrived (`replyMs`).
 * Never: connect anywhere but 127.0.0.1; loop without a bound (count and deadline).
 * Assumes: the server greets with 220 and accepts EHLO; bodies are CRLF, dot-safe
 *   (no line starts with '.') and end with CRLF.
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

export const nowMs = () => performance.timeOrigin + performance.now();

const KIB = 1024;
export const SIZES = { '10k': 10 * KIB, '1m': KIB * KIB, '25m': 25 * KIB * KIB };

/** Parses "10k", "1m", "25m" or a plain byte count. */
export function parseSize(text) {
  if (text in SIZES) return SIZES[text];
  const match = /^(\d+)([kKmM]?)$/.exec(text);
  if (!match) throw new Error(`--size: expected 10k, 1m, 25m or a byte count, got "${text}"`);
  const unit = match[2].toLowerCase() === 'k' ? KIB : match[2].toLowerCase() === 'm' ? KIB * KIB : 1;
  return Number(match[1]) * unit;
}

const LINE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** `count` bytes of 76-character base64-alphabet lines, each ending in CRLF (dot-safe). */
function filler(sizeBytes) {
  const line = Buffer.from(`${Array.from({ length: 76 }, (_, i) => LINE_CHARS[(i * 7) % 64]).join('')}\r\n`, 'latin1');
  const lines = Math.max(1, Math.ceil(sizeBytes / line.length));
  const out = Buffer.allocUnsafe(lines * line.length);
  for (let i = 0; i < lines; i += 1) line.copy(out, i * line.length);
  return out;
}

/**
 * The shared part of every message of a run: below 100 KiB a text/plain body; from there
 * on a multipart/mixed message with a short text part and a base64 attachment (what a
 * legacy app sending reports does), so the relay's MIME parser sees an attachment.
 */
export function buildBody(sizeBytes) {
  const headerAllowance = 400;
  const target = Math.max(256, sizeBytes - headerAllowance);
  if (sizeBytes < 100 * KIB) {
    return {
      contentType: 'text/plain; charset=us-ascii',
      body: filler(target),
    };
  }
  const boundary = 'bench-boundary-7f3a';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nReport attached.\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream; name="report.bin"\r\n` +
      `Content-Disposition: attachment; filename="report.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n`,
    'latin1',
  );
  const tail = Buffer.from(`--${boundary}--\r\n`, 'latin1');
  return {
    contentType: `multipart/mixed; boundary="${boundary}"`,
    body: Buffer.concat([head, filler(target - head.length - tail.length), tail]),
  };
}

export function headerFor(id, contentType) {
  return Buffer.from(
    `From: Bench Sender <sender@bench.test>\r\nTo: <rcpt@sink.test>\r\nSubject: bench ${id}\r\n` +
      `Date: ${new Date().toUTCString().replace('GMT', '+0000')}\r\nMessage-ID: <${id}@bench.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n\r\n`,
    'latin1',
  );
}

/** One SMTP connection with a FIFO of reply waiters; `connectStartMs` is when connect() was called. */
function openConnection(port, deadlineMs) {
  return new Promise((resolve, reject) => {
    const connectStartMs = nowMs();
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    const replies = [];
    const waiters = [];
    let buffer = '';
    let current = [];
    let closedError;
    const deliver = () => {
      while (waiters.length > 0 && (replies.length > 0 || closedError)) {
        const waiter = waiters.shift();
        if (replies.length > 0) waiter.resolve(replies.shift());
        else waiter.reject(closedError);
      }
    };
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let at;
      while ((at = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        current.push(line);
        if (line.length < 4 || line[3] !== '-') {
          replies.push({ code: Number(line.slice(0, 3)), text: current.join('\n') });
          current = [];
        }
      }
      deliver();
    });
    socket.on('error', (err) => {
      closedError = err;
      deliver();
    });
    socket.on('close', () => {
      closedError ??= new Error('connection closed');
      deliver();
    });
    const next = () =>
      new Promise((res, rej) => {
        const remaining = deadlineMs - nowMs();
        if (remaining <= 0) return rej(new Error('scenario deadline passed'));
        const timer = setTimeout(() => rej(new Error('scenario deadline passed while waiting for a reply')), remaining);
        waiters.push({
          resolve: (v) => (clearTimeout(timer), res(v)),
          reject: (e) => (clearTimeout(timer), rej(e)),
        });
        deliver();
      });
    const connection = {
      socket,
      connectStartMs,
      next,
      async command(line) {
        socket.write(`${line}\r\n`);
        return next();
      },
      destroy() {
        socket.destroy();
      },
    };
    socket.once('connect', () => resolve(connection));
    socket.once('error', reject);
  });
}

async function expect(promise, code, what) {
  const reply = await promise;
  if (reply.code !== code) throw Object.assign(new Error(`${what}: expected ${code}, got ${reply.text}`), { reply });
  return reply;
}

/** Connect, greeting (its delay pushed to `greetingMs`), EHLO. */
async function openSession(port, deadlineMs, connections, greetingMs) {
  const c = await openConnection(port, deadlineMs);
  connections.add(c);
  await expect(c.next(), 220, 'greeting');
  greetingMs.push(nowMs() - c.connectStartMs);
  await expect(c.command('EHLO bench-client.test'), 250, 'EHLO');
  return c;
}

/** QUIT, waiting at most 200 ms for the 221, then close. */
async function closeSession(c, connections) {
  await Promise.race([c.command('QUIT').catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
  c.destroy();
  connections.delete(c);
}

/**
 * Opens `sessions` connections (greeting + EHLO), then, once all are ready, sends `count`
 * messages shared among them (each session takes the next id until none is left). With
 * `perMessage`, each session instead opens a new connection for every message and closes it
 * after QUIT; the clock starts before the first connect.
 * Returns the per-message timings, the greeting delays (connect() call → 220 received, one
 * per connection) and the moment sending started.
 */
export async function runLoad({ port, sessions, count, sizeBytes, idPrefix, deadlineMs, perMessage = false }) {
  if (perMessage) return runPerMessageLoad({ port, sessions, count, sizeBytes, idPrefix, deadlineMs });
  const { contentType, body } = buildBody(sizeBytes);
  const connections = new Set();
  const errors = [];
  const greetingMs = [];
  try {
    const opened = await Promise.allSettled(Array.from({ length: sessions }, () => openSession(port, deadlineMs, connections, greetingMs)));
    const ready = [];
    for (const o of opened) {
      if (o.status === 'fulfilled') ready.push(o.value);
      else errors.push(o.reason.message);
    }
    const messages = [];
    let nextIndex = 0;
    const startMs = nowMs();
    let aborted = false;
    await Promise.all(
      ready.map(async (c) => {
        while (nextIndex < count && !aborted) {
          const id = `${idPrefix}${nextIndex}`;
          nextIndex += 1;
          const record = newRecord(id, contentType, body);
          messages.push(record);
          try {
            await sendMessage(c, record, body);
          } catch (err) {
            if (errors.length < 20) errors.push(`${id}: ${err.message}`);
            if (err.reply === undefined) {
              aborted = nowMs() >= deadlineMs || aborted;
              return; // connection-level failure: this session stops
            }
            await c.command('RSET').catch(() => undefined);
          }
        }
      }),
    );
    for (const c of ready) await closeSession(c, connections);
    return { startMs, messages, errors, greetingMs, sessionsOpened: ready.length };
  } finally {
    for (const c of connections) c.destroy();
  }
}

function newRecord(id, contentType, body) {
  const header = headerFor(id, contentType);
  return { id, header, sizeBytes: header.length + body.length, startMs: nowMs(), dataEndMs: NaN, replyMs: NaN, ok: false };
}

/** MAIL, RCPT, DATA, the message, and its 250; fills the record's timings. */
async function sendMessage(c, record, body) {
  await expect(c.command(`MAIL FROM:<${record.id}@bench.test>`), 250, 'MAIL');
  await expect(c.command('RCPT TO:<rcpt@sink.test>'), 250, 'RCPT');
  await expect(c.command('DATA'), 354, 'DATA');
  const written = new Promise((res) => {
    c.socket.cork();
    c.socket.write(record.header);
    c.socket.write(body);
    c.socket.write('.\r\n', () => res(nowMs()));
    c.socket.uncork();
  });
  const reply = c.next();
  record.dataEndMs = await written;
  await expect(reply, 250, 'end of DATA');
  record.replyMs = nowMs();
  record.ok = true;
}

/** `sessions` workers, each: connect, greeting, EHLO, one message, QUIT, close; until `count` or the deadline. */
async function runPerMessageLoad({ port, sessions, count, sizeBytes, idPrefix, deadlineMs }) {
  const { contentType, body } = buildBody(sizeBytes);
  const connections = new Set();
  const errors = [];
  const greetingMs = [];
  const messages = [];
  let nextIndex = 0;
  const startMs = nowMs();
  try {
    await Promise.all(
      Array.from({ length: sessions }, async () => {
        while (nextIndex < count && nowMs() < deadlineMs) {
          const id = `${idPrefix}${nextIndex}`;
          nextIndex += 1;
          const record = newRecord(id, contentType, body);
          messages.push(record);
          let c;
          try {
            c = await openSession(port, deadlineMs, connections, greetingMs);
            await sendMessage(c, record, body);
          } catch (err) {
            if (errors.length < 20) errors.push(`${id}: ${err.message}`);
          } finally {
            if (c !== undefined) await closeSession(c, connections);
          }
        }
      }),
    );
    return { startMs, messages, errors, greetingMs, sessionsOpened: sessions };
  } finally {
    for (const c of connections) c.destroy();
  }
}
