/**
 * Failure notices: a message that moves to failed/ produces one RFC 3464 notice to the admins
 * (and, with delivery.notify.sender, one to the original sender), from the null sender,
 * delivered through the same upstream; never a notice about a notice; at most maxPerHour per
 * address. A partly delivered message gets a truthful 250.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type ReceivedMessage } from '../../helpers/fake-upstream.js';
import { Cleanup, relayWith, send, upstream } from './support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const refuseBad = (a: string) => (a.startsWith('bad') ? { code: 550, message: '5.1.1 <bad@dest.test>: Recipient address rejected: User unknown' } : undefined);

async function setup(notify: Record<string, unknown>, failRcpt: (a: string) => { code: number; message: string } | undefined = refuseBad, waitSeconds = 5) {
  const up = cleanup.add(await startFakeUpstream({ tls: 'none', failRcpt }), (u) => u.close());
  const relay = cleanup.add(
    await relayWith([upstream('primary', up.port)], { listen: { hostname: 'relay.corp.test' }, delivery: { waitSeconds, notify } }),
    (r) => r.stop(),
  );
  return { up, relay };
}

const isNotice = (m: ReceivedMessage) => m.envelope.mailFrom === '';

interface MimePart {
  readonly contentType: string;
  readonly body: string;
}

/** The parts of a multipart message (one level), split on the boundary of its Content-Type. */
function mimeParts(raw: string): MimePart[] {
  const boundary = /^Content-Type: multipart\/[^\r]*boundary="([^"]+)"/m.exec(raw)?.[1];
  if (boundary === undefined) throw new Error('not multipart');
  const sections = raw.split(`\r\n--${boundary}`);
  return sections.slice(1, -1).map((section) => {
    const text = section.replace(/^\r\n/, '');
    const end = text.indexOf('\r\n\r\n');
    const head = text.slice(0, end);
    return { contentType: /^Content-Type: ([^\r]+)/m.exec(head)?.[1] ?? '', body: text.slice(end + 4) };
  });
}

