/**
 * The status page in a real headless browser (Debian's chromium, driven by playwright-core,
 * which never downloads a browser): a running relay with a queued, a failed and a delivered
 * message and a down upstream; the page shows them all, its Retry / Requeue / Delete buttons
 * act (with an audit line naming the page), and a cross-origin form post and a foreign Host
 * header are refused.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueCommand } from '../../../src/cli/queue.js';
import { startFakeExchange, type FakeExchange } from '../../helpers/fake-exchange.js';
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { startFakeUpstream, startRefusingPort, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { TLS_PATHS } from '../../helpers/tls.js';
import { captureIo } from '../cli/support.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`status page browser test skipped: ${CHROMIUM} is not installed (.ci/run installs it with apt-get install chromium)`);

let relay: TestRelay;
let upstream: FakeUpstream;
let endpoint: FakeTokenEndpoint;
let exchange: FakeExchange;
let context: BrowserContext;
let page: Page;
let profile: string;
let evil: Server | undefined;
let base: string;
const qids: { delivered: string; failed: string; queued: string; queued2: string; m365: string } = { delivered: '', failed: '', queued: '', queued2: '', m365: '' };

async function send(to: string): Promise<string> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, ignoreTLS: true });
  try {
    const info = await client.sendMail({ envelope: { from: 'erp@legacy.test', to: [to] }, from: 'Billing <billing@legacy.test>', to, subject: 'page test', text: 'hello' });
    return /as ([A-Za-z0-9]+)/.exec(info.response)![1]!;
  } finally {
    client.close();
  }
}

/** A raw request with the Host header we choose (fetch() would not let us set it). */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens the page as an admin does, with the token in the fragment; resolves once the queue is shown. */
async function openPage(): Promise<void> {
  const token = (await readFile(join(relay.spoolDir, 'admin.token'), 'utf8')).trim();
  await page.goto('about:blank'); // a fresh load: from the page itself a fragment change would not reload it
  await page.goto(`${base}/#token=${token}`);
  await page.locator('#queue tbody tr', { hasText: qids.queued }).waitFor();
}

