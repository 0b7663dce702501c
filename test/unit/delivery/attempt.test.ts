import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import type { UpstreamSet } from '../../../src/core/ports.js';
import type { Attempt, SpoolMeta } from '../../../src/core/types.js';
import type { RouteConfig } from '../../../src/config/schema.js';
import { attemptDelivery, type AttemptMessage } from '../../../src/delivery/attempt.js';
import { RateLimiter } from '../../../src/routing/rate-limit.js';
import { fakeTransport, smtpError, upstreamSet } from '../../helpers/fake-transport.js';

const RAW = Buffer.from('From: App <app@corp.test>\r\nTo: <a@dest.test>\r\nSubject: hi\r\n\r\nbody\r\n');
const FACTS: SpoolMeta['facts'] = { from: 'app@corp.test', subject: 'hi', messageId: undefined, attachments: 0, attachmentsBytes: 0 };

function message(rcptTo: string[] = ['a@dest.test'], facts: SpoolMeta['facts'] = FACTS): AttemptMessage {
  return { qid: 'Q1', envelope: { mailFrom: 'app@corp.test', rcptTo }, facts, raw: RAW };
}

function run(upstreams: UpstreamSet, msg = message(), options: { down?: string[]; routes?: RouteConfig[]; rate?: RateLimiter; clock?: ManualClock } = {}) {
  const clock = options.clock ?? new ManualClock();
  const seen: Attempt[] = [];
  const report = attemptDelivery(
    {
      upstreams,
      health: { isDown: (u) => options.down?.includes(u) ?? false },
      rate: options.rate ?? new RateLimiter(clock),
      clock,
      routes: options.routes ?? [],
      onAttempt: (a) => seen.push(a),
    },
    msg,
  );
  return { report, seen };
}

const outcomes = (attempts: readonly Attempt[]) => attempts.map((a) => `${a.relay}:${a.kind === 'try' ? a.outcome : `skip-${a.why}`}`);

