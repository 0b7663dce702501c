/**
 * Routing and per-upstream admission over real sockets: recipients split by route (one
 * delivery per route with only that route's recipients), a route's own fallback list, the
 * default list for unmatched recipients, per-upstream attachment limits (skip, no failure)
 * and maxMessagesPerMinute (the message over the rate waits in the spool).
 */
import { describe, expect, it } from 'vitest';
import { startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { testConfig } from '../../helpers/relay.js';
import { cleanupFor, deliveryLines, queuedMeta, relayWith, send, spoolFiles, until, upstream } from './support.js';


describe.concurrent('routes', () => {
  it('sends each route its own recipients, once per route', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const mail = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const sms = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('mail', mail.port), upstream('sms', sms.port)], { routes: [{ recipients: ['*@sms.test'], upstreams: ['sms'] }] }),
      (r) => r.stop(),
    );

    const { qid } = await send(relay.port, { to: ['alice@dest.test', '4917012345@sms.test', 'bob@dest.test', '4917099999@sms.test'] });
    const [toSms] = await sms.waitForMessages(1);
    const [toMail] = await mail.waitForMessages(1);
    await until('the queue is empty', async () => (await spoolFiles(relay, 'queue')).length === 0);
    expect(toSms!.envelope.rcptTo).toEqual(['4917012345@sms.test', '4917099999@sms.test']);
    expect(toMail!.envelope.rcptTo).toEqual(['alice@dest.test', 'bob@dest.test']);
    expect(sms.messages).toHaveLength(1);
    expect(mail.messages).toHaveLength(1);
    const byRelay = deliveryLines(relay, qid!).map((l) => `${String(l['relay'])}:${String(l['to'])}:${String(l['status'])}`);
    expect(byRelay.sort()).toEqual(['mail:alice@dest.test:sent', 'mail:bob@dest.test:sent', 'sms:4917012345@sms.test:sent', 'sms:4917099999@sms.test:sent']);
  });

  it('a route whose own upstreams are down falls back to the next upstream listed in that route', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const smsDown = await startRefusingPort();
    const mail = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('mail', mail.port), upstream('sms', smsDown)], { routes: [{ recipients: ['*@sms.test'], upstreams: ['sms', 'mail'] }] }),
      (r) => r.stop(),
    );

    const { qid } = await send(relay.port, { to: ['123@sms.test'] });
    const [received] = await mail.waitForMessages(1);
    expect(received!.envelope.rcptTo).toEqual(['123@sms.test']);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['status'] === 'sent');
    expect(deliveryLines(relay, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['sms', 'failover'],
      ['mail', 'sent'],
    ]);
  });

  it('a route limited to upstreams that are all down keeps its recipients queued (never sent elsewhere); the others are delivered', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const smsDown = await startRefusingPort();
    const mail = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('mail', mail.port), upstream('sms', smsDown)], { routes: [{ recipients: ['*@sms.test'], upstreams: ['sms'] }] }),
      (r) => r.stop(),
    );

    const { qid } = await send(relay.port, { to: ['alice@dest.test', '123@sms.test'] });
    await relay.logs.waitFor('deferred', (r) => r['qid'] === qid);
    const meta = await queuedMeta(relay, qid!);
    expect(meta.recipients.map((r) => [r.address, r.status])).toEqual([
      ['alice@dest.test', 'delivered'],
      ['123@sms.test', 'pending'],
    ]);
    expect(mail.messages).toHaveLength(1);
    expect(mail.messages[0]!.envelope.rcptTo).toEqual(['alice@dest.test']);
    // the retry goes to the sms route only: alice is not sent twice
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['attempt'] === 2);
    expect(mail.messages).toHaveLength(1);
  });

  it('recipients that match no route use every upstream in order', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const down = await startRefusingPort();
    const second = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const sms = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('first', down), upstream('second', second.port), upstream('sms', sms.port)], {
        routes: [{ recipients: ['*@sms.test'], upstreams: ['sms'] }],
      }),
      (r) => r.stop(),
    );
    const { qid } = await send(relay.port, { to: 'alice@dest.test' });
    await second.waitForMessages(1);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['status'] === 'sent');
    expect(deliveryLines(relay, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['first', 'failover'],
      ['second', 'sent'],
    ]);
    expect(sms.connections).toBe(0);
  });
});

