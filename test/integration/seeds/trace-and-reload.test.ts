/**
 * PeopleSoft trace levels and the reload that fixes an upstream.
 * - log.trace "detail" shows the upstream SMTP transcript with log.level "info" (the built relay
 *   as a child process, its own logger), and SIGHUP switches it off and on.
 * - A reload that changes an upstream's settings clears its down mark: the fixed upstream takes
 *   the next message at once instead of waiting out upstreamDownSeconds behind the secondary.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, startRefusingPort } from '../../helpers/fake-upstream.js';
import { testConfig } from '../../helpers/relay.js';
import { ensureBuilt, startRelayProcess } from '../../helpers/relay-process.js';
import { Cleanup, deliveryLines, relayWith, send, upstream } from '../delivery-half/support.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
beforeAll(() => ensureBuilt(), 120_000);

describe('log.trace "detail" on its own (log.level info), switched by reload', () => {
  it('logs the transcript only while trace is "detail"', async () => {
    const up = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const dir = cleanup.add(await mkdtemp(join(tmpdir(), 'smtp-sidecar-trace-')), (d) => rm(d, { recursive: true, force: true }));
    const configPath = join(dir, 'config.json');
    const config = (trace: string) =>
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0, hostname: 'relay.test', shutdownGraceSeconds: 1 },
        delivery: { spoolDir: join(dir, 'spool'), waitSeconds: 5 },
        upstreams: [upstream('psoft-smtp', up.port)],
        log: { level: 'info', trace },
        http: { enabled: false },
      });
    await writeFile(configPath, config('detail'));
    const relay = await startRelayProcess({ configPath });
    cleanup.add(relay, (p) => p.kill());
    const transcript = () => relay.logs.lines.filter((l) => l.includes('"smtp.transcript"') && l.includes('MAIL FROM:<app@legacy.test>'));

    await send(relay.port, { to: 'one@dest.test' });
    await up.waitForMessages(1);
    // the delivery line is written after the attempt's transcript: once it is read, so is the transcript
    await relay.logs.waitFor('delivery', (r) => r['to'] === 'one@dest.test');
    expect(transcript()).toHaveLength(1);
    expect(transcript()[0]).toContain('"level":"debug"');

    await writeFile(configPath, config('summary'));
    process.kill(relay.pid, 'SIGHUP'); // the child this test started
    await relay.logs.waitFor('config.changed', (r) => String(r['changed']).includes('log.trace'));
    await send(relay.port, { to: 'two@dest.test' });
    await up.waitForMessages(2);
    // the delivery line is written after the attempt's transcript: once it is read, so is the transcript
    await relay.logs.waitFor('delivery', (r) => r['to'] === 'two@dest.test');
    expect(transcript()).toHaveLength(1);

    await writeFile(configPath, config('detail'));
    process.kill(relay.pid, 'SIGHUP'); // the child this test started
    await relay.logs.waitFor('config.changed', () => relay.logs.events('config.changed').length === 2);
    await send(relay.port, { to: 'three@dest.test' });
    await up.waitForMessages(3);
    // the delivery line is written after the attempt's transcript: once it is read, so is the transcript
    await relay.logs.waitFor('delivery', (r) => r['to'] === 'three@dest.test');
    expect(transcript()).toHaveLength(2);
  });
});

describe('reload that changes an upstream', () => {
  it('clears its down mark: the fixed primary takes the next message at once', async () => {
    const refusing = await startRefusingPort();
    const fixed = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const secondary = cleanup.add(await startFakeUpstream({ tls: 'none' }), (u) => u.close());
    const upstreams = (primaryPort: number) => [upstream('primary', primaryPort), upstream('secondary', secondary.port)];
    const relay = cleanup.add(await relayWith(upstreams(refusing), { delivery: { upstreamDownSeconds: 3600, waitSeconds: 5 } }), (r) => r.stop());

    const first = await send(relay.port, { to: 'one@dest.test' });
    expect(deliveryLines(relay, first.qid!).map((l) => [l['relay'], l['status']])).toEqual([
      ['primary', 'failover'],
      ['secondary', 'sent'],
    ]);
    expect(relay.app.health.isDown('primary')).toBe(true);

    relay.app.reload(testConfig(relay.dir, { ...relayConfigExtra(relay), upstreams: upstreams(fixed.port) }));
    expect(relay.logs.events('config.changed').at(-1)).toMatchObject({ clearedDown: ['primary'] });
    const second = await send(relay.port, { to: 'two@dest.test' });
    expect(deliveryLines(relay, second.qid!).map((l) => [l['relay'], l['status']])).toEqual([['primary', 'sent']]);
    expect(fixed.messages).toHaveLength(1);
  });
});

/** The delivery settings the relay runs with, so the reload changes only the upstream. */
function relayConfigExtra(relay: { config: { delivery: unknown } }): Record<string, unknown> {
  return { delivery: relay.config.delivery };
}
