/**
 * Crash safety with the built relay as a child process: 200 messages acknowledged while no
 * upstream is reachable, SIGKILL, restart on the same spool with an upstream up: all 200
 * arrive (exactly 200 distinct; a duplicate is possible only for a message the upstream
 * accepted in the instant before the crash, and here no upstream accepted anything before it).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { ensureBuilt, startRelayProcess } from '../../helpers/relay-process.js';
import { Cleanup, qidOf, spoolFiles, until, upstream } from './support.js';

const MESSAGES = 200;
const cleanup = new Cleanup();
afterEach(() => cleanup.run());
beforeAll(() => ensureBuilt(), 120_000);

function relayConfig(spoolDir: string, upstreamPort: number): string {
  return JSON.stringify({
    listen: { host: '127.0.0.1', port: 0, hostname: 'relay.test', shutdownGraceSeconds: 1 },
    delivery: {
      spoolDir,
      outboxDir: join(spoolDir, '..', 'outbox'),
      waitSeconds: 0,
      upstreamDownSeconds: 1,
      retry: { minBackoffSeconds: 1, maxBackoffSeconds: 2 },
    },
    upstreams: [upstream('primary', upstreamPort)],
    log: { level: 'info' },
    http: { enabled: false },
  });
}

describe('crash safety (built relay, SIGKILL)', () => {
  it(`loses none of ${MESSAGES} acknowledged messages across kill -9 and restart`, async () => {
    const dir = cleanup.add(await mkdtemp(join(tmpdir(), 'smtp-sidecar-crash-')), (d) => rm(d, { recursive: true, force: true }));
    const spoolDir = join(dir, 'spool');
    const configPath = join(dir, 'config.json');
    await writeFile(configPath, relayConfig(spoolDir, await startRefusingPort()));

    const first = await startRelayProcess({ configPath });
    cleanup.add(first, (p) => p.kill('SIGKILL'));
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: first.port, secure: false, ignoreTLS: true, pool: true, maxConnections: 5, maxMessages: Infinity });
    cleanup.add(client, (c) => c.close());
    const replies = await Promise.all(
      Array.from({ length: MESSAGES }, (_, i) =>
        client.sendMail({ from: 'app@legacy.test', to: `user${i}@dest.test`, subject: `crash-${i}`, text: `message ${i}\n` }).then((info) => info.response),
      ),
    );
    client.close();
    const qids = new Set(replies.map((r) => qidOf(r)));
    expect(replies.every((r) => r.startsWith('250 '))).toBe(true);
    expect(qids.size).toBe(MESSAGES);

    expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    expect((await spoolFiles({ spoolDir }, 'queue')).filter((f) => f.endsWith('.msg'))).toHaveLength(MESSAGES);

    const fake = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    await writeFile(configPath, relayConfig(spoolDir, fake.port));
    const second = await startRelayProcess({ configPath });
    cleanup.add(second, (p) => p.kill('SIGKILL'));
    const recovered = await second.logs.waitFor('spool.recovered');
    expect(recovered['queued']).toBe(MESSAGES);

    await fake.waitForMessages(MESSAGES, 20_000);
    await until('the queue is empty', async () => (await spoolFiles({ spoolDir }, 'queue')).length === 0, 10_000);
    const subjects = fake.messages.map((m) => /^Subject: (.*)\r$/m.exec(m.raw.toString('utf8'))?.[1]);
    expect(new Set(subjects).size).toBe(MESSAGES);
    expect(fake.messages).toHaveLength(MESSAGES);
    for (let i = 0; i < MESSAGES; i++) expect(subjects).toContain(`crash-${i}`);
    expect(await second.kill('SIGTERM')).toBe(0);
  }, 60_000);
});
