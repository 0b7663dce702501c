/**
 * The Graph upstream inside the relay: real SMTP clients in, the fake Entra and the fake Graph
 * (HTTPS, test CA) out, a real spool; failover to and from SMTP upstreams; kill -9 of the relay
 * process in the middle of an upload session.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { checkUpstreams } from '../../../src/cli/validate-connect.js';
import { parseConfig } from '../../../src/config/load.js';
import { startLocalConnectProxy } from '../../helpers/connect-proxy.js';
import { startFakeUpstream, startRefusingPort, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { ensureBuilt, startRelayProcess, type RelayProcess } from '../../helpers/relay-process.js';
import { TLS_PATHS } from '../../helpers/tls.js';
import { captureIo } from '../cli/support.js';
import { MAILBOX, SECRET, compose, payload, graphTestScope, startGraphRig, type GraphRig } from './support.js';

const { cleanups, rig } = graphTestScope();

/** A graph upstream as an admin would write it (the shape), pointed at the fakes. */
function graphUpstream(r: GraphRig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'graph',
    protocol: 'graph',
    auth: { type: 'oauth2', user: MAILBOX, tenantId: r.entra.tenantId, clientId: r.entra.clientId, clientSecret: SECRET, authority: r.entra.authority, tokenCa: TLS_PATHS.ca },
    graph: { endpoint: r.graph.endpoint, saveToSentItems: true },
    tls: { ca: TLS_PATHS.ca },
    timeouts: { connectSeconds: 3, socketSeconds: 10 },
    ...extra,
  };
}

function smtpUpstream(name: string, port: number): Record<string, unknown> {
  return { name, host: '127.0.0.1', port, security: 'none', timeouts: { connectSeconds: 2, greetingSeconds: 2, socketSeconds: 5 } };
}

async function relay(extra: Record<string, unknown>): Promise<TestRelay> {
  const r = await startRelay({ limits: { maxAttachmentsTotalMB: 20 }, ...extra });
  cleanups.push(() => r.stop());
  return r;
}

async function fakeSmtp(): Promise<FakeUpstream> {
  const s = await startFakeUpstream({ tls: 'none' });
  cleanups.push(() => s.close());
  return s;
}

async function submit(port: number, raw: Buffer, from: string, to: readonly string[]): Promise<void> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    await client.sendMail({ envelope: { from, to: [...to] }, raw });
  } finally {
    client.close();
  }
}

