/**
 * Reload in-process: a valid config is used for the next delivery; one whose upstream pools
 * cannot be built is refused as a whole and the running config stays.
 */
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { startRelay, testConfig, type TestRelay } from '../../helpers/relay.js';

let relay: TestRelay | undefined;
const upstreams: FakeUpstream[] = [];
afterEach(async () => {
  await relay?.stop();
  relay = undefined;
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

async function send(port: number, subject: string): Promise<void> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  await client.sendMail({ from: 'app@legacy.test', to: 'ops@dest.test', subject, text: subject });
  client.close();
}

describe('app.reload', () => {
  it('switches upstreams for new messages, and refuses a config whose pools cannot be built', async () => {
    const a = await startFakeUpstream();
    const b = await startFakeUpstream();
    upstreams.push(a, b);
    const up = (port: number, extra: Record<string, unknown> = {}) => ({ name: 'primary', host: '127.0.0.1', port, security: 'none', ...extra });
    relay = await startRelay({ upstreams: [up(a.port)] });
    await send(relay.port, 'one');
    await a.waitForMessages(1, 10_000);

    const changed = relay.app.reload(testConfig(relay.dir, { upstreams: [up(b.port)] }));
    expect(changed).toEqual(['upstreams[0].port']);
    await send(relay.port, 'two');
    await b.waitForMessages(1, 10_000);

    const unbuildable = testConfig(relay.dir, { upstreams: [up(a.port, { security: 'tls', tls: { ca: '/nonexistent/ca.pem' } })] });
    expect(() => relay!.app.reload(unbuildable)).toThrow(/ca\.pem/);
    await send(relay.port, 'three');
    await b.waitForMessages(2, 10_000);
    expect(a.messages).toHaveLength(1);
    expect(relay.logs.events('config.changed')).toHaveLength(1);
  });
});
