/**
 * eG Enterprise / OpCon per-server attachment limits: a message that no upstream of its route can
 * ever take gets 552 5.3.4 at DATA naming the limit, and nothing is spooled (before, it got 250
 * and was retried for 48 hours). Real relay, real fake upstreams, nodemailer as the client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../../helpers/fake-upstream.js';
import { Cleanup, relayWith, send, spoolFiles, upstream } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const files = (n: number) => Array.from({ length: n }, (_, i) => ({ filename: `f${i}.txt`, content: `file ${i}\n` }));

async function refusal(port: number, to: string | string[], attachments: number): Promise<string> {
  try {
    const sent = await send(port, { to, attachments: files(attachments) });
    return sent.response;
  } catch (err) {
    return String((err as { response?: unknown }).response);
  }
}

describe('per-upstream limits that no eligible upstream meets', () => {
  it('552 5.3.4 at DATA naming the most permissive limit; nothing spooled, no upstream contacted', async () => {
    const a = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const b = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('a', a.port, { limits: { maxAttachments: 1 } }), upstream('b', b.port, { limits: { maxAttachments: 2, maxAttachmentsTotalMB: 5 } })]),
      (r) => r.stop(),
    );
    expect(await refusal(relay.port, 'ops@dest.test', 3)).toBe('552 5.3.4 Message has 3 attachments; the limit is 2');
    expect(await spoolFiles(relay, 'queue')).toEqual([]);
    expect(await spoolFiles(relay, 'tmp')).toEqual([]);
    expect(a.connections + b.connections).toBe(0);
    expect(relay.logs.events('rejected').at(-1)).toMatchObject({ reason: 'upstream-limits' });

    // two attachments fit b: accepted and delivered there
    expect(await refusal(relay.port, 'ops@dest.test', 2)).toMatch(/^250 /);
    await b.waitForMessages(1);
  });

  it('a route whose only upstream cannot take it refuses the message, even when other recipients could get it', async () => {
    const mail = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const sms = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const relay = cleanup.add(
      await relayWith([upstream('mail', mail.port), upstream('sms', sms.port, { limits: { maxAttachments: 0 } })], {
        routes: [
          { recipients: ['*@sms.test'], upstreams: ['sms'] },
          { recipients: ['*'], upstreams: ['mail'] },
        ],
      }),
      (r) => r.stop(),
    );
    expect(await refusal(relay.port, ['ops@dest.test', '0170@sms.test'], 1)).toBe('552 5.3.4 Message has 1 attachment; the limit is 0');
    expect(await spoolFiles(relay, 'queue')).toEqual([]);
    expect(await refusal(relay.port, ['ops@dest.test'], 1)).toMatch(/^250 /);
    await mail.waitForMessages(1);
    expect(sms.connections).toBe(0);
  });
});