describe('relay with a Microsoft Graph upstream', () => {
  it('delivers a 10 KB message through sendMail, unchanged but for the relay\'s own trace headers', async () => {
    const r = await rig();
    const relayed = await relay({ upstreams: [graphUpstream(r)] });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'ten kilobytes', text: 'z'.repeat(10 * 1024) });
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test']);
    await r.graph.waitForDeliveries(1);
    const d = r.graph.deliveries[0]!;
    expect(d).toMatchObject({ via: 'sendMail', recipients: ['anna@dest.test'] });
    const sent = await simpleParser(d.mime);
    const original = await simpleParser(raw);
    expect(sent.text).toBe(original.text);
    expect(sent.messageId).toBe(original.messageId);
    const line = await relayed.logs.waitFor('delivery', (x) => x.status === 'sent');
    expect(line).toMatchObject({ relay: 'graph', to: 'anna@dest.test' });
  });

  it('delivers a 12 MB message with three attachments, identical apart from transport headers', async () => {
    const r = await rig();
    const relayed = await relay({ upstreams: [graphUpstream(r)] });
    const raw = await compose({
      from: `Relay <${MAILBOX}>`,
      to: 'anna@dest.test',
      subject: 'twelve megabytes',
      text: 'three files',
      html: '<p>three files</p>',
      attachments: [
        { filename: 'a.pdf', content: payload(4 * 1024 * 1024), contentType: 'application/pdf' },
        { filename: 'b.zip', content: payload(4 * 1024 * 1024), contentType: 'application/zip' },
        { filename: 'c.png', content: payload(4 * 1024 * 1024), contentType: 'image/png' },
      ],
    });
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test']);
    await r.graph.waitForDeliveries(1, 30_000);
    const d = r.graph.deliveries[0]!;
    expect(d.via).toBe('draft');
    const got = await r.graph.parsed(d);
    const original = await simpleParser(raw);
    expect(got.subject).toBe(original.subject);
    expect(got.text).toBe(original.text);
    expect(got.html).toBe(original.html);
    expect(JSON.stringify(got.headers.get('from'))).toBe(JSON.stringify(original.headers.get('from')));
    expect(got.headers.get('message-id')).toBe(original.headers.get('message-id'));
    const files = (list: readonly { filename?: string | undefined; contentType: string; content: Buffer }[]) =>
      list.map((a) => `${a.filename} ${a.contentType} ${a.content.toString('base64')}`).sort();
    expect(files(got.attachments)).toEqual(files(original.attachments));
    expect(r.graph.liveDrafts()).toEqual([]);
  });

  it('with upstreams[].from, an upload-session attachment of a spooled (file) message arrives whole under the new From', async () => {
    const r = await rig({ graph: { sendAs: { [MAILBOX]: ['noreply@contoso.test'] } } });
    const relayed = await relay({ upstreams: [graphUpstream(r, { from: 'noreply@contoso.test' })] });
    const raw = await compose({
      from: 'Legacy App <app@legacy.local>',
      to: 'anna@dest.test',
      subject: 'per-upstream sender, large file',
      text: 'one file',
      attachments: [{ filename: 'a.pdf', content: payload(5 * 1024 * 1024), contentType: 'application/pdf' }],
    });
    await submit(relayed.port, raw, 'app@legacy.local', ['anna@dest.test']);
    await r.graph.waitForDeliveries(1, 30_000);
    const d = r.graph.deliveries[0]!;
    expect(d.via).toBe('draft');
    expect(d.attachments.map((a) => a.via)).toEqual(['uploadSession']);
    const got = await r.graph.parsed(d);
    const original = await simpleParser(raw);
    expect((got.headers.get('from') as { value: unknown }).value).toEqual([{ name: 'Legacy App', address: 'noreply@contoso.test' }]);
    expect(got.text).toBe(original.text);
    expect(got.attachments.map((a) => a.content.toString('base64'))).toEqual(original.attachments.map((a) => a.content.toString('base64')));
  });

  it('sends as auth.user when the config names no sender; with globalFrom the From is kept and needs Send As', async () => {
    const r = await rig({ graph: { sendAs: { [MAILBOX]: ['noreply@contoso.test'] } } });
    const relayed = await relay({ upstreams: [graphUpstream(r)] });
    const raw = await compose({ from: 'Legacy App <app@legacy.local>', to: 'anna@dest.test', subject: 'legacy', text: 'hi' });
    await submit(relayed.port, raw, 'app@legacy.local', ['anna@dest.test']);
    await r.graph.waitForDeliveries(1);
    const sent = await simpleParser(r.graph.deliveries[0]!.mime);
    expect(sent.from?.value).toEqual([{ name: 'Legacy App', address: MAILBOX }]);

    const shared = await relay({ upstreams: [graphUpstream(r)], message: { globalFrom: 'noreply@contoso.test' } });
    await submit(shared.port, raw, 'app@legacy.local', ['anna@dest.test']);
    await r.graph.waitForDeliveries(2);
    expect((await simpleParser(r.graph.deliveries[1]!.mime)).from?.value[0]?.address).toBe('noreply@contoso.test');
  });

  it('sends to the envelope only: Bcc and alwaysBcc recipients get it invisibly, an address only in To gets nothing', async () => {
    const r = await rig();
    const relayed = await relay({ upstreams: [graphUpstream(r)], message: { alwaysBcc: ['audit@corp.test'] } });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test, header-only@dest.test', subject: 'bcc', text: 'hello' });
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test', 'blind@dest.test']);
    await r.graph.waitForDeliveries(1);
    const d = r.graph.deliveries[0]!;
    expect([...d.recipients].sort()).toEqual(['anna@dest.test', 'audit@corp.test', 'blind@dest.test']);
    expect(d.mime.toString('latin1')).not.toMatch(/audit@corp|blind@dest|header-only@/);
  });

  it('waits out a 429 Retry-After on the same upstream (the SMTP secondary is not used)', async () => {
    const r = await rig();
    const secondary = await fakeSmtp();
    const relayed = await relay({ upstreams: [graphUpstream(r), smtpUpstream('smtp-b', secondary.port)] });
    r.graph.fault({ route: 'sendMail', status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfterSeconds: 1 });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'throttled', text: 'hi' });
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test']);
    await r.graph.waitForDeliveries(1);
    const sends = r.graph.requests.filter((q) => q.route === 'sendMail');
    expect(sends.map((q) => q.status)).toEqual([429, 202]);
    expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(950);
    expect(secondary.messages).toHaveLength(0);
    expect(relayed.logs.records().filter((x) => String(x.msg).startsWith('graph.throttled'))).toHaveLength(1);
  });

  it('a Retry-After too long to wait keeps the message queued at least that long, on the same upstream, not marked down', async () => {
    const r = await rig();
    const relayed = await relay({ upstreams: [graphUpstream(r)] });
    r.graph.fault({ route: 'sendMail', status: 503, code: 'ServiceUnavailable', retryAfterSeconds: 600 });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'later', text: 'hi' });
    const before = Date.now();
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test']);
    await relayed.logs.waitFor('deferred');
    const [entry] = await relayed.app.spool.list();
    expect(Date.parse(entry!.meta.nextAttemptAt)).toBeGreaterThanOrEqual(before + 600_000);
    expect(relayed.app.health.isDown('graph')).toBe(false);
    expect(r.graph.deliveries).toHaveLength(0);
  });

  it('fails over SMTP → Graph when the SMTP primary cannot be reached', async () => {
    const r = await rig();
    const dead = await startRefusingPort();
    const relayed = await relay({ upstreams: [smtpUpstream('smtp-a', dead), graphUpstream(r)] });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'failover to graph', text: 'hi' });
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test']);
    await r.graph.waitForDeliveries(1);
    await relayed.logs.waitFor('delivery', (x) => x.relay === 'graph');
    expect(relayed.logs.events('delivery').map((x) => `${String(x.relay)} ${String(x.status)}`)).toEqual(['smtp-a failover', 'graph sent']);
  });

  it('fails over Graph → SMTP when Graph denies access (403), with the fix in the log', async () => {
    const r = await rig({ roles: ['User.Read.All'] });
    const secondary = await fakeSmtp();
    const relayed = await relay({ upstreams: [graphUpstream(r), smtpUpstream('smtp-b', secondary.port)] });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'failover to smtp', text: 'hi' });
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test']);
    await secondary.waitForMessages(1);
    const failover = relayed.logs.events('delivery').find((x) => x.relay === 'graph');
    expect(failover).toMatchObject({ status: 'failover' });
    expect(JSON.stringify(relayed.logs.records())).toMatch(/Mail\.Send application permission with admin consent/);
    expect(r.graph.deliveries).toHaveLength(0);
    expect(relayed.app.health.isDown('graph')).toBe(true);
  });

  it('keeps token requests at one per lifetime under load (40 messages, 4 Graph requests at a time)', async () => {
    const r = await rig();
    const relayed = await relay({ upstreams: [graphUpstream(r)], delivery: { waitSeconds: 0, concurrency: 20 } });
    r.graph.fault({ route: 'sendMail', delayMs: 20, times: 40 });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'load', text: 'hi' });
    await Promise.all(Array.from({ length: 40 }, () => submit(relayed.port, raw, MAILBOX, ['anna@dest.test'])));
    await r.graph.waitForDeliveries(40, 30_000);
    expect(r.entra.tokenRequests).toHaveLength(1);
    expect(r.graph.maxConcurrent).toBeLessThanOrEqual(4);
    expect(r.graph.requests.filter((q) => q.status === 429)).toEqual([]);
  });

  it('goes through upstreams[].proxy (HTTP CONNECT) for Graph and token requests, trusting tls.ca', async () => {
    const r = await rig();
    const proxy = await startLocalConnectProxy();
    cleanups.push(() => proxy.close());
    const relayed = await relay({ upstreams: [graphUpstream(r, { proxy: proxy.url })] });
    const raw = await compose({ from: MAILBOX, to: 'anna@dest.test', subject: 'via proxy', text: 'hi' });
    await submit(relayed.port, raw, MAILBOX, ['anna@dest.test']);
    await r.graph.waitForDeliveries(1);
    expect(proxy.connects).toContain(`localhost:${new URL(r.graph.endpoint).port}`);
    expect(proxy.connects).toContain(`localhost:${r.entra.port}`);
  });

  it('validate --connect shows the token\'s roles and whether Mail.Send is granted, and sends nothing', async () => {
    const r = await rig();
    const io = captureIo();
    const config = parseConfig({ upstreams: [graphUpstream(r)] });
    expect(await checkUpstreams(config, io)).toBe(true);
    expect(io.out()).toMatch(/graph\s+connect\s+ok\s+HTTPS to https:\/\/localhost:\d+ works/);
    expect(io.out()).toMatch(/graph\s+token\s+ok\s+aud https:\/\/graph\.microsoft\.com, roles \[Mail\.Send\]: Mail\.Send is granted/);
    expect(io.out()).not.toContain(r.entra.issuedTokens[0]!);
    expect(r.graph.deliveries).toHaveLength(0);
  });
});

