/**
 * Issue 7 item 6 (child process part): SIGKILL during a burst of 500 messages towards a slow
 * upstream. Every message that got 250 is delivered after the restart (at-least-once).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeUpstream } from '../../helpers/fake-upstream.js';
import { startRelayProcess, type RelayProcess } from '../../helpers/relay-process.js';
import { openTransaction } from '../../helpers/smtp-client.js';
import { until } from '../../helpers/wait.js';
import { dataPayload, plainUpstreamConfig, secretForms, startAuthUpstream } from './support.js';

const children: RelayProcess[] = [];
let upstream: FakeUpstream | undefined;
let dir: string | undefined;
afterEach(async () => {
  for (const c of children.splice(0)) await c.kill('SIGKILL');
  await upstream?.close();
  upstream = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const TOTAL = 500;
const CONNECTIONS = 10;

describe('SIGKILL during a burst', () => {
  it('every message that got 250 arrives after the restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hostile-crash-'));
    upstream = await startAuthUpstream({ delayMs: 150 });
    const config = {
      listen: { host: '127.0.0.1', port: 0, hostname: 'relay.test' },
      delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox'), waitSeconds: 0, retry: { minBackoffSeconds: 1, maxBackoffSeconds: 1 } },
      upstreams: [plainUpstreamConfig('primary', upstream.port)],
      http: { enabled: false },
      log: { level: 'info' },
    };
    const first = await startRelayProcess({ configPath: join(dir, 'config.json'), config });
    children.push(first);

    const acked = new Map<number, string>(); // message number → qid
    let nextNumber = 0;
    let killed = false;
    const sender = async (): Promise<void> => {
      const client = await openTransaction(first.port, 'app@legacy.test', ['alice@dest.test']).catch(() => undefined);
      if (client === undefined) return;
      try {
        for (;;) {
          const n = nextNumber++;
          if (n >= TOTAL || killed) return;
          client.write(dataPayload(Buffer.from(`From: app@legacy.test\r\nSubject: burst ${n}\r\n\r\nburst-token-${n}\r\n`)));
          const reply = await client.next(10_000);
          const qid = /queued as (\S+)/.exec(reply)?.[1];
          if (!reply.startsWith('250') || qid === undefined) return;
          acked.set(n, qid);
          if ((await client.command('MAIL FROM:<app@legacy.test>')).startsWith('250') === false) return;
          if ((await client.command('RCPT TO:<alice@dest.test>')).startsWith('250') === false) return;
          if ((await client.command('DATA')).startsWith('354') === false) return;
        }
      } catch {
        // the relay died under us: whatever was acknowledged is in `acked`
      } finally {
        client.close();
      }
    };
    const senders = Array.from({ length: CONNECTIONS }, () => sender());
    // kill once a good part of the burst is acknowledged (bounded wait)
    await until('150 messages acknowledged', () => acked.size >= 150, 4000).catch(() => undefined); // or fewer, after 4 s
    killed = true;
    await first.kill('SIGKILL');
    await Promise.all(senders);
    expect(acked.size).toBeGreaterThan(0);

    upstream.setScript({});
    const second = await startRelayProcess({ configPath: join(dir, 'config.json'), config });
    children.push(second);
    const arrived = (): Set<number> =>
      new Set(upstream!.messages.map((m) => Number(/burst-token-(\d+)/.exec(m.raw.toString('latin1'))?.[1] ?? -1)));
    await until('every acknowledged message delivered', () => [...acked.keys()].every((n) => arrived().has(n)), 40_000, 100).catch(() => undefined); // `missing` names them
    const missing = [...acked.keys()].filter((n) => !arrived().has(n));
    expect(missing, `acknowledged but never delivered: ${missing.join(',')}`).toEqual([]);
    for (const line of [...first.logs.lines, ...first.otherOutput, ...second.logs.lines, ...second.otherOutput]) for (const s of secretForms()) expect(line.includes(s)).toBe(false);
  }, 80_000);
});
