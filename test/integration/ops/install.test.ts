/**
 * The production install, for real, as README describes it and as the Docker image does it:
 * `npm pack` (prepack builds dist/; the runtime dependencies are bundled) → `npm install -g`
 * of the tarball into a temporary prefix, offline → the installed command: --version, start,
 * sendmail, health, validate; then deploy/install.sh into a temporary root and the systemd unit
 * it installs checked by `systemd-analyze verify` and `systemd-analyze security`.
 *
 * The pack runs in a copy of the package (node_modules hard-linked when the file system
 * allows), so that its build never rewrites the dist/ that other test files are running.
 * The install uses an empty npm cache of its own (`--cache`): offline from an empty cache
 * proves the tarball alone is enough, and the user's ~/.npm is left alone. The tarball, the
 * cache and the prefix live in RAM (/dev/shm) when it is a tmpfs with room: npm writes the
 * package's ~4,400 files three times (cache, bundle check, prefix), which takes 15-20 s on a
 * slow disk and 4 s in RAM. What is installed and checked is the same either way.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs } from '../../helpers/relay.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

const SYSTEMD_ANALYZE = spawnSync('systemd-analyze', ['--version']).status === 0 ? 'systemd-analyze' : undefined;
if (SYSTEMD_ANALYZE === undefined) {
  console.warn('systemd unit check skipped: systemd-analyze is not installed (.ci/run installs the systemd package)');
}

/** /dev/shm when it is a RAM file system with 1 GiB free, else the usual temp directory. */
function fastTmpdir(): string {
  const TMPFS_MAGIC = 0x01021994;
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.type === TMPFS_MAGIC && fs.bavail * fs.bsize >= 1024 ** 3) return '/dev/shm';
  } catch {
    // no /dev/shm (not Linux): the usual temp directory
  }
  return tmpdir();
}

let dir: string;
/** tarball, npm cache and install prefix (in RAM when possible); `dir` holds the rest */
let ramDir: string;
let prefix: string;
let tarball: string;
let bin: string;
const children: number[] = [];

/** A copy of `from` where every file is a hard link (falls back to copying when linking fails, e.g. across file systems). */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) linkTree(source, target);
    else if (entry.isSymbolicLink()) cpSync(source, target, { verbatimSymlinks: true });
    else {
      try {
        linkSync(source, target);
      } catch {
        cpSync(source, target);
      }
    }
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smtp-sidecar-install-'));
  ramDir = mkdtempSync(join(fastTmpdir(), 'smtp-sidecar-install-'));
  const source = join(dir, 'source');
  mkdirSync(source);
  for (const file of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'config.example.json', 'config.schema.json']) {
    cpSync(join(ROOT, file), join(source, file));
  }
  for (const folder of ['src', 'deploy', 'docs']) cpSync(join(ROOT, folder), join(source, folder), { recursive: true });
  linkTree(join(ROOT, 'node_modules'), join(source, 'node_modules'));
  // `npm pack` runs prepack (npm run build) in the copy: dist/ does not exist there before
  expect(existsSync(join(source, 'dist'))).toBe(false);
  await run('npm', ['pack', '--pack-destination', ramDir], { cwd: source, timeout: 150_000 });
  tarball = join(ramDir, `smtp-sidecar-${pkg.version}.tgz`);
  prefix = join(ramDir, 'prefix');
  // --offline with an empty cache: everything the package needs is in the tarball (bundled dependencies)
  const cache = join(ramDir, 'npm-cache');
  await run('npm', ['install', '-g', '--prefix', prefix, '--cache', cache, '--offline', '--no-audit', '--no-fund', tarball], { cwd: dir, timeout: 150_000 });
  bin = join(prefix, 'bin', 'smtp-sidecar');
}, 320_000);

afterAll(() => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL'); // only the relays this file started
    } catch {
      // already gone
    }
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  if (ramDir !== undefined) rmSync(ramDir, { recursive: true, force: true });
});

