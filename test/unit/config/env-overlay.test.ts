/** SMTP_SIDECAR_* variables over the config file, and the coercion of references and variables to the schema's types. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../../../src/config/load.js';
import { problemsOf } from '../../helpers/config-problems.js';

const file = (value: unknown) => () => JSON.stringify(value);
const noFile = () => {
  throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
};

const BASE = {
  listen: { port: 2525 },
  upstreams: [{ name: 'm365', host: 'smtp.office365.com', port: 587, auth: { type: 'login', user: 'relay@contoso.com', pass: 'from-file' } }],
};

describe('environment variables over the file', () => {
  it('set numbers, booleans, lists, map keys and array items by path, keeping the rest of the file', () => {
    const config = loadConfig('/etc/x.json', {
      readFile: file(BASE),
      env: {
        SMTP_SIDECAR_LISTEN__PORT: '25',
        SMTP_SIDECAR_LISTEN__ALLOWED_CLIENTS: '127.0.0.0/8, 10.0.0.0/8',
        SMTP_SIDECAR_DELIVERY__FSYNC: 'false',
        SMTP_SIDECAR_DELIVERY__RETRY__MAX_LIFETIME_HOURS: '12.5',
        SMTP_SIDECAR_MESSAGE__CONFIDENTIAL__ENABLED: 'yes',
        SMTP_SIDECAR_MESSAGE__CONFIDENTIAL__HEADERS__SENSITIVITY: 'Private',
        SMTP_SIDECAR_UPSTREAMS__0__HOST: 'smtp.backup.example',
        SMTP_SIDECAR_UPSTREAMS__0__AUTH__PASS: 'from-env',
        SMTP_SIDECAR_UPSTREAMS__1__NAME: 'second',
        SMTP_SIDECAR_UPSTREAMS__1__HOST: '127.0.0.1',
        SMTP_SIDECAR_UPSTREAMS__1__SECURITY: 'none',
        SMTP_SIDECAR_UPSTREAMS__1__PORT: '2526',
      },
    });
    expect(config.listen.port).toBe(25);
    expect(config.listen.allowedClients).toEqual(['127.0.0.0/8', '10.0.0.0/8']);
    expect(config.delivery.fsync).toBe(false);
    expect(config.delivery.retry.maxLifetimeHours).toBe(12.5);
    expect(config.message.confidential).toEqual({ enabled: true, headers: { SENSITIVITY: 'Private' } });
    expect(config.upstreams[0]).toMatchObject({ name: 'm365', host: 'smtp.backup.example', port: 587, auth: { type: 'login', user: 'relay@contoso.com', pass: 'from-env' } });
    expect(config.upstreams[1]).toMatchObject({ name: 'second', host: '127.0.0.1', port: 2526, security: 'none' });
  });

  it('take a whole value as JSON, then longer names refine it; key names match in any case, with or without underscores', () => {
    const config = loadConfig('/etc/x.json', {
      readFile: file({}),
      env: {
        SMTP_SIDECAR_UPSTREAMS: JSON.stringify([{ name: 'json', host: 'a.example' }]),
        SMTP_SIDECAR_UPSTREAMS__0__PORT: '465',
        SMTP_SIDECAR_LISTEN__MAXMESSAGESIZEMB: '10',
        smtp_sidecar_ignored_lowercase: 'x',
      },
    });
    expect(config.upstreams[0]).toMatchObject({ name: 'json', host: 'a.example', port: 465 });
    expect(config.listen.maxMessageSizeMB).toBe(10);
  });

  it('leave alone the variables that are not config keys (the encryption key, sendmail\'s relay address)', () => {
    const config = loadConfig('/etc/x.json', { readFile: file({}), env: { SMTP_SIDECAR_RELAY: '127.0.0.1:25', SMTP_SIDECAR_KEY_FILE: '/nonexistent' } });
    expect(config.listen.port).toBe(25);
  });

  it('a typo is an error that names the variable and the keys there, never the value', () => {
    const problems = problemsOf(() =>
      loadConfig('/etc/x.json', { readFile: file({}), env: { SMTP_SIDECAR_LISTN__PORT: 'secret-1', SMTP_SIDECAR_UPSTREAMS__0__AUTH__PASSWORD: 'secret-2' } }),
    );
    expect(problems[0]).toMatch(/^environment variable SMTP_SIDECAR_LISTN__PORT: the config has no key "LISTN" \(keys: .*\blisten\b.*\)$/);
    expect(problems[1]).toMatch(/^environment variable SMTP_SIDECAR_UPSTREAMS__0__AUTH__PASSWORD: upstreams\[0\]\.auth has no key "PASSWORD" \(keys: .*\bpass\b.*\)$/);
    expect(problems.join('\n')).not.toMatch(/secret-/);
  });

  it('a value that is not a number where one is wanted is refused at its key', () => {
    expect(problemsOf(() => loadConfig('/etc/x.json', { readFile: file({}), env: { SMTP_SIDECAR_LISTEN__PORT: 'twenty-five' } }))).toEqual([
      'listen.port: Invalid input: expected number, received string',
    ]);
  });
});

describe('references in number and boolean fields', () => {
  it('${env:} and ${file:} are converted to the type the schema wants there', () => {
    const config = loadConfig('/etc/x.json', {
      readFile: (p) => (p === '/run/secrets/wait' ? '30\n' : JSON.stringify({ listen: { port: '${env:SMTP_PORT}' }, delivery: { waitSeconds: '${file:/run/secrets/wait}', fsync: '${env:FSYNC}' } })),
      env: { SMTP_PORT: '2525', FSYNC: 'off' },
    });
    expect(config.listen.port).toBe(2525);
    expect(config.delivery.waitSeconds).toBe(30);
    expect(config.delivery.fsync).toBe(false);
  });

  it('a string field keeps the text; a literal "25" written in the file is still an error', () => {
    const config = loadConfig('/etc/x.json', { readFile: file({ listen: { hostname: '${env:NAME}' } }), env: { NAME: '12345' } });
    expect(config.listen.hostname).toBe('12345');
    expect(problemsOf(() => loadConfig('/etc/x.json', { readFile: file({ listen: { port: '25' } }), env: {} }))).toEqual(['listen.port: Invalid input: expected number, received string']);
  });
});

describe('no config file', () => {
  it('the default file missing and SMTP_SIDECAR_* variables set: the environment alone is the config', () => {
    const config = loadConfig(DEFAULT_CONFIG_PATH, { readFile: noFile, env: { SMTP_SIDECAR_LISTEN__PORT: '2525', SMTP_SIDECAR_UPSTREAMS__0__NAME: 'a', SMTP_SIDECAR_UPSTREAMS__0__HOST: 'h.example' } });
    expect(config.listen.port).toBe(2525);
    expect(config.upstreams.map((u) => u.name)).toEqual(['a']);
  });

  it('without such variables (or for a file named explicitly) a missing file is still an error', () => {
    expect(problemsOf(() => loadConfig(DEFAULT_CONFIG_PATH, { readFile: noFile, env: { SMTP_SIDECAR_KEY: 'k' } }))[0]).toMatch(/there is no config file.*SMTP_SIDECAR_\* environment variables/);
    expect(problemsOf(() => loadConfig('/srv/relay.json', { readFile: noFile, env: { SMTP_SIDECAR_LISTEN__PORT: '25' } }))[0]).toMatch(/^\/srv\/relay\.json: there is no config file/);
  });
});
