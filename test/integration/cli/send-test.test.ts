import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sendTestCommand } from '../../../src/cli/send-test.js';
import { startFakeUpstream, startRefusingPort, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { captureIo } from './support.js';

const TIMEOUTS = { connectSeconds: 3, greetingSeconds: 3, socketSeconds: 5 };

describe(sendTestCommand.name, () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function fakeUpstream(options: Parameters<typeof startFakeUpstream>[0] = {}): Promise<FakeUpstream> {
    const server = await startFakeUpstream({ tls: 'none', ...options });
    closers.push(() => server.close());
    return server;
  }

  async function configFile(config: Record<string, unknown>): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-send-test-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ http: { enabled: false }, delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox') }, ...config }));
    return path;
  }

  const upstreamAt = (name: string, port: number) => ({ name, host: '127.0.0.1', port, security: 'none', timeouts: TIMEOUTS });

  describe('--via a running relay', () => {
    it("submits like an app and prints the relay's reply with the qid", async () => {
      const relay: TestRelay = await startRelay();
      closers.push(() => relay.stop());
      const io = captureIo();
      const code = await sendTestCommand({ config: 'unused.json', to: 'user@dest.test', from: 'app@corp.test', via: `127.0.0.1:${relay.port}` }, io, { hostname: 'host.test' });
      expect(code).toBe(0);
      const match = /accepted the message: 250 2\.0\.0 Ok: (?:queued|delivered) as ([A-Za-z0-9]+)/.exec(io.out());
      expect(match).not.toBeNull();
      const received = await relay.logs.waitFor('received', (r) => r.qid === match?.[1]);
      expect(received.from).toBe('app@corp.test');
    });

    it('exits 1 with the reason when nothing listens there', async () => {
      const port = await startRefusingPort();
      const io = captureIo();
      const code = await sendTestCommand({ config: 'unused.json', to: 'user@dest.test', via: `127.0.0.1:${port}` }, io);
      expect(code).toBe(1);
      expect(io.out()).toMatch(/refused the message: .*ECONNREFUSED|refused the message: ESOCKET/);
    });
  });

  describe('in-process through the upstream transports', () => {
    it("runs the policies and prints the upstream's answer", async () => {
      const server = await fakeUpstream();
      const path = await configFile({ message: { globalFrom: 'noreply@corp.test' }, upstreams: [upstreamAt('primary', server.port)] });
      const io = captureIo();
      const code = await sendTestCommand({ config: path, to: 'user@dest.test', from: 'someone@corp.test' }, io, { hostname: 'host.test' });
      expect(code).toBe(0);
      expect(io.out()).toMatch(/^primary: 250 OK: queued as FAKE \(accepted: user@dest\.test\)$/m);
      const [received] = await server.waitForMessages(1);
      const text = received?.raw.toString('utf8') ?? '';
      expect(text).toMatch(/^Subject: smtp-sidecar test message\r$/m);
      expect(text).toMatch(/^From: .*<noreply@corp\.test>\r$/m); // the global-from policy ran
      expect(text).toMatch(/^Message-ID: </im); // so did date-message-id
      expect(text).toContain('From host: host.test');
      expect(received?.envelope).toEqual({ mailFrom: 'noreply@corp.test', rcptTo: ['user@dest.test'] });
    });

    it('fails over like the dispatcher and says why', async () => {
      const refused = await startRefusingPort();
      const server = await fakeUpstream();
      const path = await configFile({ upstreams: [upstreamAt('primary', refused), upstreamAt('secondary', server.port)] });
      const io = captureIo();
      const code = await sendTestCommand({ config: path, to: 'user@dest.test', from: 'app@corp.test' }, io);
      expect(code).toBe(0);
      expect(io.out()).toMatch(/^primary: failed: .*ECONNREFUSED.* — failover, 4\.\d\.\d: /m);
      expect(io.out()).toMatch(/^secondary: 250 /m);
      expect(server.messages).toHaveLength(1);
    });

    it('--upstream sends through that upstream only', async () => {
      const first = await fakeUpstream();
      const second = await fakeUpstream();
      const path = await configFile({ upstreams: [upstreamAt('primary', first.port), upstreamAt('secondary', second.port)] });
      const io = captureIo();
      expect(await sendTestCommand({ config: path, to: 'user@dest.test', from: 'app@corp.test', upstream: 'secondary' }, io)).toBe(0);
      expect(first.messages).toHaveLength(0);
      expect(second.messages).toHaveLength(1);
      expect(await sendTestCommand({ config: path, to: 'user@dest.test', upstream: 'nope' }, captureIo())).toBe(2);
    });

    it('prints a permanent refusal with its classification and exits 1', async () => {
      const server = await fakeUpstream({ failRcpt: () => ({ code: 550, message: '5.1.1 no such user' }) });
      const path = await configFile({ upstreams: [upstreamAt('primary', server.port)] });
      const io = captureIo();
      const code = await sendTestCommand({ config: path, to: 'ghost@dest.test', from: 'app@corp.test' }, io);
      expect(code).toBe(1);
      expect(io.out()).toMatch(/^primary: failed: 550 5\.1\.1 no such user.* — bounced, 5\.1\.1: /m);
    });
  });

  it('refuses bad usage with exit 2', async () => {
    expect(await sendTestCommand({ config: 'x.json' }, captureIo())).toBe(2);
    expect(await sendTestCommand({ config: 'x.json', to: 'a@b.test\r\nBcc: evil@x.test' }, captureIo())).toBe(2);
    expect(await sendTestCommand({ config: 'x.json', to: 'a@b.test', via: 'nohostport' }, captureIo())).toBe(2);
    expect(await sendTestCommand({ config: 'x.json', to: 'a@b.test', via: '127.0.0.1:25', upstream: 'p' }, captureIo())).toBe(2);
  });
});