/** The installed package's environment: its bin first on PATH, and this node for `#!/usr/bin/env node`. */
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`,
  ...extra,
});

describe('the packed tarball', () => {
  it('holds the built JavaScript, the example config, the schema, LICENSE and deploy/, and no sources or tests', async () => {
    const { stdout } = await run('tar', ['tzf', tarball], { timeout: 30_000 });
    const files = stdout.split('\n').filter((f) => f !== '' && !f.startsWith('package/node_modules/'));
    for (const expected of ['dist/main.js', 'dist/cli/sendmail.js', 'config.example.json', 'config.schema.json', 'docs/CONFIG.md', 'LICENSE', 'README.md', 'deploy/smtp-sidecar.service', 'deploy/install.sh']) {
      expect(files).toContain(`package/${expected}`);
    }
    expect(files.filter((f) => /^package\/(src|test|bench|scripts)\//.test(f) || f.endsWith('.ts') || f.endsWith('.map'))).toEqual([]);
    // the status page's files (copied by the build next to http.js)
    for (const file of ['index.html', 'page.css', 'page.js']) expect(files).toContain(`package/dist/ops/page/${file}`);
    // the runtime dependencies travel inside it, and nothing of the development ones
    expect(stdout).toContain('package/node_modules/smtp-server/package.json');
    expect(stdout).not.toContain('package/node_modules/vitest/');
    expect(stdout).not.toContain('package/node_modules/pino-pretty/'); // --pretty needs no extra package
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  });
});

describe('the installed command', () => {
  it('prints its version', async () => {
    const { stdout } = await run(bin, ['--version'], { env: env(), timeout: 20_000 });
    expect(stdout).toBe(`smtp-sidecar ${pkg.version}\n`);
  });

  it('without a config file says how to start from the shipped example', async () => {
    const missing = join(dir, 'etc-missing', 'config.json');
    const started = run(bin, ['start', '--config', missing], { env: env(), timeout: 20_000 });
    const example = join(prefix, 'lib', 'node_modules', 'smtp-sidecar', 'config.example.json');
    expect(existsSync(example)).toBe(true);
    await expect(started).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining(`install -D -m 0640 ${example} ${missing}`) });
  });

  it('starts, takes a message from the installed sendmail, writes it to the outbox, and answers health', async () => {
    const work = join(dir, 'run');
    mkdirSync(work);
    const config = join(work, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ listen: { port: 0 }, http: { port: 0 }, delivery: { spoolDir: join(work, 'spool'), outboxDir: join(work, 'outbox'), waitSeconds: 5, fsync: false } }),
    );
    const child = spawn(bin, ['start', '--config', config], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child.pid!);
    const logs = captureLogs();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let buffered = '';
    child.stdout.on('data', (c: Buffer) => {
      buffered += c.toString();
      let lf: number;
      while ((lf = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, lf);
        buffered = buffered.slice(lf + 1);
        if (line.startsWith('{')) logs.write(line);
      }
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const smtpPort = (await logs.waitFor('listening', () => true, 20_000))['port'] as number;
      const httpPort = (await logs.waitFor('http.listening', () => true, 20_000))['port'] as number;
      // what sendmail and health read: listen and http of the config
      const clientConfig = join(work, 'client.json');
      writeFileSync(clientConfig, JSON.stringify({ listen: { port: smtpPort }, http: { port: httpPort } }));

      const link = join(work, 'sendmail');
      const { stdout: installedMain } = await run('readlink', ['-f', bin]);
      await run('ln', ['-s', installedMain.trim(), link]);
      const sent = await new Promise<{ code: number | null; stderr: string }>((resolveRun) => {
        const sendmail = spawn(link, ['-C', clientConfig, '-t', '-i'], { env: env(), stdio: ['pipe', 'ignore', 'pipe'] });
        let err = '';
        sendmail.stderr.on('data', (c: Buffer) => (err += c.toString()));
        sendmail.on('close', (code) => resolveRun({ code, stderr: err }));
        sendmail.stdin.end('From: app@legacy.test\nTo: ops@dest.test\nSubject: installed\n\nfrom the packed install\n');
      });
      expect(sent).toEqual({ code: 0, stderr: '' });
      const outbox = readdirSync(join(work, 'outbox')).filter((f) => f.endsWith('.eml'));
      expect(outbox).toHaveLength(1);
      expect(readFileSync(join(work, 'outbox', outbox[0]!), 'utf8')).toContain('from the packed install\r\n');

      const health = await run(bin, ['health', '--config', clientConfig], { env: env(), timeout: 20_000 });
      expect(health.stdout).toContain(`healthy: http://127.0.0.1:${httpPort}/healthz answered 200`);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    expect(stderr).toBe('');
  }, 60_000);

  it('validates the Docker config with its secrets from files and its environment set', async () => {
    const secrets = join(dir, 'secrets');
    mkdirSync(secrets);
    writeFileSync(join(secrets, 'm365_client_secret'), 'client-secret-value\n');
    const config = join(dir, 'docker-config.json');
    writeFileSync(config, readFileSync(join(ROOT, 'docker', 'config.docker.json'), 'utf8').replaceAll('/run/secrets/', `${secrets}/`));
    const withEnv = env({ M365_SENDER: 'relay@contoso.com', M365_TENANT_ID: 'tenant', M365_CLIENT_ID: 'client' });
    const valid = await run(bin, ['validate', '--config', config], { env: withEnv, timeout: 20_000 });
    expect(valid.stdout).toContain('valid (listen 0.0.0.0:25; upstreams: m365)');
    expect(valid.stdout + valid.stderr).not.toContain('client-secret-value');
    await expect(run(bin, ['validate', '--config', config], { env: env(), timeout: 20_000 })).rejects.toMatchObject({
      code: 2,
      stdout: expect.stringContaining('environment variable M365_SENDER is not set'),
    });
  });
});