// Each test stands on its own (they pass in any order): test 1 only reads, test 2 acts on
// `queued` (retry), `failed` (requeue) and `queued2` (delete), test 3 posts at `queued`.
describe.skipIf(!hasChromium)('status page (headless chromium)', () => {
  beforeAll(async () => {
    upstream = await startFakeUpstream({ failRcpt: (a) => (a.startsWith('nobody@') ? { code: 550, message: '5.1.1 <nobody@dest.test>: User unknown' } : undefined) });
    const refusing = await startRefusingPort();
    // an OAuth2 upstream (fake Entra token endpoint, fake Exchange checking the token) for the token table
    endpoint = await startFakeTokenEndpoint({ clientSecret: 'page-test-secret' });
    const ep = endpoint;
    exchange = await startFakeExchange({ isValid: (t) => ep.isValid(t), user: 'relay@corp.test' });
    relay = await startRelay({
      message: { globalFrom: 'noreply@corp.test', rewriteFrom: 'always' },
      http: { enabled: true, host: '127.0.0.1', port: 0 },
      delivery: { waitSeconds: 0, upstreamDownSeconds: 600, retry: { minBackoffSeconds: 3600, maxBackoffSeconds: 7200 } },
      upstreams: [
        { name: 'backup', host: '127.0.0.1', port: refusing, security: 'none', timeouts: { connectSeconds: 2 } },
        { name: 'primary', host: '127.0.0.1', port: upstream.port, security: 'none' },
        {
          name: 'm365',
          host: '127.0.0.1',
          port: exchange.port,
          security: 'starttls-required',
          tls: { ca: TLS_PATHS.ca },
          auth: { type: 'oauth2', user: 'relay@corp.test', tenantId: ep.tenantId, clientId: ep.clientId, clientSecret: 'page-test-secret', authority: ep.authority, scope: ep.scope },
        },
      ],
      routes: [
        { recipients: ['*@queued.test'], upstreams: ['backup'] },
        { recipients: ['*@m365.test'], upstreams: ['m365'] },
      ],
    }, { tokenNetworkClient: ep.asNetworkClient() });
    base = `http://127.0.0.1:${relay.httpPort}`;
    qids.delivered = await send('you@dest.test');
    qids.failed = await send('nobody@dest.test');
    qids.queued = await send('later@queued.test');
    qids.queued2 = await send('second@queued.test');
    qids.m365 = await send('boss@m365.test');
    await relay.logs.waitFor('delivery', (r) => r.status === 'sent' && r.qid === qids.m365);
    await relay.logs.waitFor('delivery', (r) => r.status === 'sent' && r.qid === qids.delivered);
    await relay.logs.waitFor('failed', (r) => r.qid === qids.failed);
    await relay.logs.waitFor('deferred', (r) => r.qid === qids.queued);
    await relay.logs.waitFor('deferred', (r) => r.qid === qids.queued2);

    profile = await mkdtemp(join(tmpdir(), 'smtp-sidecar-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    await relay?.stop();
    await upstream?.close();
    await exchange?.close();
    await endpoint?.close();
    await new Promise<void>((resolve) => (evil === undefined ? resolve() : evil.close(() => resolve())));
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });

  it('shows the queued, failed and delivered messages, the down upstream with its real error, and counters', async () => {
    // the link `smtp-sidecar queue page` prints: the token travels in the fragment only
    const cli = join(relay.dir, 'cli.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(cli, JSON.stringify({ http: { host: '127.0.0.1', port: relay.httpPort }, delivery: { spoolDir: relay.spoolDir } })));
    const io = captureIo();
    expect(await queueCommand({ config: cli, args: ['page'], json: false, all: false }, io)).toBe(0);
    const link = io.out().trim();
    const token = (await readFile(join(relay.spoolDir, 'admin.token'), 'utf8')).trim();
    expect(link).toBe(`${base}/#token=${token}`);

    await page.goto('about:blank'); // a fresh load, whatever an earlier test left in the tab
    await page.goto(link);
    await page.locator('#queue tbody tr', { hasText: qids.queued }).waitFor();
    expect(page.url()).toBe(`${base}/`); // the token left the address bar
    const queuedRow = page.locator('#queue tbody tr', { hasText: qids.queued });
    await expect(queuedRow.textContent()).resolves.toMatch(/erp@legacy\.test.*sent as noreply@corp\.test.*later@queued\.test/s);
    await expect(queuedRow.textContent()).resolves.toMatch(/ECONNREFUSED/);
    const failedRow = page.locator('#failed tbody tr', { hasText: qids.failed });
    await expect(failedRow.textContent()).resolves.toMatch(/rejected by the upstream.*nobody@dest\.test: 550 5\.1\.1/s);
    const recent = page.locator('#recent tbody tr', { hasText: qids.delivered }).filter({ hasText: 'sent' });
    await expect(recent.first().textContent()).resolves.toMatch(/you@dest\.test.*primary.*sent.*250/s);
    const backup = page.locator('#upstreams tbody tr', { hasText: 'backup' });
    await expect(backup.textContent()).resolves.toMatch(/down.*ECONNREFUSED/s);
    await expect(page.locator('#upstreams tbody tr', { hasText: 'primary' }).textContent()).resolves.toMatch(/up/);
    await expect(page.locator('#counters').textContent()).resolves.toMatch(/Received5/);
    // the OAuth2 upstream's token: valid, with its expiry (never the token itself)
    const tokenRow = page.locator('#tokens tbody tr', { hasText: 'm365' });
    await expect(tokenRow.textContent()).resolves.toMatch(/valid.*1 fetch\(es\).*in (\d+m\d\ds|\d+h\d\dm)/s);
    expect(await page.content()).not.toContain(endpoint.issuedTokens[0]!);
    // every button says what it does to which message (screen readers read the label)
    await expect(page.getByRole('button', { name: `Retry message ${qids.queued}` }).count()).resolves.toBe(1);
    if (process.env['STATUS_PAGE_SCREENSHOTS'] !== undefined) {
      await page.screenshot({ path: join(process.env['STATUS_PAGE_SCREENSHOTS'], 'desktop.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.locator('#h-queue').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(process.env['STATUS_PAGE_SCREENSHOTS'], 'phone.png') });
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  it('Retry, Requeue and Delete act on the relay and each leaves an audit line naming the page', async () => {
    await openPage();
    await page.getByRole('button', { name: `Retry message ${qids.queued}` }).click();
    await relay.logs.waitFor('admin', (r) => r.action === 'retry' && r.qid === qids.queued && r.by === 'page' && r.result === 'scheduled');
    await relay.logs.waitFor('deferred', (r) => r.qid === qids.queued && r.attempts === 2); // tried again at once
    await page.locator('#notice', { hasText: `${qids.queued}: retry scheduled now` }).waitFor();

    await page.getByRole('button', { name: `Requeue message ${qids.failed}` }).click();
    await relay.logs.waitFor('admin', (r) => r.action === 'requeue' && r.qid === qids.failed && r.by === 'page');
    // back in the queue, tried again, refused again for good: failed a second time
    await relay.logs.waitFor('failed', () => relay.logs.events('failed').filter((r) => r.qid === qids.failed).length === 2);

    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: `Delete message ${qids.queued2}` }).click();
    await relay.logs.waitFor('admin', (r) => r.action === 'delete' && r.qid === qids.queued2 && r.by === 'page' && r.result === 'deleted');
    await page.locator('#queue tbody tr', { hasText: qids.queued2 }).waitFor({ state: 'detached' });
    expect(await relay.app.spool.read(qids.queued2)).toBeUndefined();
  });

  it('refuses a cross-origin form post (another site in the same browser) and a foreign Host header', async () => {
    evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<form id="f" method="POST" action="${base}/admin/queue/${qids.queued}/retry"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((resolve) => evil!.listen(0, '127.0.0.1', () => resolve()));
    const evilPort = (evil.address() as AddressInfo).port;
    const before = relay.logs.events('admin').length;
    const posted = page.waitForResponse((r) => r.url().startsWith(`${base}/admin/`));
    await page.goto(`http://127.0.0.1:${evilPort}/`);
    const answer = await posted;
    expect(answer.status()).toBe(403);
    await relay.logs.waitFor('admin.refused', (r) => r.path === `/admin/queue/${qids.queued}/retry`);
    expect(relay.logs.events('admin')).toHaveLength(before);

    const token = (await readFile(join(relay.spoolDir, 'admin.token'), 'utf8')).trim();
    const port = relay.httpPort!;
    expect(await rawGet(port, '/', { host: `evil.example:${port}` })).toBe(403);
    expect(await rawGet(port, '/admin/overview', { host: `evil.example:${port}`, authorization: `Bearer ${token}` })).toBe(403);
    expect(await rawGet(port, '/', { host: `127.0.0.1:${port}` })).toBe(200);
    expect(await rawGet(port, '/admin/overview', { host: `127.0.0.1:${port}` })).toBe(401);
    expect(await rawGet(port, '/admin/overview', { host: `127.0.0.1:${port}`, authorization: `Bearer ${token}` })).toBe(200);
  });
});
