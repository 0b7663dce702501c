/**
 * OpCon SMA Notify: primary/secondary email servers and primary/secondary SMS servers. SMS may
 * fall back to the email servers, email never goes to the SMS servers (the catch-all route).
 * Real relay, real fake upstreams on 127.0.0.1, refused ports for the servers that are down.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { Cleanup, deliveryLines, queuedMeta, relayWith, send, upstream } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const ROUTES = [
  { recipients: ['*@sms.test'], upstreams: ['sms-primary', 'sms-secondary', 'mail-primary', 'mail-secondary'] },
  { recipients: ['*'], upstreams: ['mail-primary', 'mail-secondary'] },
];

describe('OpCon email and SMS servers (routes[].recipients ["*"])', () => {
  it('with both email servers down, email waits in the queue and never goes out through an SMS server', async () => {
    const [mail1, mail2] = [await startRefusingPort(), await startRefusingPort()];
    const sms1 = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const sms2 = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith(
        [
          upstream('mail-primary', mail1),
          upstream('mail-secondary', mail2),
          upstream('sms-primary', sms1.port, { from: 'sms@opcon.test' }),
          upstream('sms-secondary', sms2.port, { from: 'sms@opcon.test' }),
        ],
        { routes: ROUTES },
      ),
      (r) => r.stop(),
    );

    const { qid } = await send(relay.port, { to: ['ops@dest.test', '4917012345@sms.test'] });
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['attempt'] === 2 && r['to'] === 'ops@dest.test');
    expect(sms1.messages.map((m) => m.envelope.rcptTo)).toEqual([['4917012345@sms.test']]);
    expect(sms2.connections).toBe(0);
    const meta = await queuedMeta(relay, qid!);
    expect(meta.recipients.map((r) => [r.address, r.status])).toEqual([
      ['ops@dest.test', 'pending'],
      ['4917012345@sms.test', 'delivered'],
    ]);
    const relaysForEmail = new Set(deliveryLines(relay, qid!).filter((l) => l['to'] === 'ops@dest.test').map((l) => l['relay']));
    expect([...relaysForEmail].sort()).toEqual(['mail-primary', 'mail-secondary']);
  });

  it('with both SMS servers down, SMS falls back to the email servers', async () => {
    const [sms1, sms2] = [await startRefusingPort(), await startRefusingPort()];
    const mail1 = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith(
        [upstream('mail-primary', mail1.port), upstream('mail-secondary', mail1.port), upstream('sms-primary', sms1), upstream('sms-secondary', sms2)],
        { routes: ROUTES },
      ),
      (r) => r.stop(),
    );
    const { qid } = await send(relay.port, { to: '4917012345@sms.test' });
    const [got] = await mail1.waitForMessages(1);
    expect(got!.envelope.rcptTo).toEqual(['4917012345@sms.test']);
    await relay.logs.waitFor('delivery', (r) => r['qid'] === qid && r['status'] === 'sent');
    expect(deliveryLines(relay, qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['sms-primary', 'failover'],
      ['sms-secondary', 'failover'],
      ['mail-primary', 'sent'],
    ]);
  });
});
