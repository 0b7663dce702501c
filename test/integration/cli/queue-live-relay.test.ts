/**
 * `queue` against a running relay: the CLI goes through the relay's loopback admin API (with
 * the token the relay published in its spool directory), so the relay's own scheduler learns
 * about a retry and never works on a deleted entry, and the relay's log holds the audit lines.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { queueCommand } from '../../../src/cli/queue.js';
import type { SmtpUpstreamConfig } from '../../../src/config/schema.js';
import { startFakeUpstream, startRefusingPort, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { captureIo } from './support.js';

let relay: TestRelay | undefined;
let upstream: FakeUpstream | undefined;
afterEach(async () => {
  await relay?.stop();
  await upstream?.close();
  relay = undefined;
  upstream = undefined;
});

describe('queue against a running relay', () => {
  it('lists, retries and deletes through the admin API', async () => {
    const refusing = await startRefusingPort();
    relay = await startRelay({
      http: { enabled: true, host: '127.0.0.1', port: 0 },
      upstreams: [{ name: 'primary', host: '127.0.0.1', port: refusing, security: 'none', timeouts: { connectSeconds: 2, greetingSeconds: 2 } }],
      delivery: { retry: { minBackoffSeconds: 3600, maxBackoffSeconds: 7200 } },
    });
    const configPath = join(relay.dir, 'cli.json');
    await writeFile(configPath, JSON.stringify({ http: { host: '127.0.0.1', port: relay.httpPort }, delivery: { spoolDir: relay.spoolDir } }));
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, ignoreTLS: true });
    const sent = await Promise.all(['one', 'two'].map((s) => client.sendMail({ from: 'app@legacy.test', to: `${s}@dest.test`, subject: s, text: s })));
    client.close();
    const qids = sent.map((i) => /as ([A-Za-z0-9]+)/.exec(i.response)![1]!);
    await relay.logs.waitFor('deferred', () => relay!.logs.events('deferred').length >= 2);

    const list = captureIo();
    expect(await queueCommand({ config: configPath, args: ['list'], json: true, all: false }, list)).toBe(0);
    const rows = JSON.parse(list.out()) as { qid: string; attempts: number; lastError: string }[];
    expect(rows.map((r) => r.qid).sort()).toEqual([...qids].sort());
    expect(rows[0]!.attempts).toBe(1);
    expect(rows[0]!.lastError).toMatch(/ECONNREFUSED|connect/i);

    // retry: the running relay tries again now (a second failed attempt is logged)
    const retry = captureIo();
    expect(await queueCommand({ config: configPath, args: ['retry', qids[0]!], json: false, all: false }, retry)).toBe(0);
    await relay.logs.waitFor('deferred', (r) => r.qid === qids[0] && r.attempts === 2);
    // the relay's own log has the audit line: what, which message, for whom, who asked, the result
    expect(relay.logs.events('admin')).toEqual([
      expect.objectContaining({ action: 'retry', qid: qids[0], recipients: ['one@dest.test'], by: 'cli', peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown, result: 'scheduled' }),
    ]);

    const del = captureIo();
    expect(await queueCommand({ config: configPath, args: ['delete', qids[1]!], json: false, all: false }, del)).toBe(0);
    expect(existsSync(join(relay.spoolDir, 'queue', `${qids[1]}.msg`))).toBe(false);
    // the CLI went through the API (the relay wrote the audit lines), not the spool files
    await relay.logs.waitFor('admin', (r) => r.action === 'delete' && r.qid === qids[1] && r.result === 'deleted' && r.by === 'cli');
    expect(relay.logs.events('admin').map((r) => `${String(r.action)} ${String(r.qid)}`)).toEqual([`retry ${qids[0]}`, `delete ${qids[1]}`]);

    // the remaining one is delivered once an upstream answers and an admin retries all
    upstream = await startFakeUpstream();
    relay.app.reload({ ...relay.config, upstreams: [{ ...(relay.config.upstreams[0]! as SmtpUpstreamConfig), port: upstream.port }] });
    const all = captureIo();
    expect(await queueCommand({ config: configPath, args: ['retry'], json: false, all: true }, all)).toBe(0);
    await upstream.waitForMessages(1, 10_000);
    expect(upstream.messages.map((m) => m.envelope.rcptTo)).toEqual([['one@dest.test']]);
  });

  it('is refused by the running relay without its token, and says where the token is', async () => {
    relay = await startRelay({ http: { enabled: true, host: '127.0.0.1', port: 0 } });
    const configPath = join(relay.dir, 'cli.json');
    // a config whose spool directory is not the relay's: no token to send
    await writeFile(configPath, JSON.stringify({ http: { host: '127.0.0.1', port: relay.httpPort }, delivery: { spoolDir: join(relay.dir, 'elsewhere') } }));
    const io = captureIo();
    expect(await queueCommand({ config: configPath, args: ['delete', 'AAAA0001'], json: false, all: false }, io)).toBe(1);
    expect(io.err()).toContain('HTTP 401');
    expect(io.err()).toContain(join(relay.dir, 'elsewhere', 'admin.token'));
    expect(relay.logs.events('admin.refused')).toEqual([expect.objectContaining({ status: 401, method: 'DELETE' })]);
    expect(existsSync(join(relay.dir, 'elsewhere'))).toBe(false);
  });
});