describe('deploy/install.sh and the systemd unit', () => {
  let root: string;
  beforeAll(async () => {
    root = join(dir, 'root');
    const script = join(prefix, 'lib', 'node_modules', 'smtp-sidecar', 'deploy', 'install.sh');
    await run(script, [], { env: env({ ROOT: root }), timeout: 30_000 });
  }, 40_000);

  it('creates the config (port 25, group-readable only), the unit with the installed ExecStart, and the sendmail links', () => {
    const config = join(root, 'etc', 'smtp-sidecar', 'config.json');
    expect(statSync(config).mode & 0o777).toBe(0o640);
    const parsed = JSON.parse(readFileSync(config, 'utf8')) as { listen: { port: number }; $schema: string };
    expect(parsed.listen.port).toBe(25);
    expect(existsSync(parsed.$schema)).toBe(true);
    const unit = readFileSync(join(root, 'etc', 'systemd', 'system', 'smtp-sidecar.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${bin} start --config /etc/smtp-sidecar/config.json`);
    const main = join(prefix, 'lib', 'node_modules', 'smtp-sidecar', 'dist', 'main.js');
    for (const link of ['usr/sbin/sendmail', 'usr/lib/sendmail']) expect(readlinkSync(join(root, link))).toBe(main);
  });

  it('keeps an existing config and leaves another MTA\'s sendmail alone', async () => {
    const other = join(dir, 'root-other');
    mkdirSync(join(other, 'etc', 'smtp-sidecar'), { recursive: true });
    mkdirSync(join(other, 'usr', 'sbin'), { recursive: true });
    writeFileSync(join(other, 'etc', 'smtp-sidecar', 'config.json'), '{"listen":{"port":2526}}');
    writeFileSync(join(other, 'usr', 'sbin', 'sendmail'), '#!/bin/sh\n');
    const script = join(prefix, 'lib', 'node_modules', 'smtp-sidecar', 'deploy', 'install.sh');
    const { stderr } = await run(script, [], { env: env({ ROOT: other }), timeout: 30_000 });
    expect(readFileSync(join(other, 'etc', 'smtp-sidecar', 'config.json'), 'utf8')).toBe('{"listen":{"port":2526}}');
    expect(readFileSync(join(other, 'usr', 'sbin', 'sendmail'), 'utf8')).toBe('#!/bin/sh\n');
    expect(stderr).toContain('/usr/sbin/sendmail exists and is not smtp-sidecar');
  });

  it.skipIf(SYSTEMD_ANALYZE === undefined)('the installed unit passes systemd-analyze verify without a warning, and security rates it OK (exposure at most 2.0)', async () => {
    const unit = join(root, 'etc', 'systemd', 'system', 'smtp-sidecar.service');
    const verify = await run(SYSTEMD_ANALYZE!, ['verify', unit], { env: env(), timeout: 60_000 });
    expect(verify.stderr).toBe('');
    const security = await run(SYSTEMD_ANALYZE!, ['security', '--offline=yes', unit], { env: env(), timeout: 60_000 }).catch((err: { stdout: string }) => err);
    const exposure = /Overall exposure level for smtp-sidecar\.service: ([\d.]+)/.exec(security.stdout);
    expect(exposure, security.stdout).not.toBeNull();
    expect(Number(exposure![1])).toBeLessThanOrEqual(2.0);
    const text = readFileSync(unit, 'utf8');
    for (const setting of ['AmbientCapabilities=CAP_NET_BIND_SERVICE', 'ProtectSystem=strict', 'StateDirectory=smtp-sidecar', 'User=smtp-sidecar', 'NoNewPrivileges=yes']) {
      expect(text).toMatch(new RegExp(`^${setting}$`, 'm'));
    }
  });

  it.skipIf(SYSTEMD_ANALYZE === undefined)('systemd-analyze verify does catch a broken unit (the check is real)', async () => {
    const broken = join(dir, 'broken', 'smtp-sidecar.service');
    mkdirSync(dirname(broken));
    writeFileSync(broken, readFileSync(join(root, 'etc', 'systemd', 'system', 'smtp-sidecar.service'), 'utf8').replace('ProtectSystem=strict', 'ProtectSystem=strictly'));
    const verify = await run(SYSTEMD_ANALYZE!, ['verify', broken], { env: env(), timeout: 60_000 }).catch((err: { stderr: string }) => err);
    expect(verify.stderr).toMatch(/Failed to parse protect system value.*strictly/);
  });
});
