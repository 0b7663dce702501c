/**
 * Failed mail kept by the relay itself: delivery.failedRetentionDays deletes failed messages
 * older than that (with an audit line naming the relay), and /metrics counts what is left.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../../src/app.js';
import { systemClock } from '../../../src/core/clock.js';
import type { SpoolMeta } from '../../../src/core/types.js';
import { createLogger } from '../../../src/ops/logger.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';
import { captureLogs, testConfig } from '../../helpers/relay.js';
import { storeMessage } from '../../../src/core/store-message.js';

const DAY = 86_400_000;
let dir: string | undefined;
let app: App | undefined;
afterEach(async () => {
  await app?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  app = undefined;
  dir = undefined;
});

function meta(qid: string, receivedAtMs: number): SpoolMeta {
  return {
    version: 1,
    qid,
    envelope: { mailFrom: 'noreply@corp.test', rcptTo: ['a@dest.test'] },
    originalMailFrom: 'app@legacy.test',
    client: { address: '127.0.0.1' },
    receivedAt: new Date(receivedAtMs).toISOString(),
    sizeBytes: 10,
    facts: { from: 'app@legacy.test', subject: undefined, messageId: undefined, attachments: 0, attachmentsBytes: 0 },
    recipients: [{ address: 'a@dest.test', status: 'failed', response: '550 5.1.1 unknown user' }],
    attempts: 1,
    nextAttemptAt: new Date(receivedAtMs).toISOString(),
  };
}

describe('delivery.failedRetentionDays', () => {
  it('the relay deletes failed mail older than the retention at start (audited as by: relay) and /metrics counts the rest, and the queue', async () => {
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-retention-'));
    const spool = new FsSpool({ dir: join(dir, 'spool'), fsync: false, clock: systemClock });
    await spool.recover();
    const now = Date.now();
    for (const [qid, ageDays] of [
      ['OLDFAILED001', 40],
      ['NEWFAILED001', 2],
    ] as const) {
      await storeMessage(spool, { header: Buffer.from('Subject: x\r\n\r\n'), body: [Buffer.from('x\r\n')], meta: meta(qid, now - ageDays * DAY) });
      await spool.fail(qid, { reason: 'rejected by the upstream', recipients: [{ address: 'a@dest.test', response: '550 5.1.1 unknown user' }], failedAt: new Date(now - ageDays * DAY).toISOString() });
    }
    // and one queued message, received 3 hours ago, not due for another hour
    await storeMessage(spool, { header: Buffer.from('Subject: x\r\n\r\n'), body: [], meta: { ...meta('QUEUED000001', now - 3 * 3_600_000), recipients: [{ address: 'a@dest.test', status: 'pending' }], nextAttemptAt: new Date(now + 3_600_000).toISOString() } });
    const logs = captureLogs();
    app = createApp(testConfig(dir, { delivery: { failedRetentionDays: 30 }, http: { enabled: true, host: '127.0.0.1', port: 0 } }), { logger: createLogger({ level: 'info', destination: logs }) });
    const { httpPort } = await app.start();
    const purged = await logs.waitFor('admin', (r) => r.action === 'purge');
    expect(purged).toMatchObject({ qid: 'OLDFAILED001', by: 'relay', result: 'deleted', recipients: ['a@dest.test'] });
    expect(await spool.failedQids()).toEqual(['NEWFAILED001']);
    expect((await readdir(join(dir, 'spool', 'failed'))).sort()).toEqual(['NEWFAILED001.msg', 'NEWFAILED001.reason.json']);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics.split('\n')).toContain('smtp_sidecar_failed_messages 1');
    // the queue gauges come from the listing and the oldest entries, not from reading every file
    expect(metrics.split('\n')).toContain('smtp_sidecar_queue_depth 1');
    const oldest = Number(/^smtp_sidecar_queue_oldest_message_age_seconds (\S+)$/m.exec(metrics)?.[1]);
    expect(oldest).toBeGreaterThanOrEqual(3 * 3600);
    expect(oldest).toBeLessThan(3 * 3600 + 600);
  });

  it('0 keeps failed mail however old', async () => {
    dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-retention-'));
    const spool = new FsSpool({ dir: join(dir, 'spool'), fsync: false, clock: systemClock });
    await spool.recover();
    const old = Date.now() - 400 * DAY;
    await storeMessage(spool, { header: Buffer.from('Subject: x\r\n\r\n'), body: [], meta: meta('OLDFAILED002', old) });
    await spool.fail('OLDFAILED002', { reason: 'r', recipients: [], failedAt: new Date(old).toISOString() });
    const logs = captureLogs();
    app = createApp(testConfig(dir, { delivery: { failedRetentionDays: 0 } }), { logger: createLogger({ level: 'info', destination: logs }) });
    await app.start();
    await logs.waitFor('listening');
    expect(await spool.failedQids()).toEqual(['OLDFAILED002']);
    expect(logs.events('admin')).toEqual([]);
  });
});
