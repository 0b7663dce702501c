/**
 * Everything a real relay process writes, from start to stop, is log lines: every stdout line
 * parses as JSON (or, with log.format "line", as the human line format) and stderr stays empty,
 * through deliveries, a permanent failure, a down upstream, an admin action and the stop. The
 * lines about a message carry the sender as the application gave it beside the rewritten one.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import nodemailer from 'nodemailer';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { queueCommand } from '../../../src/cli/queue.js';
import { startFakeUpstream, startRefusingPort, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { BUILT_MAIN, ensureBuilt, startRelayProcess, type RelayProcess } from '../../helpers/relay-process.js';
import { startRelay } from '../../helpers/relay.js';
import { captureIo } from '../cli/support.js';

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trace|debug|info |warn |error|fatal) \S.*$/;

let dir: string | undefined;
let upstream: FakeUpstream | undefined;
let relay: RelayProcess | undefined;
beforeAll(async () => {
  await ensureBuilt();
});
afterEach(async () => {
  await relay?.kill('SIGKILL').catch(() => undefined);
  await upstream?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  relay = undefined;
  upstream = undefined;
  dir = undefined;
});

async function writeConfig(extra: Record<string, unknown>): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-logs-'));
  upstream = await startFakeUpstream({ failRcpt: (a) => (a.startsWith('nobody@') ? { code: 550, message: '5.1.1 <nobody@dest.test>: User unknown' } : undefined) });
  const refusing = await startRefusingPort();
  const path = join(dir, 'config.json');
  await writeFile(
    path,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0, hostname: 'relay.test' },
      message: { globalFrom: 'noreply@corp.test', rewriteFrom: 'always' },
      delivery: { spoolDir: join(dir, 'spool'), fsync: false, waitSeconds: 0, upstreamDownSeconds: 600 },
      upstreams: [
        { name: 'down', host: '127.0.0.1', port: refusing, security: 'none', timeouts: { connectSeconds: 2 } },
        { name: 'primary', host: '127.0.0.1', port: upstream.port, security: 'none' },
      ],
      http: { enabled: true, host: '127.0.0.1', port: 0 },
      ...extra,
    }),
  );
  return path;
}

async function send(port: number, to: string): Promise<void> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  try {
    await client.sendMail({ envelope: { from: 'erp@legacy.test', to: [to] }, from: 'Billing <billing@legacy.test>', to, subject: 'log test', text: 'hello' });
  } finally {
    client.close();
  }
}

describe('log output of a full run', () => {
  it('JSON: every stdout line is a JSON object with a level name, stderr is empty, and message lines name the original sender', async () => {
    const configPath = await writeConfig({});
    relay = await startRelayProcess({ configPath });
    await send(relay.port, 'you@dest.test');
    await send(relay.port, 'nobody@dest.test');
    const sent = await relay.logs.waitFor('delivery', (r) => r.status === 'sent');
    const failed = await relay.logs.waitFor('failed');
    const httpPort = (await relay.logs.waitFor('http.listening'))['port'] as number;
    // an admin action through the API: its audit line is in the relay's log too
    const cli = join(dir!, 'cli.json');
    await writeFile(cli, JSON.stringify({ http: { host: '127.0.0.1', port: httpPort }, delivery: { spoolDir: join(dir!, 'spool') } }));
    expect(await queueCommand({ config: cli, args: ['requeue', String(failed['qid'])], json: false, all: false }, captureIo())).toBe(0);
    await relay.logs.waitFor('admin', (r) => r.action === 'requeue' && r.by === 'cli');
    // /status names the down upstream's real answer (the connection error), not the rule's sentence
    const status = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as { upstreams: { name: string; up: boolean; lastError?: string }[] };
    expect(status.upstreams.find((u) => u.name === 'down')).toMatchObject({ up: false, lastError: expect.stringMatching(/^ESOCKET: connect ECONNREFUSED 127\.0\.0\.1:\d+$/) as unknown });
    expect(await relay.kill('SIGTERM')).toBe(0);

    expect(relay.otherOutput).toEqual([]); // no stderr, no stdout line that is not JSON
    const records = relay.logs.records();
    expect(records.length).toBeGreaterThan(10);
    for (const r of records) expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(r['level']);
    const received = relay.logs.events('received');
    expect(received).toHaveLength(2);
    for (const r of received) expect(r).toMatchObject({ from: 'noreply@corp.test', originalSender: 'erp@legacy.test', originalFrom: 'billing@legacy.test' });
    expect(sent).toMatchObject({ to: 'you@dest.test', relay: 'primary', from: 'noreply@corp.test', originalSender: 'erp@legacy.test', originalFrom: 'billing@legacy.test' });
    expect(failed).toMatchObject({ from: 'noreply@corp.test', originalSender: 'erp@legacy.test', originalFrom: 'billing@legacy.test' });
    // the down upstream's try is a delivery line too, with the connection error as the answer
    expect(relay.logs.events('delivery').find((r) => r.relay === 'down')).toMatchObject({ status: 'failover', originalSender: 'erp@legacy.test', response: expect.stringMatching(/ECONNREFUSED/) as unknown });
    expect(relay.logs.events('stopped')).toHaveLength(1);
  });

  it('line: every line of stdout is one human line, stderr is empty, and a delivery reads as Postfix writes it', async () => {
    const configPath = await writeConfig({ log: { format: 'line' } });
    const child = spawn(process.execPath, [BUILT_MAIN, 'start', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: string[] = [];
    const err: string[] = [];
    const waiters: (() => void)[] = [];
    const waitFor = (pattern: RegExp) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${String(pattern)}:\n${out.join('\n')}\n${err.join('\n')}`)), 15_000);
        const check = () => {
          const hit = out.find((l) => pattern.test(l));
          if (hit === undefined) return void waiters.push(check);
          clearTimeout(timer);
          resolve(hit);
        };
        check();
      });
    createInterface({ input: child.stdout }).on('line', (l) => {
      out.push(l);
      for (const w of waiters.splice(0)) w();
    });
    createInterface({ input: child.stderr }).on('line', (l) => err.push(l));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const listening = await waitFor(/ listening .*port=\d+/);
      const port = Number(/port=(\d+)/.exec(listening)![1]);
      await send(port, 'you@dest.test');
      const delivered = await waitFor(/ delivery to=<you@dest\.test>.*relay=primary/);
      expect(delivered).toMatch(
        /^\S+ info  [A-Za-z0-9]+: delivery to=<you@dest\.test>, from=<noreply@corp\.test>, orig_sender=<erp@legacy\.test>, orig_from=<billing@legacy\.test>, relay=primary, delay=[\d.]+, duration=[\d.]+, attempt=1, dsn=2\.0\.0, status=sent \(250 .*\)$/,
      );
      await waitFor(/ received from=<noreply@corp\.test>, orig_sender=<erp@legacy\.test>, orig_from=<billing@legacy\.test>, client=127\.0\.0\.1, nrcpt=1, size=\d+/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(err).toEqual([]);
    expect(out.length).toBeGreaterThan(5);
    for (const line of out) expect(line).toMatch(LINE);
  });

  it('a reload that changes log.format says it needs a restart (the logger is built once)', async () => {
    const inProcess = await startRelay();
    try {
      inProcess.app.reload({ ...inProcess.config, log: { ...inProcess.config.log, format: 'line' } });
      expect(await inProcess.logs.waitFor('config.changed')).toMatchObject({ changed: ['log.format'], needsRestart: ['log.format'] });
    } finally {
      await inProcess.stop();
    }
  });
});