describe('failure notices', () => {
  it('one RFC 3464 notice to the admins, from <>, through the same upstream; the client heard the truth in its 250', async () => {
    const { up, relay } = await setup({ to: ['admin@corp.test'] });
    const result = await send(relay.port, { from: 'app@legacy.test', to: ['good@dest.test', 'bad@dest.test'], subject: 'Invoice 42', text: 'secret body text\n' });
    expect(result.response).toMatch(/^250 2\.0\.0 Ok: partly delivered as \w+: 1 of 2 recipients delivered, 1 refused, 0 queued \(refused: 550 5\.1\.1 .*User unknown\)$/);

    const messages = await up.waitForMessages(2);
    const notice = messages.find(isNotice)!;
    expect(notice.envelope).toEqual({ mailFrom: '', rcptTo: ['admin@corp.test'] });
    const raw = notice.raw.toString('utf8');
    expect(raw).toMatch(/^Content-Type: multipart\/report; report-type=delivery-status; boundary="[^"]+"\r$/m);
    expect(raw).toMatch(/^Auto-Submitted: auto-replied\r$/m);
    expect(raw).toMatch(/^From: Mail Delivery System <postmaster@relay\.corp\.test>\r$/m);
    expect(raw).not.toContain('secret body text');

    const parsed = await simpleParser(notice.raw);
    expect(parsed.subject).toBe('Undelivered mail: Invoice 42');
    // RFC 3464 / RFC 6522: exactly three parts, in this order
    const parts = mimeParts(raw);
    expect(parts.map((p) => p.contentType)).toEqual(['text/plain; charset=utf-8', 'message/delivery-status', 'text/rfc822-headers']);
    const [human, report, headers] = parts as [MimePart, MimePart, MimePart];
    expect(human.body).toContain('<bad@dest.test>');
    expect(human.body).toContain('answer: 550 5.1.1 <bad@dest.test>: Recipient address rejected: User unknown (from upstream primary)');
    expect(human.body).toContain('what to do: The address does not exist');
    const fields = report.body;
    expect(fields).toMatch(/^Reporting-MTA: dns; relay\.corp\.test\r$/m);
    expect(fields).toMatch(/^Arrival-Date: .+\r$/m);
    expect(fields).toMatch(/\r\n\r\nFinal-Recipient: rfc822; bad@dest\.test\r$/m); // a blank line before each recipient block
    expect(fields).toMatch(/^Action: failed\r$/m);
    expect(fields).toMatch(/^Status: 5\.1\.1\r$/m);
    expect(fields).toMatch(/^Remote-MTA: dns; primary\r$/m);
    expect(fields).toMatch(/^Diagnostic-Code: smtp; 550 5\.1\.1 /m);
    expect(fields).not.toContain('good@dest.test'); // only the failed recipient
    expect(headers.body).toMatch(/^Subject: Invoice 42\r$/m);

    // exactly one notice, and the notice itself was delivered (it left the spool)
    await relay.logs.waitFor('delivery', (r) => r['to'] === 'admin@corp.test' && r['status'] === 'sent');
    expect(relay.logs.events('notice.queued')).toHaveLength(1);
    expect(messages.filter(isNotice)).toHaveLength(1);
  });

  it('with notify.sender a second notice goes to the original envelope sender', async () => {
    const { up, relay } = await setup({ to: ['admin@corp.test'], sender: true });
    await expect(send(relay.port, { from: 'app@legacy.test', to: ['bad@dest.test'], subject: 's' })).rejects.toThrow(/550 5\.1\.1/);
    // a waiting client whose only recipient is refused gets the 5xx itself: nothing is in failed/, no notice
    expect(relay.logs.events('notice.queued')).toHaveLength(0);

    const queued = cleanup.add(await relayWith([upstream('primary', up.port)], { delivery: { waitSeconds: 0, notify: { to: ['admin@corp.test'], sender: true } } }), (r) => r.stop());
    await send(queued.port, { from: 'app@legacy.test', to: ['bad@dest.test'], subject: 'queued' });
    await queued.logs.waitFor('notice.queued', (r) => r['audience'] === 'sender');
    const notices = (await up.waitForMessages(2)).filter(isNotice);
    expect(notices.map((n) => n.envelope.rcptTo).sort()).toEqual([['admin@corp.test'], ['app@legacy.test']]);
  });

  it('never a notice about a notice: a notice the upstream refuses ends in failed/ and nothing more is sent', async () => {
    const refuseAll = (a: string) => (a.startsWith('bad') || a.startsWith('admin') ? { code: 550, message: '5.1.1 unknown' } : undefined);
    const { up, relay } = await setup({ to: ['admin@corp.test'] }, refuseAll, 0);
    await send(relay.port, { from: 'app@legacy.test', to: ['bad@dest.test'], subject: 'loop?' });
    const queued = await relay.logs.waitFor('notice.queued');
    const skipped = await relay.logs.waitFor('notice.skipped', (r) => r['qid'] === queued['notice']);
    expect(skipped['reason']).toContain('null sender');
    expect(relay.logs.events('notice.queued')).toHaveLength(1);
    expect((await readdir(join(relay.spoolDir, 'failed'))).filter((f) => f.endsWith('.msg'))).toHaveLength(2);
    expect(up.messages).toHaveLength(0);
  });

  it('at most maxPerHour notices per address: the next failure is logged as rate-limited, not sent', async () => {
    const { up, relay } = await setup({ to: ['admin@corp.test'], maxPerHour: 1 }, refuseBad, 0);
    await send(relay.port, { from: 'app@legacy.test', to: ['bad@dest.test'], subject: 'first' });
    await relay.logs.waitFor('notice.queued');
    await send(relay.port, { from: 'app@legacy.test', to: ['bad2@dest.test'], subject: 'second' });
    const limited = await relay.logs.waitFor('notice.rate-limited');
    expect(limited).toMatchObject({ to: 'admin@corp.test', maxPerHour: 1 });
    expect(relay.logs.events('notice.queued')).toHaveLength(1);
    await up.waitForMessages(1);
    await relay.logs.waitFor('delivery', (r) => r['to'] === 'admin@corp.test' && r['status'] === 'sent');
    expect(up.messages.filter(isNotice)).toHaveLength(1);
  });

  it('no notice without notify.to and notify.sender (the default)', async () => {
    const { relay } = await setup({}, refuseBad, 0);
    await send(relay.port, { from: 'app@legacy.test', to: ['bad@dest.test'], subject: 'quiet' });
    await relay.logs.waitFor('failed');
    expect(relay.logs.events('notice.queued')).toHaveLength(0);
    expect(relay.logs.events('notice.skipped')).toHaveLength(0);
  });
});
