/**
 * Failover over real sockets: primary down → secondary (both tries logged), the primary is
 * skipped while marked down and gets traffic back after the pause; a wrong password or a
 * server without AUTH (auth configured) fails over too, and the password is never logged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { Cleanup, deliveryLines, relayWith, send, until, upstream } from './support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('failover', () => {
  it('delivers through the secondary when the primary refuses connections, logging both tries', async () => {
    const refusing = await startRefusingPort();
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(await relayWith([upstream('primary', refusing), upstream('secondary', secondary.port)]), (r) => r.stop());

    const { qid } = await send(relay.port, { to: 'alice@dest.test' });
    await secondary.waitForMessages(1);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['status'] === 'sent');
    const lines = deliveryLines(relay, qid!);
    expect(lines.map((l) => [l['relay'], l['status']])).toEqual([
      ['primary', 'failover'],
      ['secondary', 'sent'],
    ]);
    expect(lines[0]).toMatchObject({ to: 'alice@dest.test', dsn: '4.4.1' });
    expect(String(lines[0]!['response'])).toMatch(/ECONNREFUSED|ESOCKET/);
  });

  it('skips the primary while it is marked down and returns to it once it answers again', async () => {
    const primary = cleanup.add(await startFakeUpstream({ tls: 'none', greeting: '421' }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('primary', primary.port), upstream('secondary', secondary.port)], { delivery: { upstreamDownSeconds: 1 } }),
      (r) => r.stop(),
    );

    // 1: the primary refuses in its greeting (421) → failover
    const first = await send(relay.port, { to: 'a@dest.test', subject: 'one' });
    await secondary.waitForMessages(1);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === first.qid && r['status'] === 'sent');
    expect(deliveryLines(relay, first.qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['primary', 'failover'],
      ['secondary', 'sent'],
    ]);
    const primaryConnections = primary.connections;

    // 2: while it is down, straight to the secondary (no try line, no connection to the primary)
    const second = await send(relay.port, { to: 'b@dest.test', subject: 'two' });
    await secondary.waitForMessages(2);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === second.qid && r['status'] === 'sent');
    expect(deliveryLines(relay, second.qid!).map((l) => [l['relay'], l['status']])).toEqual([['secondary', 'sent']]);
    expect(primary.connections).toBe(primaryConnections);

    // 3: the primary is back; after the pause (1 s) traffic returns to it
    primary.setScript({});
    // routing orders the upstreams with this same isDown: once it is false, the next message goes to the primary
    await until('the primary is no longer marked down', () => !relay.app.health.isDown('primary'), 5000);
    const third = await send(relay.port, { to: 'c@dest.test', subject: 'three' });
    const [received] = await primary.waitForMessages(1);
    expect(received!.envelope.rcptTo).toEqual(['c@dest.test']);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === third.qid && r['status'] === 'sent');
    expect(deliveryLines(relay, third.qid!).map((l) => [l['relay'], l['status']])).toEqual([['primary', 'sent']]);
    expect(secondary.messages).toHaveLength(2);
  });

  it('fails over on a wrong password, logs EAUTH/535 clearly and never the password', async () => {
    const password = 'Sup3r-Secret-Pa55word';
    const primary = cleanup.add(await startFakeUpstream({ tls: 'none', auth: { methods: ['PLAIN'], users: { relay: 'the-right-one' } } }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([
        upstream('primary', primary.port, { auth: { type: 'plain', user: 'relay', pass: password, allowPlaintext: true } }),
        upstream('secondary', secondary.port),
      ]),
      (r) => r.stop(),
    );

    const { qid } = await send(relay.port, { to: 'alice@dest.test' });
    await secondary.waitForMessages(1);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['status'] === 'sent');
    expect(primary.messages).toHaveLength(0);
    expect(primary.authAttempts).toEqual([{ method: 'PLAIN', username: 'relay', accepted: false }]);
    const [primaryTry] = deliveryLines(relay, qid!);
    expect(primaryTry).toMatchObject({ relay: 'primary', status: 'failover', errorCode: 'EAUTH' });
    expect(String(primaryTry!['reason'])).toMatch(/credentials/);
    expect(String(primaryTry!['response'])).toMatch(/535/);
    expect(String(primaryTry!['response'])).toMatch(/AUTH/);
    const everything = relay.logs.lines.join('\n');
    expect(everything).not.toContain(password);
    expect(everything).not.toContain(Buffer.from(password).toString('base64'));
    expect(everything).not.toContain(Buffer.from(`\u0000relay\u0000${password}`).toString('base64'));
  });

  it('does not deliver unauthenticated to a server without AUTH when auth is configured', async () => {
    const noAuth = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([
        upstream('primary', noAuth.port, { auth: { type: 'login', user: 'relay', pass: 'whatever-pass', allowPlaintext: true } }),
        upstream('secondary', secondary.port),
      ]),
      (r) => r.stop(),
    );

    const { qid } = await send(relay.port, { to: 'alice@dest.test' });
    await secondary.waitForMessages(1);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['status'] === 'sent');
    expect(noAuth.messages).toHaveLength(0);
    expect(deliveryLines(relay, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['primary', 'failover'],
      ['secondary', 'sent'],
    ]);
  });
});
