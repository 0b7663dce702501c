import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import type { OutgoingMessage } from '../../../src/core/ports.js';
import { classifyError } from '../../../src/delivery/classify.js';
import { GraphError } from '../../../src/delivery/graph/errors.js';
import { createGraphTransport, type DeliveryCheckpoint } from '../../../src/delivery/graph/transport.js';
import { MAILBOX, compose, graphTransport, payload, graphTestScope, startGraphRig, type GraphRig, type TransportUnderTest } from './support.js';

const { cleanups, rig } = graphTestScope();

function transportFor(r: GraphRig, overrides: Parameters<typeof graphTransport>[1] = {}): TransportUnderTest {
  const t = graphTransport(r, overrides);
  cleanups.push(() => t.close());
  return t;
}

function message(raw: Buffer, rcptTo: readonly string[], qid = 'Q1'): OutgoingMessage {
  return { qid, envelope: { mailFrom: MAILBOX, rcptTo }, raw, sizeBytes: raw.length };
}

/** A checkpoint kept in memory, as the spool entry would keep it. */
function memoryCheckpoint(initial?: Record<string, string>): DeliveryCheckpoint & { history: (Record<string, string> | undefined)[] } {
  const history: (Record<string, string> | undefined)[] = [];
  let saved: Record<string, string> | undefined = initial;
  return {
    history,
    get saved() {
      return saved;
    },
    async save(state) {
      saved = state === undefined ? undefined : { ...state };
      history.push(saved);
    },
  };
}

async function twelveMegabytes(): Promise<{ raw: Buffer; files: Buffer[] }> {
  const files = [payload(4 * 1024 * 1024), payload(4 * 1024 * 1024 + 123), payload(3 * 1024 * 1024 + 7)];
  const raw = await compose({
    from: `Relay <${MAILBOX}>`,
    to: 'Anna <anna@dest.test>',
    cc: 'bert@dest.test',
    subject: 'Quarterly report – Grüße',
    text: 'Report attached.\r\n',
    html: '<p>Report attached. <img src="cid:logo@app"></p>',
    headers: { 'X-Policy': 'confidential' },
    attachments: [
      { filename: 'report.pdf', content: files[0], contentType: 'application/pdf' },
      { filename: 'data.bin', content: files[1], contentType: 'application/octet-stream' },
      { filename: 'logo.png', content: files[2], contentType: 'image/png', cid: 'logo@app' },
    ],
  });
  return { raw, files };
}

