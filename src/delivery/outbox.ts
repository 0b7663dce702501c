/**
 * The embedded default upstream: writes each message as `<dir>/<qid>.eml`.
 *
 * Does: write the final bytes durably (tmp file `.<qid>.eml.tmp` in the same directory,
 *   fsync, rename, fsync the directory) and report every recipient accepted.
 * Never: leave a partial `.eml` under its final name; use synchronous fs; make a directory
 *   wider than 0750 or a file wider than 0640 (messages are private, whatever the umask).
 * Assumes: `dir` exists or can be created; qids are file-name safe (the spool makes them).
 */
import * as fsPromises from 'node:fs/promises';
import { join } from 'node:path';
import type { OutgoingMessage, SendReport, UpstreamTransport, VerifyStep } from '../core/ports.js';
import { openRaw } from '../core/raw-source.js';

/** The async fs calls the outbox uses (tests may pass a failing one). */
export interface OutboxFs {
  mkdir: typeof fsPromises.mkdir;
  open: typeof fsPromises.open;
  rename: typeof fsPromises.rename;
  rm: typeof fsPromises.rm;
}

export interface OutboxOptions {
  readonly dir: string;
  readonly fsync: boolean;
  readonly fs?: OutboxFs;
}

const SAFE_QID = /^[A-Za-z0-9._-]+$/;

export function createOutboxTransport(opts: OutboxOptions): UpstreamTransport {
  const fs: OutboxFs = opts.fs ?? fsPromises;

  async function fsyncDir(): Promise<void> {
    if (!opts.fsync) return;
    const handle = await fs.open(opts.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async function writeTmp(tmpPath: string, message: OutgoingMessage): Promise<void> {
    const handle = await fs.open(tmpPath, 'w', 0o640);
    try {
      // a spooled message is its header, then its body range of the spool file (writeFile
      // writes each chunk whole, at the current position)
      if (Buffer.isBuffer(message.raw)) await handle.writeFile(message.raw);
      else for await (const chunk of openRaw(message.raw) as AsyncIterable<Buffer>) await handle.writeFile(chunk);
      if (opts.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }

  return {
    name: 'outbox',
    async send(message: OutgoingMessage): Promise<SendReport> {
      if (!SAFE_QID.test(message.qid) || message.qid.startsWith('.')) throw new Error(`outbox: unsafe qid ${JSON.stringify(message.qid)}`);
      await fs.mkdir(opts.dir, { recursive: true, mode: 0o750 }); // like the spool, whatever the umask
      const fileName = `${message.qid}.eml`;
      const tmpPath = join(opts.dir, `.${fileName}.tmp`);
      try {
        await writeTmp(tmpPath, message);
        await fs.rename(tmpPath, join(opts.dir, fileName));
      } catch (err) {
        await fs.rm(tmpPath, { force: true }).catch(() => undefined);
        throw err;
      }
      await fsyncDir();
      return { accepted: [...message.envelope.rcptTo], rejected: [], response: `250 2.0.0 written to outbox/${fileName}` };
    },
    async verify(onStep) {
      let step: VerifyStep;
      try {
        await fs.mkdir(opts.dir, { recursive: true, mode: 0o750 }); // like the spool, whatever the umask
        step = { step: 'outbox', status: 'ok', detail: `messages are written to ${opts.dir} as .eml files` };
      } catch (err) {
        step = { step: 'outbox', status: 'failed', detail: `cannot create ${opts.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
      }
      onStep?.(step);
      return [step];
    },
    async close() {
      // nothing held open between sends
    },
  };
}
