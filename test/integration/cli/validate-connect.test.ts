import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateCommand } from '../../../src/cli/validate.js';
import { checkUpstreams, connectCheck, SecretScrubber } from '../../../src/cli/validate-connect.js';
import { parseConfig } from '../../../src/config/load.js';
import { startFakeExchange, type FakeExchange } from '../../helpers/fake-exchange.js';
import { startFakeTokenEndpoint, type FakeTokenEndpoint } from '../../helpers/fake-token-endpoint.js';
import { startFakeUpstream, startRefusingPort, type FakeUpstream } from '../../helpers/fake-upstream.js';
import { TLS_PATHS, TLS_PEM } from '../../helpers/tls.js';
import { captureIo } from './support.js';

const PASSWORD = 'S3cret-Pa55word';
const TIMEOUTS = { connectSeconds: 3, greetingSeconds: 3, socketSeconds: 5 };

function configWith(upstreams: Record<string, unknown>[]) {
  return parseConfig({ listen: { hostname: 'relay.test' }, http: { enabled: false }, upstreams });
}

function basicUpstream(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'primary',
    host: '127.0.0.1',
    port,
    security: 'starttls-required',
    tls: { ca: TLS_PATHS.ca },
    timeouts: TIMEOUTS,
    auth: { type: 'plain', user: 'relay', pass: PASSWORD },
    ...extra,
  };
}

/** stdout split into [upstream, step, status, detail] rows */
function rows(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => {
      const [upstream = '', step = '', status = '', ...rest] = line.split(/\s+/);
      return [upstream, step, status, rest.join(' ')];
    });
}

function base64Forms(user: string, secret: string): string[] {
  const b64 = (v: string) => Buffer.from(v, 'utf8').toString('base64');
  return [b64(secret), b64(`\u0000${user}\u0000${secret}`), b64(`user=${user}\u0001auth=Bearer ${secret}\u0001\u0001`)];
}

