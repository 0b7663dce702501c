import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import type { Outcome, RecipientResult, Try } from '../../../src/core/types.js';
import { OutcomeRecorder } from '../../../src/outcome/record.js';
import { UpstreamHealth } from '../../../src/routing/upstream-health.js';
import { MemorySpool, queuedMeta } from '../../helpers/memory-spool.js';
import { storeMessage } from '../../../src/core/store-message.js';

function setup(options: { maxLifetimeHours?: number; trace?: 'off' | 'summary' } = {}) {
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:10.000Z'));
  const spool = new MemorySpool();
  const health = new UpstreamHealth(clock, () => 60);
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), cb()) }));
  const metrics: [Outcome, string, number][] = [];
  const recorder = new OutcomeRecorder({
    spool,
    clock,
    logger,
    health,
    backoffMs: (attempts) => attempts * 60_000,
    maxLifetimeHours: () => options.maxLifetimeHours ?? 48,
    trace: () => options.trace ?? 'summary',
    metrics: { outcome: (outcome, relay, n) => metrics.push([outcome, relay, n]) },
  });
  return { clock, spool, health, lines, metrics, recorder };
}

async function queued(spool: MemorySpool, rcpts = ['a@dest.test']) {
  const meta = queuedMeta('Q1', { envelope: { mailFrom: 'app@corp.test', rcptTo: rcpts } });
  await storeMessage(spool, { header: Buffer.from('Subject: x\r\n\r\n'), body: [Buffer.from('hi\r\n')], meta });
  return meta;
}

const tryOf = (outcome: Outcome, extra: Partial<Try> = {}): Try => ({ kind: 'try', relay: 'primary', recipients: ['a@dest.test'], outcome, dsn: '4.0.0', response: 'r', durationMs: 5, ...extra });
const results = (entries: Record<string, Partial<RecipientResult> & { outcome: RecipientResult['outcome'] }>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, { relay: 'primary', response: `${v.outcome} reply`, dsn: '2.0.0', ...v }]));

describe('OutcomeRecorder.attempted: health, metrics and the delivery line speak one vocabulary', () => {
  it('only a sent try marks the upstream healthy', async () => {
    const { recorder, health, spool, clock } = setup();
    const meta = await queued(spool);
    recorder.attempted(meta, tryOf('deferred', { response: '421 4.4.2 connection dropped', reason: 'unclassified delivery error; retrying later', failure: { errorCode: undefined, markDown: false } }));
    // /status shows the upstream's own answer, not the rule's sentence
    expect(health.snapshot(['primary'])[0]).toMatchObject({ up: true, lastSuccessAt: undefined, lastError: '421 4.4.2 connection dropped', consecutiveFailures: 1 });
    clock.advance(1000);
    recorder.attempted(meta, tryOf('sent', { dsn: '2.0.0' }));
    expect(health.snapshot(['primary'])[0]).toMatchObject({ lastSuccessAt: new Date(clock.now()).toISOString(), consecutiveFailures: 0 });
  });

  it('a failover with markDown takes the upstream out; a bounce or a per-recipient refusal says nothing about it', async () => {
    const { recorder, health, spool } = setup();
    const meta = await queued(spool);
    recorder.attempted(meta, tryOf('bounced', { dsn: '5.1.1', reason: 'refused' }));
    recorder.attempted(meta, tryOf('failover', { reason: '4xx for one recipient' }));
    expect(health.snapshot(['primary'])[0]).toMatchObject({ up: true, lastSuccessAt: undefined, lastError: undefined, consecutiveFailures: 0 });
    recorder.attempted(meta, tryOf('failover', { reason: 'unreachable', failure: { errorCode: 'ECONNECTION', markDown: true } }));
    expect(health.isDown('primary')).toBe(true);
  });

  it('counts metrics and writes one delivery line per recipient with the outcome as status', async () => {
    const { recorder, spool, lines, metrics } = setup();
    const meta = await queued(spool, ['a@dest.test', 'b@dest.test']);
    recorder.attempted(meta, tryOf('failover', { recipients: ['a@dest.test', 'b@dest.test'], reason: 'unreachable', failure: { errorCode: 'ECONNECTION', markDown: true } }));
    expect(metrics).toEqual([['failover', 'primary', 2]]);
    const delivery = lines.filter((l) => l['msg'] === 'delivery');
    expect(delivery.map((l) => [l['to'], l['status'], l['errorCode'], l['reason'], l['level']])).toEqual([
      ['a@dest.test', 'failover', 'ECONNECTION', 'unreachable', 40],
      ['b@dest.test', 'failover', 'ECONNECTION', 'unreachable', 40],
    ]);
    expect(delivery[0]).toMatchObject({ qid: 'Q1', relay: 'primary', attempt: 1, delayMs: 10_000, durationMs: 5 });
  });

  it('logs a skip over attachment limits, and nothing for a rate cap', async () => {
    const { recorder, spool, lines } = setup();
    const meta = await queued(spool);
    recorder.attempted(meta, { kind: 'skip', relay: 'small', recipients: ['a@dest.test'], why: 'limits' });
    recorder.attempted(meta, { kind: 'skip', relay: 'm365', recipients: ['a@dest.test'], why: 'rate', retryAtMs: 1 });
    expect(lines.map((l) => [l['msg'], l['relay']])).toEqual([['upstream.skipped-limits', 'small']]);
  });
});

