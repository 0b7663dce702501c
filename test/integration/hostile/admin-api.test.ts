/**
 * Issue 12 finding 2: the admin API trusted every local process. Another local user (here the
 * real user `nobody`, through setpriv) can neither read the relay's admin token nor list,
 * retry or delete queued mail, and the routes it may read say nothing about recipients or
 * subjects. The relay's own user (the queue CLI, with the token) keeps working.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { queueCommand } from '../../../src/cli/queue.js';
import { startRefusingPort } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { captureIo } from '../cli/support.js';

let relay: TestRelay | undefined;
afterEach(async () => {
  await relay?.stop();
  relay = undefined;
});

const RECIPIENT = 'ceo-private@dest.test';
const SUBJECT = 'Quarterly layoffs draft';

/** Why the other-user test cannot run here, or undefined when it can. */
function otherUserSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to run a probe as the user nobody with setpriv';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  return undefined;
}

/**
 * What `nobody` sees: runs node -e (no file of the checkout is needed, so a private 0700 checkout
 * does not matter) and prints one JSON object.
 */
async function probeAsNobody(base: string, tokenFile: string, qid: string): Promise<{ tokenRead: string; answers: Record<string, { status: number; body: string }> }> {
  const script = `
    const fs = require('node:fs');
    let tokenRead;
    try { fs.readFileSync(${JSON.stringify(tokenFile)}, 'utf8'); tokenRead = 'read'; } catch (e) { tokenRead = e.code; }
    const calls = [
      ['GET', '/healthz', {}], ['GET', '/readyz', {}], ['GET', '/metrics', {}], ['GET', '/status', {}],
      ['GET', '/admin/queue', {}], ['GET', '/admin/queue/${qid}', {}],
      ['POST', '/admin/queue/${qid}/retry', {}], ['POST', '/admin/queue/retry-all', {}],
      ['DELETE', '/admin/queue/${qid}', {}], ['DELETE', '/admin/queue/${qid}', { authorization: 'Bearer guessed' }],
    ];
    (async () => {
      const answers = {};
      for (const [method, path, headers] of calls) {
        const res = await fetch(${JSON.stringify(base)} + path, { method, headers });
        answers[method + ' ' + path + (headers.authorization ? ' (guessed token)' : '')] = { status: res.status, body: await res.text() };
      }
      console.log(JSON.stringify({ tokenRead, answers }));
    })();
  `;
  // asynchronous: the relay answering the probe runs in this very process
  const { stdout } = await promisify(execFile)('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(stdout) as Awaited<ReturnType<typeof probeAsNobody>>;
}

describe('admin API against another local user', () => {
  const skip = otherUserSkipReason();
  if (skip !== undefined) console.warn(`skipping the other-user admin API test: ${skip}`);
  it.skipIf(skip !== undefined)('nobody cannot read the token, use any admin route, or learn recipients and subjects', async () => {
    const refusing = await startRefusingPort();
    relay = await startRelay({
      http: { enabled: true, host: '127.0.0.1', port: 0 },
      upstreams: [{ name: 'primary', host: '127.0.0.1', port: refusing, security: 'none', timeouts: { connectSeconds: 2, greetingSeconds: 2 } }],
      delivery: { retry: { minBackoffSeconds: 3600, maxBackoffSeconds: 7200 } },
    });
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, ignoreTLS: true });
    const info = await client.sendMail({ from: 'app@legacy.test', to: RECIPIENT, subject: SUBJECT, text: 'x' });
    client.close();
    const qid = /as ([A-Za-z0-9]+)/.exec(info.response)![1]!;
    await relay.logs.waitFor('deferred', (r) => r.qid === qid);

    // Open the directories up: only the token file's own mode (0600) keeps nobody out.
    await chmod(relay.dir, 0o755);
    await chmod(relay.spoolDir, 0o755);
    const tokenFile = join(relay.spoolDir, 'admin.token');
    const seen = await probeAsNobody(`http://127.0.0.1:${relay.httpPort}`, tokenFile, qid);

    expect(seen.tokenRead).toBe('EACCES');
    for (const [call, answer] of Object.entries(seen.answers)) {
      if (call.includes('/admin/')) expect(answer.status, call).toBe(401);
      else expect([200, 503], call).toContain(answer.status);
      expect(answer.body, call).not.toContain(RECIPIENT);
      expect(answer.body, call).not.toContain(SUBJECT);
    }
    expect(relay.logs.events('admin')).toHaveLength(0);

    // The relay's own user, with the token, still lists and deletes through the API.
    const configPath = join(relay.dir, 'cli.json');
    await writeFile(configPath, JSON.stringify({ http: { host: '127.0.0.1', port: relay.httpPort }, delivery: { spoolDir: relay.spoolDir } }));
    const list = captureIo();
    expect(await queueCommand({ config: configPath, args: ['list'], json: true, all: false }, list)).toBe(0);
    expect((JSON.parse(list.out()) as { qid: string; pendingRecipients: string[] }[]).map((r) => [r.qid, r.pendingRecipients])).toEqual([[qid, [RECIPIENT]]]);
    const del = captureIo();
    expect(await queueCommand({ config: configPath, args: ['delete', qid], json: false, all: false }, del)).toBe(0);
    expect(relay.logs.events('admin')).toEqual([expect.objectContaining({ qid, audit: true, action: 'delete', result: 'deleted', by: 'cli' })]);
    expect((await readFile(tokenFile, 'utf8')).trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