describe(checkUpstreams.name, () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function upstream(options: Parameters<typeof startFakeUpstream>[0]): Promise<FakeUpstream> {
    const server = await startFakeUpstream(options);
    closers.push(() => server.close());
    return server;
  }

  it('passes an upstream with STARTTLS (test CA) and AUTH PLAIN, one line per step in order', async () => {
    const server = await upstream({ tls: 'starttls', auth: { methods: ['PLAIN', 'LOGIN'], users: { relay: PASSWORD } }, name: 'mx.test' });
    const io = captureIo();
    const passed = await checkUpstreams(configWith([basicUpstream(server.port)]), io);
    expect(passed).toBe(true);
    const table = rows(io.out());
    expect(table.map(([, step, status]) => `${step} ${status}`)).toEqual([
      'connect ok',
      'greeting ok',
      'ehlo ok',
      'tls ok',
      'auth ok',
      'quit ok',
    ]);
    expect(table.every(([name]) => name === 'primary')).toBe(true);
    expect(table[0]?.[3]).toMatch(new RegExp(`^127\\.0\\.0\\.1:${server.port} \\(\\d+ ms\\)$`));
    expect(table[1]?.[3]).toMatch(/^220 mx\.test/);
    expect(table[2]?.[3]).toMatch(/STARTTLS/);
    expect(table[2]?.[3]).toMatch(/AUTH PLAIN LOGIN/);
    expect(table[3]?.[3]).toMatch(/^TLSv1\.[23], certificate CN=localhost issued by CN=smtp-sidecar test CA$/);
    expect(table[4]?.[3]).toMatch(/^PLAIN as relay: 235/);
    expect(table[5]?.[3]).toMatch(/^221/);
    expect(server.authAttempts).toEqual([{ method: 'PLAIN', username: 'relay', accepted: true }]);
    expect(io.out()).not.toContain(PASSWORD);
  });

  it('reports a wrong password as a readable failed auth line, without the password in any form', async () => {
    const server = await upstream({ tls: 'starttls', auth: { methods: ['PLAIN'], users: { relay: 'the-right-one' } } });
    const io = captureIo();
    const passed = await checkUpstreams(configWith([basicUpstream(server.port)]), io);
    expect(passed).toBe(false);
    const auth = rows(io.out()).find(([, step]) => step === 'auth');
    expect(auth?.[2]).toBe('failed');
    expect(auth?.[3]).toMatch(/535 5\.7\.8 Authentication credentials invalid — check auth\.user\/auth\.pass/);
    // the session is still closed politely
    expect(rows(io.out()).at(-1)?.slice(1, 3)).toEqual(['quit', 'ok']);
    expect(io.out()).not.toContain(PASSWORD);
    for (const form of base64Forms('relay', PASSWORD)) expect(io.out()).not.toContain(form);
  });

  it('explains a certificate from an unknown CA with the tls.ca hint', async () => {
    const server = await upstream({ tls: 'starttls', certificate: { cert: TLS_PEM.otherServerCert, key: TLS_PEM.otherServerKey } });
    const io = captureIo();
    const passed = await checkUpstreams(configWith([basicUpstream(server.port, { auth: { type: 'none' } })]), io);
    expect(passed).toBe(false);
    const tls = rows(io.out()).find(([, step]) => step === 'tls');
    expect(tls?.[2]).toBe('failed');
    expect(tls?.[3]).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/);
    expect(tls?.[3]).toMatch(/set tls\.ca/);
    expect(rows(io.out()).some(([, step]) => step === 'auth')).toBe(false);
  });

  it('explains a certificate that does not name the host with the tls.servername hint', async () => {
    const server = await upstream({ tls: 'starttls' });
    const io = captureIo();
    const passed = await checkUpstreams(
      configWith([basicUpstream(server.port, { host: 'localhost', tls: { ca: TLS_PATHS.ca, servername: 'mail.other.test' }, auth: { type: 'none' } })]),
      io,
    );
    expect(passed).toBe(false);
    const tls = rows(io.out()).find(([, step]) => step === 'tls');
    expect(tls?.[2]).toBe('failed');
    expect(tls?.[3]).toMatch(/set tls\.servername/);
  });

  it('reports a refused port on the connect line and stops there', async () => {
    const port = await startRefusingPort();
    const io = captureIo();
    const passed = await checkUpstreams(configWith([basicUpstream(port)]), io);
    expect(passed).toBe(false);
    expect(rows(io.out())).toHaveLength(1);
    expect(rows(io.out())[0]?.slice(0, 3)).toEqual(['primary', 'connect', 'failed']);
    expect(io.out()).toMatch(/ECONNREFUSED: nothing listens on this port/);
  });

  it('checks implicit TLS (security "tls") with the TLS line before the greeting', async () => {
    const server = await upstream({ tls: 'implicit' });
    const io = captureIo();
    const passed = await checkUpstreams(configWith([basicUpstream(server.port, { security: 'tls', auth: { type: 'none' } })]), io);
    expect(passed).toBe(true);
    expect(rows(io.out()).map(([, step, status]) => `${step} ${status}`)).toEqual(['connect ok', 'tls ok', 'greeting ok', 'ehlo ok', 'auth skipped', 'mail ok', 'quit ok']);
  });

  it('reports security "tls" against a plaintext server as a failed TLS line with a hint', async () => {
    const server = await upstream({ tls: 'none' });
    const io = captureIo();
    const passed = await checkUpstreams(configWith([basicUpstream(server.port, { security: 'tls', auth: { type: 'none' } })]), io);
    expect(passed).toBe(false);
    const table = rows(io.out());
    expect(table.map(([, step, status]) => `${step} ${status}`)).toEqual(['connect ok', 'tls failed']);
    expect(table[1]?.[3]).toMatch(/does not speak TLS right away on this port/);
  });

  it('checks every upstream in order and fails when one of them fails', async () => {
    const good = await upstream({ tls: 'starttls', auth: { methods: ['PLAIN'], users: { relay: PASSWORD } } });
    const refused = await startRefusingPort();
    const io = captureIo();
    const passed = await checkUpstreams(configWith([basicUpstream(good.port), basicUpstream(refused, { name: 'backup' })]), io);
    expect(passed).toBe(false);
    const names = rows(io.out()).map(([name]) => name);
    expect(names.indexOf('backup')).toBeGreaterThan(names.lastIndexOf('primary'));
    expect(rows(io.out()).filter(([name, , status]) => name === 'primary' && status === 'failed')).toEqual([]);
  });

  it('says so when no upstream is configured, and passes', async () => {
    const io = captureIo();
    expect(await checkUpstreams(configWith([]), io)).toBe(true);
    expect(io.out()).toBe('no upstream configured: messages go to the outbox directory\n');
  });

  describe('oauth2', () => {
    const MAILBOX = 'relay@tenant.test';
    const CLIENT_SECRET = 'client-secret-VALUE-123';

    async function oauthSetup(): Promise<{ endpoint: FakeTokenEndpoint; exchange: FakeExchange }> {
      const endpoint = await startFakeTokenEndpoint({ clientSecret: CLIENT_SECRET });
      closers.push(() => endpoint.close());
      const exchange = await startFakeExchange({ isValid: (t) => endpoint.isValid(t), user: MAILBOX });
      closers.push(() => exchange.close());
      return { endpoint, exchange };
    }

    function oauthUpstream(endpoint: FakeTokenEndpoint, port: number): Record<string, unknown> {
      return basicUpstream(port, {
        name: 'm365',
        host: 'localhost',
        auth: { type: 'oauth2', user: MAILBOX, tenantId: endpoint.tenantId, clientId: endpoint.clientId, clientSecret: CLIENT_SECRET },
      });
    }

    it('gets a token (printing its expiry, never the token) and authenticates with XOAUTH2', async () => {
      const { endpoint, exchange } = await oauthSetup();
      const io = captureIo();
      const passed = await checkUpstreams(configWith([oauthUpstream(endpoint, exchange.port)]), io, {
        tokenNetworkClient: endpoint.asNetworkClient(),
      });
      expect(passed).toBe(true);
      const table = rows(io.out());
      expect(table.map(([, step, status]) => `${step} ${status}`)).toEqual([
        'connect ok',
        'greeting ok',
        'ehlo ok',
        'tls ok',
        'token ok',
        'auth ok',
        'quit ok',
      ]);
      expect(table.find(([, step]) => step === 'token')?.[3]).toMatch(/^expires \d{4}-\d\d-\d\dT/);
      expect(table.find(([, step]) => step === 'auth')?.[3]).toMatch(/^XOAUTH2 as relay@tenant\.test: 235/);
      expect(exchange.authAttempts).toEqual([{ method: 'XOAUTH2', username: MAILBOX, accepted: true, secure: true }]);
      const token = endpoint.issuedTokens[0] ?? 'missing';
      expect(endpoint.issuedTokens).toHaveLength(1);
      expect(io.out()).not.toContain(token);
      expect(io.out()).not.toContain(CLIENT_SECRET);
      for (const form of base64Forms(MAILBOX, token)) expect(io.out()).not.toContain(form);
    });

    it('reports a refused token with the Microsoft 365 hint', async () => {
      const { endpoint, exchange } = await oauthSetup();
      exchange.rejectNextAuths(1);
      const io = captureIo();
      const passed = await checkUpstreams(configWith([oauthUpstream(endpoint, exchange.port)]), io, {
        tokenNetworkClient: endpoint.asNetworkClient(),
      });
      expect(passed).toBe(false);
      const auth = rows(io.out()).find(([, step]) => step === 'auth');
      expect(auth?.[2]).toBe('failed');
      expect(auth?.[3]).toMatch(/535 5\.7\.3 Authentication unsuccessful — the token was refused: check the SMTP\.SendAsApp/);
      expect(io.out()).not.toContain(endpoint.issuedTokens[0] ?? 'missing');
    });

    it('reports a token endpoint refusal (wrong client secret) on the token line and skips AUTH', async () => {
      const { endpoint, exchange } = await oauthSetup();
      const io = captureIo();
      const config = configWith([
        basicUpstream(exchange.port, {
          name: 'm365',
          host: 'localhost',
          auth: { type: 'oauth2', user: MAILBOX, tenantId: endpoint.tenantId, clientId: endpoint.clientId, clientSecret: 'wrong-secret-xyz' },
        }),
      ]);
      const passed = await checkUpstreams(config, io, { tokenNetworkClient: endpoint.asNetworkClient() });
      expect(passed).toBe(false);
      const token = rows(io.out()).find(([, step]) => step === 'token');
      expect(token?.[2]).toBe('failed');
      expect(token?.[3]).toMatch(/AADSTS7000215/);
      expect(rows(io.out()).some(([, step]) => step === 'auth')).toBe(false);
      expect(exchange.authAttempts).toEqual([]);
      expect(io.out()).not.toContain('wrong-secret-xyz');
    });
  });
});