describe('OutcomeRecorder.finish: what the attempt means for the spool entry', () => {
  const opts = { clientWaiting: false, neverQueue: false, countsAsAttempt: true };

  it('removes a message every recipient of which was sent', async () => {
    const { recorder, spool } = setup();
    const meta = await queued(spool);
    const c = await recorder.finish(meta, results({ 'a@dest.test': { outcome: 'sent' } }), opts);
    expect(c).toMatchObject({ kind: 'done', delivered: ['a@dest.test'], failed: [], removedForClient: false });
    if (c.kind === 'done') await c.settled;
    expect(spool.queue.size).toBe(0);
  });

  it('hands a message refused for every recipient back to a waiting client (removed, not failed/)', async () => {
    const { recorder, spool } = setup();
    const meta = await queued(spool);
    const c = await recorder.finish(meta, results({ 'a@dest.test': { outcome: 'bounced' } }), { ...opts, clientWaiting: true });
    expect(c).toMatchObject({ kind: 'done', removedForClient: true, failed: ['a@dest.test'] });
    expect(spool.queue.size + spool.failed.size).toBe(0);
  });

  it('moves a bounce to failed/ with the reason when nobody waits, keeping what was delivered', async () => {
    const { recorder, spool } = setup();
    const meta = await queued(spool, ['a@dest.test', 'b@dest.test']);
    const c = await recorder.finish(meta, results({ 'a@dest.test': { outcome: 'sent' }, 'b@dest.test': { outcome: 'bounced', response: '550 5.1.1 gone' } }), opts);
    expect(c).toEqual({ kind: 'failed', delivered: ['a@dest.test'], failed: ['b@dest.test'] });
    const failed = spool.failed.get('Q1')!;
    expect(failed.reason).toMatchObject({ reason: 'rejected by the upstream', recipients: [{ address: 'b@dest.test', response: '550 5.1.1 gone' }] });
    expect(failed.meta.recipients.map((r) => r.status)).toEqual(['delivered', 'failed']);
  });

  it('defers with backoff, counting the attempt and keeping the last error', async () => {
    const { recorder, spool, clock } = setup();
    const meta = await queued(spool);
    const c = await recorder.finish(meta, results({ 'a@dest.test': { outcome: 'deferred', response: 'primary: 451 later' } }), opts);
    expect(c).toEqual({ kind: 'deferred', nextAttemptAtMs: clock.now() + 60_000, abandoned: false });
    expect(spool.queue.get('Q1')?.meta).toMatchObject({ attempts: 1, lastError: 'primary: 451 later', nextAttemptAt: new Date(clock.now() + 60_000).toISOString() });
  });

  it('waits for a rate slot without counting an attempt', async () => {
    const { recorder, spool, clock } = setup();
    const meta = await queued(spool);
    const c = await recorder.finish(meta, results({ 'a@dest.test': { outcome: 'deferred' } }), { ...opts, countsAsAttempt: false, notBeforeMs: clock.now() + 5000 });
    expect(c).toMatchObject({ kind: 'deferred', nextAttemptAtMs: clock.now() + 5000 });
    expect(spool.queue.get('Q1')?.meta.attempts).toBe(0);
  });

  it('abandons a message not delivered when the client must never see it queued (waitSeconds -1)', async () => {
    const { recorder, spool } = setup();
    const meta = await queued(spool);
    const c = await recorder.finish(meta, results({ 'a@dest.test': { outcome: 'deferred' } }), { ...opts, clientWaiting: true, neverQueue: true });
    expect(c).toMatchObject({ kind: 'deferred', abandoned: true });
    expect(spool.queue.size).toBe(0);
  });

  it('expires a message past maxLifetimeHours into failed/ with the last error', async () => {
    const { recorder, spool, clock } = setup({ maxLifetimeHours: 1 });
    const meta = await queued(spool);
    clock.advance(3_600_000);
    const c = await recorder.finish(meta, results({ 'a@dest.test': { outcome: 'deferred', response: 'primary: 451 later' } }), opts);
    expect(c).toEqual({ kind: 'failed', delivered: [], failed: ['a@dest.test'] });
    expect(spool.failed.get('Q1')?.reason.recipients[0]?.response).toBe('expired after 1 h in the queue; last error: primary: 451 later');
  });
});
