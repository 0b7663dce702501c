/**
 * The dispatcher on a ManualClock with an in-memory spool and scripted transports: the reply a
 * waiting client gets, queued retries, the concurrency cap and a spool that cannot be marked.
 * No sockets; every wait is on an event (a spool change or a transport's send), never a sleep.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { ManualClock } from '../../../src/core/clock.js';
import type { OutgoingMessage, SendReport, UpstreamSet } from '../../../src/core/ports.js';
import { Dispatcher } from '../../../src/delivery/dispatch.js';
import { OutcomeRecorder } from '../../../src/outcome/record.js';
import { RateLimiter } from '../../../src/routing/rate-limit.js';
import { UpstreamHealth } from '../../../src/routing/upstream-health.js';
import { accepted, fakeTransport, smtpError, upstreamSet, type FakeTransport } from '../../helpers/fake-transport.js';
import { MemorySpool, queuedMeta } from '../../helpers/memory-spool.js';
import { storeMessage } from '../../../src/core/store-message.js';

const dispatchers: { dispatcher: Dispatcher; clock: ManualClock }[] = [];
afterEach(async () => {
  for (const { dispatcher, clock } of dispatchers.splice(0)) {
    const stopped = dispatcher.stop();
    clock.advance(1000); // the stop grace, for an attempt a failed test left hanging
    await stopped;
  }
});

function setup(upstreams: UpstreamSet, delivery: Record<string, unknown> = {}) {
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00.000Z'));
  const spool = new MemorySpool();
  const config = parseConfig({ delivery: { retry: { minBackoffSeconds: 60, maxBackoffSeconds: 60 }, ...delivery } });
  const health = new UpstreamHealth(clock, () => 60);
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }));
  const recorder = new OutcomeRecorder({ spool, clock, logger, health, backoffMs: () => 60_000, maxLifetimeHours: () => 48, trace: () => 'summary' });
  const dispatcher = new Dispatcher({ config: () => config, spool, upstreams: () => upstreams, health, rate: new RateLimiter(clock), recorder, clock, logger, stopGraceMs: 1000 });
  dispatchers.push({ dispatcher, clock });
  return { clock, spool, dispatcher, lines, health };
}

async function enqueue(spool: MemorySpool, qid: string, rcptTo = ['a@dest.test']) {
  return storeMessage(spool, {
    header: Buffer.from('From: <app@corp.test>\r\n\r\n'),
    body: [Buffer.from('hi\r\n')],
    meta: queuedMeta(qid, { envelope: { mailFrom: 'app@corp.test', rcptTo } }, '2026-01-01T00:00:00.000Z'),
  });
}

/** A send that stays open until the test releases it. */
function held(): { step: (m: OutgoingMessage) => Promise<SendReport>; started: Promise<void>; release: () => void } {
  let release!: () => void;
  let started!: () => void;
  const go = new Promise<void>((r) => (release = r));
  const startedP = new Promise<void>((r) => (started = r));
  return {
    started: startedP,
    release,
    step: async (m) => {
      started();
      await go;
      return accepted(m);
    },
  };
}

describe('Dispatcher.submit: the waiting client hears the first attempt', () => {
  it('delivered: the reply names the relay and the upstream answer, and the entry leaves the spool', async () => {
    const primary = fakeTransport('primary');
    const { spool, dispatcher } = setup(upstreamSet(primary));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    expect(await dispatcher.submit(entry, { waitMs: 10_000, neverQueue: false })).toEqual({ kind: 'delivered', relay: 'primary', response: '250 2.0.0 OK queued' });
    await spool.waitFor(() => spool.queue.size === 0);
    expect(primary.sent[0]?.raw).toBe(entry.source); // the entry's bytes as the spool handed them over, not a re-read
  });

  it('rejected: every recipient refused for good goes back to the client with the upstream code; nothing stays queued or failed', async () => {
    const { spool, dispatcher } = setup(upstreamSet(fakeTransport('primary', smtpError('EENVELOPE', { responseCode: 550, command: 'RCPT TO', response: '550 5.1.1 no such user' }))));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    expect(await dispatcher.submit(entry, { waitMs: 10_000, neverQueue: false })).toEqual({
      kind: 'rejected',
      smtpCode: 550,
      response: '550 5.1.1 no such user (in reply to RCPT TO)',
    });
    expect(spool.queue.size + spool.failed.size).toBe(0);
  });

  it('queued: a deferred first attempt keeps the entry with its next attempt time and last error', async () => {
    const { spool, dispatcher, clock } = setup(upstreamSet(fakeTransport('primary', smtpError('ECONNECTION', { message: 'refused' }))));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    expect(await dispatcher.submit(entry, { waitMs: 10_000, neverQueue: false })).toEqual({ kind: 'queued' });
    expect(spool.queue.get('Q1')?.meta).toMatchObject({ attempts: 1, lastError: 'primary: ECONNECTION: refused', nextAttemptAt: new Date(clock.now() + 60_000).toISOString() });
  });

  it('abandoned (waitSeconds -1): not delivered, removed, and the client is told to retry', async () => {
    const { spool, dispatcher } = setup(upstreamSet(fakeTransport('primary', smtpError('ECONNECTION', { message: 'refused' }))));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    expect(await dispatcher.submit(entry, { waitMs: 0, neverQueue: true })).toEqual({ kind: 'abandoned', response: 'primary: ECONNECTION: refused' });
    expect(spool.queue.size).toBe(0);
  });

  /** A client waiting 5 s for a first attempt that is under way and held open by the test. */
  async function waitingClient() {
    const slow = held();
    const { clock, spool, dispatcher } = setup(upstreamSet(fakeTransport('primary', slow.step)));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    const reply = dispatcher.submit(entry, { waitMs: 5_000, neverQueue: false });
    await slow.started;
    return { clock, spool, slow, reply };
  }

  it('queued when the wait runs out on the clock; the attempt goes on and delivers behind the reply', async () => {
    const { clock, spool, slow, reply } = await waitingClient();
    clock.advance(5_000);
    expect(await reply).toEqual({ kind: 'queued' });
    expect(spool.queue.has('Q1')).toBe(true);
    slow.release();
    await spool.waitFor(() => spool.queue.size === 0);
    expect(spool.failed.size).toBe(0);
  });

  it('the client waits the whole waitMs: an attempt that ends a millisecond before gives the client its outcome', async () => {
    const { clock, slow, reply } = await waitingClient();
    clock.advance(4_999);
    slow.release();
    expect(await reply).toEqual({ kind: 'delivered', relay: 'primary', response: '250 2.0.0 OK queued' });
    expect(clock.pendingTimers).toBe(0); // the wait timer went with the reply
  });
});