describe(`${validateCommand.name} --connect`, () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function configFile(upstreams: Record<string, unknown>[]): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-validate-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ http: { enabled: false }, upstreams }));
    return path;
  }

  it('exits 0 when every upstream passes and 1 when one fails', async () => {
    const server = await startFakeUpstream({ tls: 'starttls', auth: { methods: ['PLAIN'], users: { relay: PASSWORD } } });
    closers.push(() => server.close());
    const ok = captureIo();
    expect(await validateCommand({ config: await configFile([basicUpstream(server.port)]), connect: true }, ok, connectCheck())).toBe(0);
    const bad = captureIo();
    const wrong = basicUpstream(server.port, { auth: { type: 'plain', user: 'relay', pass: 'not-the-password' } });
    expect(await validateCommand({ config: await configFile([wrong]), connect: true }, bad, connectCheck())).toBe(1);
    expect(bad.out()).toMatch(/auth\s+failed/);
  });
});

describe(SecretScrubber.name, () => {
  it('redacts a secret and its base64, SASL PLAIN and XOAUTH2 forms', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('relay', PASSWORD);
    const forms = [PASSWORD, ...base64Forms('relay', PASSWORD)];
    const out = scrubber.scrub(`server said: ${forms.join(' | ')}`);
    for (const form of forms) expect(out).not.toContain(form);
    expect(out).toBe(`server said: ${forms.map(() => '[REDACTED]').join(' | ')}`);
  });
});
