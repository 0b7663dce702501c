/**
 * What the upstream's answers mean for the spool: 5xx is final (no failover, failed/ with a
 * reason), a partial RCPT rejection is final only for the rejected recipient, 4xx keeps the
 * message queued with its retry state until a later attempt succeeds, an old message expires
 * to failed/, and the bytes that reach the upstream are the spooled bytes.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { SpoolMeta } from '../../../src/core/types.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { sha256, startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { Cleanup, deliveryLines, failureReason, queuedMeta, relayWith, send, spoolFiles, until, upstream } from './support.js';
import { storeMessage } from '../../../src/core/store-message.js';
import { readRaw } from '../../../src/core/raw-source.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('permanent rejections', () => {
  it('5xx to RCPT for every recipient: no failover, the message is in failed/ with the reason', async () => {
    const primary = cleanup.add(await startFakeUpstream({ tls: 'none', failRcpt: () => ({ code: 550, message: '5.1.1 User unknown' }) }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', primary.port), upstream('secondary', secondary.port)]), (r) => r.stop());

    const { qid } = await send(relay.port, { to: ['nobody@dest.test', 'ghost@dest.test'] });
    const failed = await relay.logs.waitFor('failed', (r) => r['qid'] === qid);
    expect(failed['level']).toBe('error');
    expect(await spoolFiles(relay, 'failed')).toEqual([`${qid}.msg`, `${qid}.reason.json`, `${qid}.state`]);
    expect(await spoolFiles(relay, 'queue')).toEqual([]);
    const reason = await failureReason(relay, qid!);
    expect(reason.recipients.map((r) => r.address).sort()).toEqual(['ghost@dest.test', 'nobody@dest.test']);
    expect(reason.recipients[0]!.response).toMatch(/550 5\.1\.1 User unknown/);
    expect(secondary.connections).toBe(0);
    expect(deliveryLines(relay, qid!).every((l) => l['relay'] === 'primary' && l['status'] === 'bounced')).toBe(true);
  });

  it('a partial RCPT rejection: the accepted recipients get it once, the rejected one goes to failed/', async () => {
    const primary = cleanup.add(
      await startFakeUpstream({ tls: 'none', failRcpt: (a) => (a.startsWith('bad') ? { code: 550, message: '5.1.1 No such user' } : undefined) }),
      (u) => u.close(),
    );
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', primary.port), upstream('secondary', secondary.port)]), (r) => r.stop());

    const { qid } = await send(relay.port, { to: ['good1@dest.test', 'bad@dest.test', 'good2@dest.test'] });
    await relay.logs.waitFor('failed', (r) => r['qid'] === qid);
    expect(primary.messages).toHaveLength(1);
    expect(primary.messages[0]!.envelope.rcptTo).toEqual(['good1@dest.test', 'good2@dest.test']);
    expect(secondary.connections).toBe(0);
    const reason = await failureReason(relay, qid!);
    expect(reason.recipients).toEqual([{ address: 'bad@dest.test', response: expect.stringMatching(/^550 5\.1\.1 No such user/) as unknown }]);
    const meta = (await new FsSpool({ dir: relay.spoolDir, fsync: false, clock: systemClock }).readFailed(qid!))!.meta;
    expect(meta.recipients.map((r) => [r.address, r.status])).toEqual([
      ['good1@dest.test', 'delivered'],
      ['bad@dest.test', 'failed'],
      ['good2@dest.test', 'delivered'],
    ]);
    expect(await spoolFiles(relay, 'queue')).toEqual([]);
  });
});

describe('temporary failures', () => {
  it('4xx on every upstream keeps the message queued with its retry state, then delivers it', async () => {
    const primary = cleanup.add(await startFakeUpstream({ tls: 'none', failData: { code: 451, message: '4.3.0 Try again later' } }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none', failMail: { code: 451, message: '4.3.0 Busy' } }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', primary.port), upstream('secondary', secondary.port)]), (r) => r.stop());

    const { qid } = await send(relay.port, { to: 'alice@dest.test' });
    await relay.logs.waitFor('deferred', (r) => r['qid'] === qid);
    const meta = await queuedMeta(relay, qid!);
    expect(meta.attempts).toBe(1);
    expect(meta.lastError).toMatch(/451/);
    const waitMs = Date.parse(meta.nextAttemptAt) - Date.parse(meta.receivedAt);
    expect(waitMs).toBeGreaterThanOrEqual(800); // minBackoffSeconds 1, jitter ±20%
    expect(deliveryLines(relay, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['primary', 'failover'],
      ['secondary', 'failover'],
    ]);
    expect(primary.messages).toHaveLength(0);

    primary.setScript({});
    const [received] = await primary.waitForMessages(1, 8000);
    expect(received!.envelope.rcptTo).toEqual(['alice@dest.test']);
    await until('the queue is empty', async () => (await spoolFiles(relay, 'queue')).length === 0);
    expect(await spoolFiles(relay, 'failed')).toEqual([]);
    expect(secondary.messages).toHaveLength(0);
  });

  it('a message older than maxLifetimeHours moves to failed/ with the reason and an error line', async () => {
    const refusing = await startRefusingPort();
    const dir = cleanup.add(await mkdtemp(join(tmpdir(), 'smtp-sidecar-old-')), (d) => rm(d, { recursive: true, force: true }));
    const spoolDir = join(dir, 'spool');
    const spool = new FsSpool({ dir: spoolDir, fsync: false, clock: systemClock });
    await spool.recover();
    const qid = spool.newQid();
    const receivedAt = new Date(Date.now() - 49 * 3_600_000).toISOString();
    const header = Buffer.from('From: app@legacy.test\r\nTo: old@dest.test\r\nSubject: old\r\n\r\n');
    const body = Buffer.from('an old message\r\n');
    await storeMessage(spool, {
      header,
      body: [body],
      meta: {
        version: 1,
        qid,
        envelope: { mailFrom: 'app@legacy.test', rcptTo: ['old@dest.test'] },
        client: { address: '127.0.0.1' },
        receivedAt,
        sizeBytes: header.length + body.length,
        facts: { from: 'app@legacy.test', subject: 'old', messageId: undefined, attachments: 0, attachmentsBytes: 0 },
        recipients: [{ address: 'old@dest.test', status: 'pending' }],
        attempts: 3,
        nextAttemptAt: receivedAt,
      },
    });

    const relay = cleanup.add(await relayWith([upstream('primary', refusing)], { delivery: { spoolDir } }), (r) => r.stop());
    const failed = await relay.logs.waitFor('failed', (r) => r['qid'] === qid);
    expect(failed['level']).toBe('error');
    expect(String(failed['reason'])).toMatch(/maximum queue lifetime/);
    const reason = await failureReason({ spoolDir }, qid);
    expect(reason.reason).toMatch(/maximum queue lifetime/);
    expect(reason.recipients).toEqual([{ address: 'old@dest.test', response: expect.stringMatching(/expired after 49 h/) as unknown }]);
    expect(await spoolFiles({ spoolDir }, 'queue')).toEqual([]);
  });
});

describe('byte fidelity', () => {
  it('the upstream receives exactly the spooled bytes', async () => {
    const primary = cleanup.add(await startFakeUpstream({ tls: 'none', greeting: '421' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', primary.port)], { message: { globalFrom: 'noreply@corp.test', confidential: { enabled: true } } }), (r) => r.stop());

    const { qid } = await send(relay.port, {
      to: 'alice@dest.test',
      subject: 'Grüße – bytes',
      text: 'line one\n.leading dot\n..two dots\nUTF-8: äöü €\n' + 'x'.repeat(2000) + '\n',
      attachments: [{ filename: 'a.txt', content: 'attachment body\n' }],
    });
    await relay.logs.waitFor('deferred', (r) => r['qid'] === qid);
    const spooled = await readRaw((await new FsSpool({ dir: relay.spoolDir, fsync: false, clock: systemClock }).read(qid!))!.source);
    expect(spooled.toString('latin1')).toMatch(/^From: .*noreply@corp\.test/m); // the policy edits are in the spooled bytes

    primary.setScript({});
    const [received] = await primary.waitForMessages(1, 8000);
    expect(received!.sha256).toBe(sha256(spooled));
    expect(received!.raw.equals(spooled)).toBe(true);
  });
});
