/**
 * delivery.waitSeconds over real sockets: the DATA reply carries the first attempt's result
 * when it arrives in time (250 with the upstream's answer, or the upstream's own 5xx and the
 * message leaves the spool), otherwise "queued" and a later delivery; 0 answers at once;
 * -1 never queues (451 4.4.1 and an empty spool when nothing took it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { openTransaction } from '../../helpers/smtp-client.js';
import { Cleanup, qidOf, relayWith, spoolFiles, until, upstream } from './support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** One message over a raw SMTP session; returns the reply to the end of DATA. */
async function dataReply(port: number, to: readonly string[], timeoutMs = 15_000): Promise<string> {
  const client = await openTransaction(port, 'app@legacy.test', to);
  try {
    client.write(`From: app@legacy.test\r\nTo: ${to.join(', ')}\r\nSubject: wait\r\n\r\nbody\r\n.\r\n`);
    return await client.next(timeoutMs);
  } finally {
    client.close();
  }
}

describe('delivery.waitSeconds', () => {
  it('> 0 and the upstream accepts: 250 with the upstream answer, nothing left in the spool', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 5 } }), (r) => r.stop());
    const reply = await dataReply(relay.port, ['alice@dest.test']);
    expect(reply).toMatch(/^250 /);
    expect(reply).toMatch(/delivered as/);
    expect(reply).toContain('queued as FAKE'); // the upstream's own answer
    expect(up.messages).toHaveLength(1);
    // the entry's removal runs right behind the reply (the upstream already has the message)
    await until('the delivered entry leaves queue/', async () => (await spoolFiles(relay, 'queue')).length === 0);
    expect(await spoolFiles(relay, 'failed')).toEqual([]);
  });

  it('> 0 and the upstream refuses for good: the client gets that 5xx and the message leaves the spool', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none', failRcpt: () => ({ code: 553, message: '5.1.3 Mailbox name not allowed' }) }), (u) => u.close());
    const second = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', up.port), upstream('secondary', second.port)], { delivery: { waitSeconds: 5 } }), (r) => r.stop());
    const reply = await dataReply(relay.port, ['nobody@dest.test']);
    expect(reply).toMatch(/^553 /);
    expect(reply).toContain('Mailbox name not allowed');
    expect(await spoolFiles(relay, 'queue')).toEqual([]);
    expect(await spoolFiles(relay, 'failed')).toEqual([]);
    expect(second.connections).toBe(0);
  });

  it('> 0 and the upstream is slower than the wait: 250 queued, delivered later', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none', delayMs: 500 }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 0.2 } }), (r) => r.stop());
    const reply = await dataReply(relay.port, ['alice@dest.test']);
    expect(reply).toMatch(/^250 .*queued as/);
    const qid = qidOf(reply)!;
    expect(up.messages).toHaveLength(0);
    expect(await spoolFiles(relay, 'queue')).toContain(`${qid}.msg`);
    await up.waitForMessages(1, 10_000);
    await until('the queue is empty', async () => (await spoolFiles(relay, 'queue')).length === 0, 10_000);
  });

  it('0: queued reply right after spooling, then delivered', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none', delayMs: 300 }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 0 } }), (r) => r.stop());
    const reply = await dataReply(relay.port, ['alice@dest.test']);
    expect(reply).toMatch(/^250 .*queued as/);
    expect(up.messages).toHaveLength(0);
    await up.waitForMessages(1);
  });

  it('-1 with every upstream down: 451 4.4.1 and the spool is empty', async () => {
    const relay = cleanup.add(await relayWith([upstream('primary', await startRefusingPort()), upstream('secondary', await startRefusingPort())], { delivery: { waitSeconds: -1 } }), (r) => r.stop());
    const reply = await dataReply(relay.port, ['alice@dest.test']);
    expect(reply).toMatch(/^451 4\.4\.1/);
    expect(await spoolFiles(relay, 'queue')).toEqual([]);
    expect(await spoolFiles(relay, 'failed')).toEqual([]);
  });

  it('-1 and the upstream accepts: 250 with the upstream answer', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: -1 } }), (r) => r.stop());
    const reply = await dataReply(relay.port, ['alice@dest.test']);
    expect(reply).toMatch(/^250 .*queued as FAKE/);
    await until('the delivered entry leaves queue/', async () => (await spoolFiles(relay, 'queue')).length === 0);
  });

  it('a permanent rejection whose recording outlasts the wait is still answered with the 5xx (never "queued" for a message handed back)', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none', failRcpt: () => ({ code: 550, message: '5.1.1 User unknown' }) }), (u) => u.close());
    const dir = cleanup.add(await mkdtemp(join(tmpdir(), 'smtp-sidecar-slow-spool-')), (d) => rm(d, { recursive: true, force: true }));
    const spoolDir = join(dir, 'spool');
    // a spool whose remove() is slow (a busy disk): the wait runs out while the outcome is being recorded
    const spool = new FsSpool({ dir: spoolDir, fsync: false, clock: systemClock });
    const realRemove = spool.remove.bind(spool);
    let removed: Promise<void> | undefined;
    spool.remove = (qid: string) => {
      // the 800 ms is the fault under test (a slow disk), longer than the 0.4 s wait
      removed = new Promise((resolve) => setTimeout(resolve, 800)).then(() => realRemove(qid));
      return removed;
    };
    const relay = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 0.4, spoolDir } }, { spool }), (r) => r.stop());
    const reply = await dataReply(relay.port, ['nobody@dest.test']);
    const qid = qidOf(reply);
    // either the client got the 5xx (it owns the message), or the message is still ours somewhere
    if (reply.startsWith('250')) {
      await removed; // the recording has finished
      const kept = [...(await spoolFiles(relay, 'queue')), ...(await spoolFiles(relay, 'failed'))].filter((f) => f.startsWith(qid ?? '?'));
      expect(kept, `the client got "${reply}" but the message is gone`).not.toEqual([]);
    }
    expect(reply).toMatch(/^550 /);
    expect(await spoolFiles(relay, 'queue')).toEqual([]);
  });
});
