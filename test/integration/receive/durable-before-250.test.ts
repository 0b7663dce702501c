/**
 * The promise behind every 250: the message and its metadata are in queue/ (fsynced and
 * renamed) before the client reads the reply, and a spool that cannot finish means no 250.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { Spool } from '../../../src/core/ports.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { startRefusingPort } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { openTransaction } from '../../helpers/smtp-client.js';

let relay: TestRelay | undefined;
afterEach(async () => {
  await relay?.stop();
  relay = undefined;
});

describe('250 only after the spool has the message', () => {
  it('the message file is in queue/ at the moment the 250 arrives', async () => {
    const refusing = await startRefusingPort(); // keeps the message queued after the reply
    relay = await startRelay({ upstreams: [{ name: 'down', host: '127.0.0.1', port: refusing, security: 'none' }] });
    const c = await openTransaction(relay.port, 'a@legacy.test', ['b@dest.test']);
    const seen = new Promise<{ reply: string; msg: boolean }>((resolve) => {
      c.socket.on('data', (chunk: Buffer) => {
        const reply = chunk.toString();
        const qid = /queued as ([A-Za-z0-9]+)/.exec(reply)?.[1];
        if (qid === undefined) return;
        // checked synchronously in the same tick the reply is read
        resolve({ reply, msg: existsSync(join(relay!.spoolDir, 'queue', `${qid}.msg`)) });
      });
    });
    c.write('Subject: durable\r\n\r\nbody\r\n.\r\n');
    const at250 = await seen;
    expect(at250.reply).toMatch(/^250 2\.0\.0 /);
    expect(at250).toMatchObject({ msg: true });
    c.close();
  });

  it('no reply at all while the spool has not finished storing; 250 right after it does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-held-'));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let storing = false;
    const real = new FsSpool({ dir: join(dir, 'held-spool'), fsync: true, clock: systemClock });
    const spool: Spool = Object.assign(Object.create(real) as FsSpool, {
      store: async (input: Parameters<Spool['store']>[0]) => {
        storing = true;
        await held;
        return real.store(input);
      },
    });
    relay = await startRelay({ delivery: { spoolDir: join(dir, 'held-spool') } }, { spool });
    const c = await openTransaction(relay.port, 'a@legacy.test', ['b@dest.test']);
    const repliesAtDataEnd = c.replies.length;
    c.write('Subject: held\r\n\r\nbody\r\n.\r\n');
    while (!storing) await new Promise((r) => setTimeout(r, 10));
    // the conductor is inside store(): give the event loop many turns; nothing may be answered
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(c.replies.length).toBe(repliesAtDataEnd);
    release();
    expect(await c.next()).toMatch(/^250 /);
    c.close();
    await relay.stop();
    relay = undefined;
    await rm(dir, { recursive: true, force: true });
  });
});
