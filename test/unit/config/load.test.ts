import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, PACKAGE_DIR, parseConfig } from '../../../src/config/load.js';
import { problemsOf } from '../../helpers/config-problems.js';
import { encryptSecret, keyFromEnvironment } from '../../../src/config/secrets.js';


describe(parseConfig.name, () => {
  it('fills the built-in defaults of the config contract (docs/CONFIG.md)', () => {
    const c = parseConfig({});
    expect(c.listen).toMatchObject({ host: '127.0.0.1', port: 25, allowedClients: ['127.0.0.0/8', '::1/128'], maxMessageSizeMB: 35, maxRecipients: 100, bareLineFeeds: 'normalize' });
    expect(c.limits).toMatchObject({ maxAttachments: 50, maxAttachmentsTotalMB: 10 });
    expect(c.delivery).toMatchObject({ spoolDir: './spool', outboxDir: './outbox', waitSeconds: 10, retry: { minBackoffSeconds: 60, maxBackoffSeconds: 3600, maxLifetimeHours: 48 } });
    expect(c.message.keepOriginalFromAs).toBe('Reply-To');
    expect(c.http).toMatchObject({ enabled: true, host: '127.0.0.1', port: 8025 });
    expect(Object.isFrozen(c.listen)).toBe(true);
  });

  it('lists every problem as "path: message"', () => {
    const problems = problemsOf(() =>
      parseConfig({
        listen: { port: 'x', bogus: 1, hostname: 'a\r\nb', allowedClients: ['10.0.0.0/33'] },
        message: { globalFrom: 'not an address', rewriteFrom: 'sometimes' },
        upstreams: [{ name: 'p', host: 'h', auth: { type: 'oauth2', user: 'a@b.test', tenantId: 't', clientId: 'c' } }],
      }),
    );
    expect(problems).toEqual([
      'listen.port: Invalid input: expected number, received string',
      'listen.hostname: must not contain CR or LF (it would end up in an SMTP command or header)',
      'listen.allowedClients[0]: must be an IP address or CIDR range like 127.0.0.0/8 or ::1/128',
      'listen.bogus: unknown key',
      'message.globalFrom: must be a plain email address like user@example.com',
      'message.rewriteFrom: Invalid option: expected one of "always"|"unless-allowed"|"never"',
      'upstreams[0].auth.clientSecret: set exactly one of clientSecret or clientCertificate',
    ]);
  });

  it('checks cross-references: route upstream names and duplicate upstream names', () => {
    const problems = problemsOf(() =>
      parseConfig({
        upstreams: [
          { name: 'a', host: 'h1', security: 'none' },
          { name: 'a', host: 'h2', security: 'none' },
        ],
        routes: [{ recipients: ['*@sms.test'], upstreams: ['a', 'zz'] }],
      }),
    );
    expect(problems).toEqual(['upstreams[1].name: duplicate upstream name "a"', 'routes[0].upstreams[1]: unknown upstream "zz"']);
  });

  it('refuses CR/LF in header values and addresses that end up in SMTP', () => {
    const problems = problemsOf(() => parseConfig({ message: { alwaysCc: ['a@b.test\r\nBcc: x@y.test'], confidential: { headers: { 'X-A': 'v\nInjected: 1' } } } }));
    expect(problems).toContain('message.alwaysCc[0]: must not contain CR or LF (it would end up in an SMTP command or header)');
    expect(problems).toContain('message.confidential.headers.X-A: must not contain CR or LF (it would end up in an SMTP command or header)');
  });
});