describe.concurrent('per-upstream admission', () => {
  it('skips an upstream whose own limits the message exceeds (maxAttachments 0)', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const primary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('primary', primary.port, { limits: { maxAttachments: 0 } }), upstream('secondary', secondary.port)]),
      (r) => r.stop(),
    );

    const withAttachment = await send(relay.port, { to: 'alice@dest.test', attachments: [{ filename: 'report.csv', content: 'a,b\n1,2\n' }] });
    await secondary.waitForMessages(1);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === withAttachment.qid && r['status'] === 'sent');
    expect(primary.connections).toBe(0);
    expect(deliveryLines(relay, withAttachment.qid!).map((l) => [l['relay'], l['status']])).toEqual([['secondary', 'sent']]);

    // a message without attachments still goes to the primary
    await send(relay.port, { to: 'bob@dest.test' });
    const [plain] = await primary.waitForMessages(1);
    expect(plain!.envelope.rcptTo).toEqual(['bob@dest.test']);
  });

  it('a queued message that no upstream can take any more (limits lowered by a reload) waits its backoff, no busy loop', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const refusing = await startRefusingPort();
    const relay = cleanup.add(await relayWith([upstream('primary', refusing)]), (r) => r.stop());

    const { qid } = await send(relay.port, { to: 'alice@dest.test', attachments: [{ filename: 'a.txt', content: 'x' }] });
    await relay.logs.waitFor('deferred', (r) => r['qid'] === qid);
    relay.app.reload(testConfig(relay.dir, { delivery: relay.config.delivery, upstreams: [upstream('primary', refusing, { limits: { maxAttachments: 0 } })] }));
    const deferred = await relay.logs.waitFor('deferred', (r) => r['qid'] === qid && r['attempts'] === 2);
    const meta = await queuedMeta(relay, qid!);
    expect(meta.attempts).toBe(2);
    expect(meta.lastError).toMatch(/attachment limits/);
    expect(Date.parse(meta.nextAttemptAt) - Date.parse(deferred['time'] as string)).toBeGreaterThanOrEqual(800);
  });

  it('maxMessagesPerMinute: the message over the rate waits in the spool (not rejected, not failed over)', async ({ onTestFinished }) => {
    const cleanup = cleanupFor(onTestFinished);
    const primary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('primary', primary.port, { maxMessagesPerMinute: 2 }), upstream('secondary', secondary.port)]),
      (r) => r.stop(),
    );

    for (const to of ['a@dest.test', 'b@dest.test']) {
      const reply = await send(relay.port, { to });
      expect(reply.response).toMatch(/^250 /);
    }
    await primary.waitForMessages(2);
    const third = await send(relay.port, { to: 'c@dest.test' });
    expect(third.response).toMatch(/^250 /);
    await relay.logs.waitFor('deferred', (r) => r['qid'] === third.qid);
    const meta = await queuedMeta(relay, third.qid!);
    const aheadMs = Date.parse(meta.nextAttemptAt) - Date.now();
    expect(aheadMs).toBeGreaterThan(45_000);
    expect(aheadMs).toBeLessThanOrEqual(60_000);
    expect(meta.recipients[0]!.status).toBe('pending');
    expect(meta.attempts).toBe(0); // waiting for a slot is not a failed attempt
    // `deferred` is logged when the attempt has ended (after every upstream it would fail over to),
    // and the next one is 45 s or more away: the secondary is never tried for this message
    expect(secondary.connections).toBe(0);
    expect(primary.messages).toHaveLength(2);
    expect(await spoolFiles(relay, 'failed')).toEqual([]);
  });
});