describe(createGraphTransport.name, () => {
  it('sends a 10 KB message with one sendMail: base64 MIME, the spooled bytes unchanged, the envelope as recipients', async () => {
    const r = await rig();
    const t = transportFor(r);
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'small', text: 'x'.repeat(10 * 1024) });
    const report = await t.transport.send(message(raw, ['anna@dest.test']));
    expect(report).toMatchObject({ accepted: ['anna@dest.test'], rejected: [] });
    expect(report.response).toMatch(/^202 /);
    expect(r.graph.deliveries).toHaveLength(1);
    const d = r.graph.deliveries[0]!;
    expect(d).toMatchObject({ via: 'sendMail', mailbox: MAILBOX, recipients: ['anna@dest.test'] });
    expect(d.mime.equals(raw)).toBe(true);
    expect(r.graph.requests.map((q) => `${q.route} ${q.status}`)).toEqual(['sendMail 202']);
  });

  it('sends a 12 MB message with three attachments through a draft and upload sessions; it arrives identical', async () => {
    const r = await rig();
    const t = transportFor(r);
    const { raw } = await twelveMegabytes();
    const checkpoint = memoryCheckpoint();
    await t.transport.send({ ...message(raw, ['anna@dest.test', 'bert@dest.test']), checkpoint });
    expect(r.graph.deliveries).toHaveLength(1);
    const d = r.graph.deliveries[0]!;
    expect(d.via).toBe('draft');
    expect([...d.recipients].sort()).toEqual(['anna@dest.test', 'bert@dest.test']);
    // every request stayed under Graph's 4 MB ceiling (the fake would have answered 413)
    expect(r.graph.requests.every((q) => typeof q.status === 'number' && q.status < 300)).toBe(true);
    expect(r.graph.requests.filter((q) => q.route === 'createUploadSession')).toHaveLength(3);
    const ranges = r.graph.requests.filter((q) => q.route === 'uploadChunk').map((q) => q.contentRange);
    // each attachment in sequential ranges of at most 4 MB that cover it exactly
    const bySize = new Map<number, [number, number][]>();
    for (const range of ranges) {
      const [, start, end, total] = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range ?? '')!.map(Number) as [number, number, number, number];
      bySize.set(total, [...(bySize.get(total) ?? []), [start, end]]);
    }
    expect([...bySize.keys()].sort()).toEqual([3 * 1024 * 1024 + 7, 4 * 1024 * 1024, 4 * 1024 * 1024 + 123].sort());
    for (const [total, list] of bySize) {
      expect(list[0]![0]).toBe(0);
      list.forEach(([start, end], i) => {
        expect(end - start + 1).toBeLessThanOrEqual(4 * 1024 * 1024);
        if (i > 0) expect(start).toBe(list[i - 1]![1] + 1);
      });
      expect(list.at(-1)![1]).toBe(total - 1);
    }
    // order: draft → attachments → send
    const routes = r.graph.requests.map((q) => q.route);
    expect(routes[0]).toBe('createDraft');
    expect(routes.at(-1)).toBe('sendDraft');

    const original = await simpleParser(raw, { keepCidLinks: true });
    const got = await r.graph.parsed(d);
    expect(got.subject).toBe(original.subject);
    expect(got.text).toBe(original.text);
    expect(got.html).toBe(original.html);
    for (const name of ['from', 'to', 'cc', 'message-id', 'date', 'x-policy', 'subject']) {
      expect(JSON.stringify(got.headers.get(name))).toBe(JSON.stringify(original.headers.get(name)));
    }
    const summary = (list: readonly { filename?: string | undefined; contentType: string; contentId?: string | undefined; content: Buffer }[]) =>
      list.map((a) => ({ filename: a.filename, contentType: a.contentType, contentId: a.contentId?.replace(/^<|>$/g, ''), content: a.content.toString('base64') })).sort((a, b) => String(a.filename).localeCompare(String(b.filename)));
    expect(summary(got.attachments)).toEqual(summary(original.attachments));
    expect(r.graph.liveDrafts()).toEqual([]);
    // the draft id was recorded while the draft existed, and cleared after the send
    expect(checkpoint.history[0]).toMatchObject({ upstream: 'graph', phase: 'building' });
    expect(checkpoint.saved).toBeUndefined();
  });

  it('delivers to the envelope exactly: envelope-only Bcc recipients get it invisibly, header-only addresses get nothing', async () => {
    const r = await rig();
    const t = transportFor(r);
    const raw = await compose({ from: MAILBOX, to: 'Anna <anna@dest.test>, Not Asked <header-only@dest.test>', cc: 'cc-only@dest.test', bcc: 'old-bcc@dest.test', subject: 'bcc', text: 'hi' });
    await t.transport.send(message(raw, ['anna@dest.test', 'hidden@dest.test', 'always-bcc@corp.test']));
    const d = r.graph.deliveries[0]!;
    expect([...d.recipients].sort()).toEqual(['always-bcc@corp.test', 'anna@dest.test', 'hidden@dest.test']);
    const delivered = await simpleParser(d.mime);
    expect(delivered.bcc).toBeUndefined();
    expect(delivered.cc).toBeUndefined();
    expect(delivered.text?.trim()).toBe('hi');
    expect(JSON.stringify(delivered.to)).toContain('anna@dest.test');
    expect(d.mime.toString('latin1')).not.toMatch(/hidden@|always-bcc@|header-only@|cc-only@|old-bcc@/);
  });

  it('waits out a 429 Retry-After and resends on the same upstream', async () => {
    const r = await rig();
    const t = transportFor(r);
    r.graph.fault({ route: 'sendMail', status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfterSeconds: 1 });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: '429', text: 'hi' });
    await t.transport.send(message(raw, ['anna@dest.test']));
    const sends = r.graph.requests.filter((q) => q.route === 'sendMail');
    expect(sends.map((q) => q.status)).toEqual([429, 202]);
    expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(950);
    expect(r.graph.deliveries).toHaveLength(1);
  });

  it('a 429 whose Retry-After is too long to wait goes back to the rule table: retry later, upstream not marked down', async () => {
    const r = await rig();
    const t = transportFor(r);
    r.graph.fault({ route: 'sendMail', status: 429, code: 'ApplicationThrottled', retryAfterSeconds: 600 });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: '429', text: 'hi' });
    const err = await t.transport.send(message(raw, ['anna@dest.test'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).retryAfterMs).toBe(600_000);
    expect(classifyError(err)).toMatchObject({ action: 'deferred', markDown: false });
  });

  it('on a 401 fetches one new token and resends once', async () => {
    const r = await rig();
    const t = transportFor(r);
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: '401', text: 'hi' });
    await t.transport.send(message(raw, ['anna@dest.test']));
    expect(r.entra.tokenRequests).toHaveLength(1);
    r.graph.revoke(r.entra.issuedTokens[0]!);
    await t.transport.send(message(raw, ['anna@dest.test'], 'Q2'));
    expect(r.entra.tokenRequests).toHaveLength(2);
    expect(r.graph.requests.filter((q) => q.route === 'sendMail').map((q) => q.status)).toEqual([202, 401, 202]);
    expect(r.graph.deliveries).toHaveLength(2);
    // a token refused twice is the rule table's business (failover), not an endless loop
    r.graph.fault({ route: 'sendMail', status: 401, code: 'InvalidAuthenticationToken', times: 2 });
    const err = await t.transport.send(message(raw, ['anna@dest.test'], 'Q3')).catch((e: unknown) => e);
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    expect(r.entra.tokenRequests).toHaveLength(3);
  });

  it('resumes an upload session after a dropped PUT and still delivers once', async () => {
    const r = await rig();
    const t = transportFor(r, { uploadChunkBytes: 1024 * 1024 });
    const { raw } = await twelveMegabytes();
    r.graph.fault({ route: 'uploadChunk', drop: 'after' });
    r.graph.fault({ route: 'uploadChunk', drop: 'before' });
    await t.transport.send(message(raw, ['anna@dest.test', 'bert@dest.test']));
    expect(r.graph.deliveries).toHaveLength(1);
    expect(r.graph.requests.filter((q) => q.route === 'uploadStatus').length).toBeGreaterThanOrEqual(2);
    const got = await r.graph.parsed(r.graph.deliveries[0]!);
    const original = await simpleParser(raw);
    expect(got.attachments.map((a) => a.content.length).sort()).toEqual(original.attachments.map((a) => a.content.length).sort());
    expect(r.graph.requests.filter((q) => q.status === 416 || q.status === 400)).toEqual([]);
  });

  it('deletes the draft when it cannot be completed, and the rule table says what to fix', async () => {
    const r = await rig();
    const t = transportFor(r);
    const { raw } = await twelveMegabytes();
    r.graph.fault({ route: 'createUploadSession', status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.' });
    const checkpoint = memoryCheckpoint();
    const err = await t.transport.send({ ...message(raw, ['anna@dest.test']), checkpoint }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect(r.graph.deletedDrafts).toHaveLength(1);
    expect(r.graph.liveDrafts()).toEqual([]);
    expect(r.graph.deliveries).toHaveLength(0);
    expect(checkpoint.saved).toBeUndefined();
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    expect(classifyError(err).reason).toMatch(/Mail\.Send/);
  });

  it('deletes a draft an earlier run left behind (recorded in the checkpoint), then delivers exactly once', async () => {
    const r = await rig();
    const t = transportFor(r);
    const { raw } = await twelveMegabytes();
    // a run that could not clean up: every PUT and the DELETE of its draft fail
    r.graph.fault({ route: 'uploadChunk', drop: 'before', times: 100 });
    r.graph.fault({ route: 'deleteDraft', drop: 'before' });
    const checkpoint = memoryCheckpoint();
    await expect(t.transport.send({ ...message(raw, ['anna@dest.test']), checkpoint })).rejects.toBeInstanceOf(GraphError);
    r.graph.clearFaults();
    expect(checkpoint.saved).toMatchObject({ upstream: 'graph', phase: 'building' });
    const left = checkpoint.saved!.draftId!;
    expect(r.graph.liveDrafts().map((d) => d.id)).toEqual([left]);

    // the next attempt (after a restart the checkpoint comes from the spool entry) deletes it first
    await t.transport.send({ ...message(raw, ['anna@dest.test']), checkpoint });
    expect(r.graph.deletedDrafts).toContain(left);
    expect(r.graph.liveDrafts()).toEqual([]);
    expect(r.graph.deliveries).toHaveLength(1);
    expect(checkpoint.saved).toBeUndefined();

    // a run that died after asking Graph to send: the draft is gone, so it was sent; nothing is sent twice
    const afterSend = memoryCheckpoint({ upstream: 'graph', draftId: 'AAMk-already-sent', phase: 'sending' });
    const report = await t.transport.send({ ...message(raw, ['anna@dest.test']), checkpoint: afterSend });
    expect(report.response).toMatch(/sent before a restart/);
    expect(r.graph.deliveries).toHaveLength(1);
    expect(afterSend.saved).toBeUndefined();
  });

  it('with saveToSentItems false sends through a draft marked delete-after-submit', async () => {
    const r = await rig();
    const t = transportFor(r, { saveToSentItems: false });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'no copy', text: 'hi' });
    await t.transport.send(message(raw, ['anna@dest.test']));
    expect(r.graph.requests.map((q) => q.route)).toEqual(['createDraft', 'updateDraft', 'sendDraft']);
    expect(r.graph.deliveries[0]).toMatchObject({ via: 'draft', savedToSentItems: false });
  });

  it('keeps one token per lifetime and at most 4 requests per mailbox in flight under load', async () => {
    const r = await rig();
    const t = transportFor(r);
    r.graph.fault({ route: 'sendMail', delayMs: 30, times: 40 });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'load', text: 'hi' });
    await Promise.all(Array.from({ length: 40 }, (_, i) => t.transport.send(message(raw, ['anna@dest.test'], `L${i}`))));
    expect(r.graph.deliveries).toHaveLength(40);
    expect(r.entra.tokenRequests).toHaveLength(1);
    expect(r.graph.maxConcurrent).toBe(4);
    expect(r.graph.requests.filter((q) => q.status === 429)).toEqual([]);
  });

  it('maps Graph refusals to final or failover decisions that say what to fix', async () => {
    const r = await rig({ graph: { onPremises: ['onprem@contoso.test'] } });
    const raw = await compose({ from: 'someone-else@contoso.test', to: 'anna@dest.test', subject: 'send as', text: 'hi' });
    const t = transportFor(r);
    const sendAs = await t.transport.send(message(raw, ['anna@dest.test'])).catch((e: unknown) => e);
    expect(classifyError(sendAs)).toMatchObject({ action: 'bounced' });
    expect(classifyError(sendAs).reason).toMatch(/Send As/);

    const onPrem = transportFor(r, { user: 'onprem@contoso.test' });
    const notRest = await onPrem.transport.send(message(raw, ['anna@dest.test'])).catch((e: unknown) => e);
    expect(classifyError(notRest)).toMatchObject({ action: 'failover', markDown: true });
    expect(classifyError(notRest).reason).toMatch(/Exchange Online mailbox/);

    const tooBig = await startGraphRig({ graph: { maxMessageBytes: 1024 } });
    cleanups.push(() => tooBig.close());
    const small = transportFor(tooBig);
    const own = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'big', text: 'y'.repeat(4000) });
    const size = await small.transport.send(message(own, ['anna@dest.test'])).catch((e: unknown) => e);
    expect(classifyError(size)).toMatchObject({ action: 'bounced' });
    expect((size as GraphError).response).toMatch(/ErrorMessageSizeExceeded.*message \d+ bytes/);
  });

  it('without Mail.Send in the token, Graph answers 403 and the upstream fails over', async () => {
    const r = await rig({ roles: ['User.Read.All'] });
    const t = transportFor(r);
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'x', text: 'hi' });
    const err = await t.transport.send(message(raw, ['anna@dest.test'])).catch((e: unknown) => e);
    expect((err as GraphError).graphCode).toBe('ErrorAccessDenied');
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
  });

  it('a dropped connection on sendMail fails over (never resent blindly)', async () => {
    const r = await rig();
    const t = transportFor(r);
    r.graph.fault({ route: 'sendMail', drop: 'before' });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'x', text: 'hi' });
    const err = await t.transport.send(message(raw, ['anna@dest.test'])).catch((e: unknown) => e);
    expect((err as GraphError).code).toBe('ECONNECTION');
    expect(classifyError(err)).toMatchObject({ action: 'failover', markDown: true });
    expect(r.graph.requests.filter((q) => q.route === 'sendMail')).toHaveLength(1);
  });

  it('verify() fetches a token, shows its roles and says whether Mail.Send is granted, without sending mail', async () => {
    const granted = await rig();
    const ok = await transportFor(granted).transport.verify();
    expect(ok.map((s) => `${s.step} ${s.status}`)).toEqual(['connect ok', 'token ok']);
    expect(ok[1]!.detail).toMatch(/aud https:\/\/graph\.microsoft\.com, roles \[Mail\.Send\]: Mail\.Send is granted/);
    expect(ok.map((s) => s.detail).join(' ')).not.toContain(granted.entra.issuedTokens[0]!);

    const missing = await rig({ roles: ['User.Read.All'] });
    const refused = await transportFor(missing).transport.verify();
    expect(refused[1]).toMatchObject({ step: 'token', status: 'failed' });
    expect(refused[1]!.detail).toMatch(/roles \[User\.Read\.All\]: Mail\.Send is NOT granted: add .*admin consent/);
    expect([...granted.graph.requests, ...missing.graph.requests].filter((q) => q.route !== 'unknown')).toEqual([]);
    expect(granted.graph.deliveries).toHaveLength(0);
  });
});