describe('Dispatcher: timers on the clock', () => {
  it('tries a deferred entry again when its backoff has passed on the clock, not before', async () => {
    const primary = fakeTransport('primary', smtpError('ECONNECTION'));
    const { clock, spool, dispatcher } = setup(upstreamSet(primary));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    expect(await dispatcher.submit(entry, { waitMs: 10_000, neverQueue: false })).toEqual({ kind: 'queued' });
    await vi.waitFor(() => expect(clock.pendingTimers).toBe(1)); // the retry is armed
    clock.advance(59_999);
    expect(spool.calls).not.toContain('read Q1');
    clock.advance(1);
    expect(spool.calls).toContain('read Q1'); // the retry claims the entry at once
    await spool.waitFor(() => spool.queue.size === 0);
    expect(primary.sent).toHaveLength(2);
  });

  it('stop() waits for an attempt in flight until the grace ends, then returns with the entry kept', async () => {
    const slow = held();
    const { clock, spool, dispatcher } = setup(upstreamSet(fakeTransport('primary', slow.step)));
    const entry = await enqueue(spool, 'Q1');
    dispatcher.start([entry]);
    await slow.started;
    let stopped = false;
    const stopping = dispatcher.stop().then(() => (stopped = true));
    clock.advance(999);
    await new Promise((resolve) => setImmediate(resolve)); // every promise chain not waiting on I/O has run
    expect(stopped).toBe(false);
    clock.advance(1); // stopGraceMs is 1000
    await stopping;
    expect(spool.queue.has('Q1')).toBe(true);
    slow.release();
  });
});

describe('Dispatcher: queued mail', () => {
  it('delivers recovered entries that are due, at most delivery.concurrency at a time', async () => {
    const first = held();
    const primary: FakeTransport = fakeTransport('primary', first.step);
    const { spool, dispatcher } = setup(upstreamSet(primary), { concurrency: 1 });
    const a = await enqueue(spool, 'QA');
    const b = await enqueue(spool, 'QB');
    dispatcher.start([a, b]);
    await first.started;
    expect(primary.sent.map((m) => m.qid)).toEqual(['QA']); // QB waits for the one slot
    first.release();
    await spool.waitFor(() => spool.queue.size === 0);
    expect(primary.sent.map((m) => m.qid)).toEqual(['QA', 'QB']);
  });

  it('keeps the message when the spool cannot be marked after an attempt, and says so', async () => {
    const { spool, dispatcher, lines } = setup(upstreamSet(fakeTransport('primary', smtpError('ECONNECTION'))));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    spool.failNext('update');
    expect(await dispatcher.submit(entry, { waitMs: 10_000, neverQueue: false })).toEqual({ kind: 'queued' });
    expect(spool.queue.get('Q1')?.meta.attempts).toBe(0); // untouched: it is tried again later
    expect(lines.find((l) => l['msg'] === 'spool.mark-failed')).toMatchObject({ qid: 'Q1', level: 50 });
  });

  it('does not touch an entry an admin removed before its turn', async () => {
    const primary = fakeTransport('primary');
    const { spool, dispatcher } = setup(upstreamSet(primary));
    const entry = await enqueue(spool, 'Q1');
    await spool.remove('Q1');
    dispatcher.start([entry]);
    await spool.waitFor(() => spool.calls.includes('read Q1'));
    expect(primary.sent).toEqual([]);
  });

  it('an admin retry runs a waiting entry now', async () => {
    const primary = fakeTransport('primary', smtpError('ECONNECTION'));
    const { spool, dispatcher } = setup(upstreamSet(primary));
    dispatcher.start([]);
    const entry = await enqueue(spool, 'Q1');
    expect(await dispatcher.submit(entry, { waitMs: 10_000, neverQueue: false })).toEqual({ kind: 'queued' });
    dispatcher.retryNow('Q1');
    await spool.waitFor(() => spool.queue.size === 0);
    expect(primary.sent).toHaveLength(2);
  });
});