describe(attemptDelivery.name, () => {
  it('sends to the first upstream and reports every recipient sent', async () => {
    const primary = fakeTransport('primary');
    const backup = fakeTransport('backup');
    const { report, seen } = run(upstreamSet(primary, backup), message(['a@dest.test', 'b@dest.test']));
    const r = await report;
    expect(outcomes(r.attempts)).toEqual(['primary:sent']);
    expect(seen).toEqual(r.attempts); // each try is handed out as it ends, too
    expect([...r.results.values()].map((v) => v.outcome)).toEqual(['sent', 'sent']);
    expect(r.countsAsAttempt).toBe(true);
    expect(backup.sent).toEqual([]);
    expect(primary.sent[0]?.envelope.rcptTo).toEqual(['a@dest.test', 'b@dest.test']);
  });

  it('fails over on a connection error (the upstream is to be marked down) and delivers through the next', async () => {
    const primary = fakeTransport('primary', smtpError('ECONNECTION', { message: 'connect ECONNREFUSED 127.0.0.1:1' }));
    const backup = fakeTransport('backup');
    const r = await run(upstreamSet(primary, backup)).report;
    expect(outcomes(r.attempts)).toEqual(['primary:failover', 'backup:sent']);
    expect(r.attempts[0]).toMatchObject({ kind: 'try', failure: { errorCode: 'ECONNECTION', markDown: true }, reason: expect.stringMatching(/could not be reached/) });
    expect(r.results.get('a@dest.test')).toMatchObject({ outcome: 'sent', relay: 'backup' });
  });

  it('defers an unclassified error without trying the next upstream', async () => {
    const primary = fakeTransport('primary', new Error('something odd'));
    const backup = fakeTransport('backup');
    const r = await run(upstreamSet(primary, backup)).report;
    expect(outcomes(r.attempts)).toEqual(['primary:deferred']);
    expect(r.attempts[0]).toMatchObject({ failure: { markDown: false } });
    expect(r.results.get('a@dest.test')).toMatchObject({ outcome: 'deferred', relay: 'primary', response: 'primary: something odd' });
    expect(backup.sent).toEqual([]);
  });

  it('bounces a message refused for good (5xx to DATA) without failing over, keeping the reply code', async () => {
    const primary = fakeTransport('primary', smtpError('EMESSAGE', { responseCode: 554, command: 'DATA', response: '554 5.6.0 content rejected' }));
    const backup = fakeTransport('backup');
    const r = await run(upstreamSet(primary, backup)).report;
    expect(outcomes(r.attempts)).toEqual(['primary:bounced']);
    expect(r.results.get('a@dest.test')).toEqual({ outcome: 'bounced', relay: 'primary', response: '554 5.6.0 content rejected (in reply to DATA)', dsn: '5.6.0', smtpCode: 554 });
    expect(backup.sent).toEqual([]);
  });

  it('splits a partial refusal: 5xx recipients bounce, 4xx ones fail over alone', async () => {
    const primary = fakeTransport('primary', {
      accepted: ['ok@dest.test'],
      rejected: [
        { address: 'gone@dest.test', responseCode: 550, response: '550 5.1.1 no such user' },
        { address: 'busy@dest.test', responseCode: 450, response: '450 4.2.1 try later' },
      ],
      response: '250 OK',
    });
    const backup = fakeTransport('backup');
    const r = await run(upstreamSet(primary, backup), message(['ok@dest.test', 'gone@dest.test', 'busy@dest.test'])).report;
    expect(outcomes(r.attempts)).toEqual(['primary:sent', 'primary:bounced', 'primary:failover', 'backup:sent']);
    expect(backup.sent[0]?.envelope.rcptTo).toEqual(['busy@dest.test']);
    expect(Object.fromEntries([...r.results].map(([k, v]) => [k, `${v.outcome}@${v.relay}`]))).toEqual({
      'ok@dest.test': 'sent@primary',
      'gone@dest.test': 'bounced@primary',
      'busy@dest.test': 'sent@backup',
    });
  });

  it('keeps the last upstream reply when every upstream fails over', async () => {
    const primary = fakeTransport('primary', smtpError('ECONNECTION'));
    const backup = fakeTransport('backup', smtpError('ETIMEDOUT', { message: 'timed out' }));
    const r = await run(upstreamSet(primary, backup)).report;
    expect(r.results.get('a@dest.test')).toMatchObject({ outcome: 'deferred', relay: 'backup', response: 'backup: ETIMEDOUT: timed out' });
  });

  it('tries upstreams marked down last', async () => {
    const primary = fakeTransport('primary');
    const backup = fakeTransport('backup');
    const r = await run(upstreamSet(primary, backup), message(), { down: ['primary'] }).report;
    expect(outcomes(r.attempts)).toEqual(['backup:sent']);
  });

  it('skips an upstream over its own attachment limits; when all are skipped the attempt still counts (backoff)', async () => {
    const small = fakeTransport('small');
    const big = fakeTransport('big');
    const facts = { ...FACTS, attachments: 3, attachmentsBytes: 2_000_000 };
    const r = await run(upstreamSet([small, { limits: { maxAttachmentsTotalMB: 1 } }], big), message(['a@dest.test'], facts)).report;
    expect(outcomes(r.attempts)).toEqual(['small:skip-limits', 'big:sent']);
    const none = await run(upstreamSet([fakeTransport('small'), { limits: { maxAttachments: 2 } }]), message(['a@dest.test'], facts)).report;
    expect(none.results.get('a@dest.test')).toMatchObject({ outcome: 'deferred', response: 'skipped small: message exceeds its attachment limits' });
    expect(none.countsAsAttempt).toBe(true);
  });

  it('holds a message over a rate cap until the slot opens, without counting an attempt', async () => {
    const clock = new ManualClock();
    const rate = new RateLimiter(clock);
    const set = upstreamSet([fakeTransport('m365'), { maxMessagesPerMinute: 1 }], fakeTransport('backup'));
    expect(outcomes((await run(set, message(), { clock, rate }).report).attempts)).toEqual(['m365:sent']);
    clock.advance(10_000);
    const r = await run(set, message(), { clock, rate }).report;
    expect(outcomes(r.attempts)).toEqual(['m365:skip-rate']);
    expect(r.notBeforeMs).toBe(clock.now() - 10_000 + 60_000);
    expect(r.countsAsAttempt).toBe(false);
    expect(r.results.get('a@dest.test')).toMatchObject({ outcome: 'deferred', relay: 'm365' });
  });

  it('sends as the sender an upstream requires (envelope and header From), computing the bytes once per sender', async () => {
    const first = fakeTransport('first', smtpError('ECONNECTION'));
    const second = fakeTransport('second');
    const r = await run(upstreamSet([first, { from: 'relay@corp.test' }], [second, { from: 'relay@corp.test' }])).report;
    expect(outcomes(r.attempts)).toEqual(['first:failover', 'second:sent']);
    const sent = second.sent[0]!;
    expect(sent.envelope.mailFrom).toBe('relay@corp.test');
    expect(sent.raw.toString()).toMatch(/^From: App <relay@corp\.test>\r\n/);
    expect(sent.raw).toBe(first.sent[0]!.raw);
    // the header grew ("app@" → "relay@"): the size declared to the upstream is the new one
    expect(sent.sizeBytes).toBe((sent.raw as Buffer).length);
    expect(sent.sizeBytes).toBe(RAW.length + 2);
  });

  it('routes recipients by pattern, each group over its own upstreams', async () => {
    const mail = fakeTransport('mail');
    const sms = fakeTransport('sms');
    const routes: RouteConfig[] = [{ recipients: ['*@sms.test'], upstreams: ['sms'] }];
    const r = await run(upstreamSet(mail, sms), message(['a@dest.test', '555@sms.test']), { routes }).report;
    expect(sms.sent.map((m) => m.envelope.rcptTo)).toEqual([['555@sms.test']]);
    expect(mail.sent.map((m) => m.envelope.rcptTo)).toEqual([['a@dest.test']]);
    expect(r.results.size).toBe(2);
  });
});