describe('relay process with a Graph upstream, killed with SIGKILL during an upload session', () => {
  it('after a restart deletes the half-built draft and delivers exactly once', async () => {
    await ensureBuilt();
    const r = await rig();
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-graph-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const configPath = join(dir, 'config.json');
    await writeFile(
      configPath,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        limits: { maxAttachmentsTotalMB: 20 },
        delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox'), waitSeconds: 0, retry: { minBackoffSeconds: 1, maxBackoffSeconds: 2 } },
        http: { enabled: false },
        upstreams: [graphUpstream(r)],
      }),
    );
    const children: RelayProcess[] = [];
    cleanups.push(async () => {
      for (const c of children) await c.kill('SIGKILL').catch(() => undefined);
    });
    // the second range of the upload never gets an answer: the relay is killed while it waits
    r.graph.fault({ route: 'uploadChunk', delayMs: 0 });
    r.graph.fault({ route: 'uploadChunk', stall: true });
    const first = await startRelayProcess({ configPath });
    children.push(first);
    const raw = await compose({
      from: MAILBOX,
      to: 'anna@dest.test',
      subject: 'killed mid-upload',
      text: 'big one',
      attachments: [{ filename: 'big.bin', content: payload(8 * 1024 * 1024), contentType: 'application/octet-stream' }],
    });
    await submit(first.port, raw, MAILBOX, ['anna@dest.test']);
    await r.graph.waitForRequest((q) => q.route === 'uploadChunk' && q.status === 'stalled', 30_000);
    const draftId = r.graph.liveDrafts()[0]?.id;
    expect(draftId).toBeDefined();
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');

    const second = await startRelayProcess({ configPath });
    children.push(second);
    await r.graph.waitForDeliveries(1, 30_000);
    await second.logs.waitFor('delivery', (x) => x.status === 'sent');
    expect(r.graph.deletedDrafts).toContain(draftId);
    expect(r.graph.liveDrafts()).toEqual([]);
    expect(r.graph.deliveries).toHaveLength(1);
    expect(second.logs.records().filter((x) => String(x.msg).startsWith('graph.draft-deleted'))).toHaveLength(1);
    const got = await r.graph.parsed(r.graph.deliveries[0]!);
    expect(got.attachments.map((a) => a.content.length)).toEqual([8 * 1024 * 1024]);
    await second.kill('SIGTERM');
  });
});