describe('references', () => {
  it('resolves ${env:NAME} and ${file:/path} in any string, dropping one trailing newline of a file', () => {
    const c = parseConfig(
      { message: { globalFrom: '${env:FROM}' }, upstreams: [{ name: 'u', host: 'h', security: 'none', auth: { type: 'plain', user: 'relay', pass: '${file:/run/secrets/p}', allowPlaintext: true } }] },
      { env: { FROM: 'noreply@corp.test' }, readFile: (p) => (p === '/run/secrets/p' ? 'pa55\n' : '') },
    );
    expect(c.message.globalFrom).toBe('noreply@corp.test');
    expect(c.upstreams[0]!.auth).toMatchObject({ pass: 'pa55' });
  });

  it('refuses a multi-line ${file:} value as a password or client secret (one trailing newline is fine)', () => {
    const files: Record<string, string> = { '/run/secrets/ok': 'pa55\r\n', '/run/secrets/two': 'pa55\nsecond line\n', '/run/secrets/pem': '-----BEGIN X-----\nabc\n' };
    const cfg = (pass: string, clientSecret: string) => ({
      upstreams: [
        { name: 'u', host: 'h', auth: { type: 'plain', user: 'relay', pass } },
        { name: 'm', host: 'h2', auth: { type: 'oauth2', user: 'relay@corp.test', tenantId: 't', clientId: 'c', clientSecret } },
      ],
    });
    const readFile = (p: string) => files[p]!;
    expect(parseConfig(cfg('${file:/run/secrets/ok}', '${file:/run/secrets/ok}'), { readFile }).upstreams[0]!.auth).toMatchObject({ pass: 'pa55' });
    const problems = problemsOf(() => parseConfig(cfg('${file:/run/secrets/two}', '${file:/run/secrets/pem}'), { readFile }));
    expect(problems).toEqual([
      'upstreams[0].auth.pass: must be one line: a ${file:} secret may end with one newline (it is dropped), not hold several lines (is it the right file?)',
      'upstreams[1].auth.clientSecret: must be one line: a ${file:} secret may end with one newline (it is dropped), not hold several lines (is it the right file?)',
    ]);
  });

  it('reports a missing variable or file naming the key, never substituting an empty string', () => {
    const problems = problemsOf(() =>
      parseConfig(
        { message: { globalFrom: '${env:NOPE}' }, upstreams: [{ name: 'u', host: 'h', security: 'none', auth: { type: 'plain', user: 'relay', pass: '${file:/missing}', allowPlaintext: true } }] },
        {
          env: {},
          readFile: () => {
            throw Object.assign(new Error('x'), { code: 'ENOENT' });
          },
        },
      ),
    );
    expect(problems).toEqual(['message.globalFrom: environment variable NOPE is not set', 'upstreams[0].auth.pass: cannot read file /missing (ENOENT)']);
  });

  it('decrypts enc: values with SMTP_SIDECAR_KEY; a wrong key or a tampered value is an error naming the key', () => {
    const env = { SMTP_SIDECAR_KEY: 'correct horse battery staple' };
    const enc = encryptSecret('s3cret-pass', keyFromEnvironment(env)!);
    const cfg = (pass: string) => ({ upstreams: [{ name: 'u', host: 'h', security: 'none', auth: { type: 'login', user: 'relay', pass, allowPlaintext: true } }] });
    expect(parseConfig(cfg(enc), { env }).upstreams[0]!.auth).toMatchObject({ pass: 's3cret-pass' });
    const wrong = problemsOf(() => parseConfig(cfg(enc), { env: { SMTP_SIDECAR_KEY: 'another key entirely!!' } }));
    expect(wrong).toEqual(['upstreams[0].auth.pass: cannot decrypt: wrong SMTP_SIDECAR_KEY or a tampered value']);
    const bytes = Buffer.from(enc.slice(4), 'base64');
    bytes[bytes.length - 1]! ^= 1;
    const tampered = problemsOf(() => parseConfig(cfg(`enc:${bytes.toString('base64')}`), { env }));
    expect(tampered).toEqual(['upstreams[0].auth.pass: cannot decrypt: wrong SMTP_SIDECAR_KEY or a tampered value']);
    const noKey = problemsOf(() => parseConfig(cfg(enc), { env: {} }));
    expect(noKey[0]).toMatch(/^upstreams\[0\]\.auth\.pass: value is encrypted \(enc:\) but neither SMTP_SIDECAR_KEY/);
    expect(JSON.stringify([wrong, tampered, noKey])).not.toContain('s3cret-pass');
  });
});

describe(loadConfig.name, () => {
  it('names the file when it is not JSON or cannot be read', () => {
    expect(problemsOf(() => loadConfig('/nope.json', { readFile: () => '{ "listen": ' }))[0]).toMatch(/^\/nope\.json: not valid JSON/);
    expect(
      problemsOf(() =>
        loadConfig('/nope.json', {
          readFile: () => {
            throw Object.assign(new Error('x'), { code: 'EACCES' });
          },
        }),
      ),
    ).toEqual(['/nope.json: cannot read config file (EACCES)']);
  });

  it('says how to start from the example when the file does not exist', () => {
    const empty = mkdtempSync(join(tmpdir(), 'smtp-sidecar-noconfig-'));
    const missing = join(empty, 'config.json');
    const [problem] = problemsOf(() => loadConfig(missing, { env: {} }));
    rmSync(empty, { recursive: true });
    const example = join(PACKAGE_DIR, 'config.example.json');
    expect(existsSync(example)).toBe(true);
    expect(problem).toBe(
      `${missing}: there is no config file. Create it from the example and edit it: install -D -m 0640 ${example} ${missing}; ` +
        `or name another file with --config FILE (to try the relay at once: smtp-sidecar start --config ${example})`,
    );
  });

  it('accepts config.example.json', () => {
    const c = loadConfig('config.example.json', { env: {} });
    expect(c.listen.port).toBe(2525);
    expect(c.upstreams).toEqual([]);
  });
});
