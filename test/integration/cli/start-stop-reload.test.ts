/**
 * The built relay as a child process: start, reload on SIGHUP, graceful SIGTERM, and the
 * start-up errors an admin meets (bad config: exit 2; port taken: exit 1 with the remedy).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openTransaction } from '../../helpers/smtp-client.js';
import { until } from '../../helpers/wait.js';

const MAIN = join(process.cwd(), 'dist', 'main.js');
let dir: string;
let child: ChildProcess | undefined;
let blocker: Server | undefined;

beforeAll(() => {
  // the suite runs after `npm run build` (pretest); build if someone runs this file alone
  if (spawnSync('test', ['-f', MAIN]).status !== 0) spawnSync('npm', ['run', 'build'], { stdio: 'ignore' });
});

afterEach(async () => {
  if (child && child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  child = undefined;
  blocker?.close();
  blocker = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

function config(extra: Record<string, unknown> = {}) {
  return {
    listen: { host: '127.0.0.1', port: 0, shutdownGraceSeconds: 2 },
    delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox'), waitSeconds: 0 },
    http: { enabled: false },
    ...extra,
  };
}

interface Running {
  lines: () => Record<string, unknown>[];
  waitFor: (msg: string, pred?: (r: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function start(configPath: string, extraArgs: string[] = []): Running {
  const proc = spawn(process.execPath, [MAIN, 'start', '--config', configPath, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let out = '';
  const listeners: (() => void)[] = [];
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const l of listeners.splice(0)) l();
  });
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    lines,
    exited: new Promise((resolve) => proc.once('exit', (code) => resolve(code))),
    waitFor: (msg, pred = () => true) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${msg} line; got:\n${out}`)), 10_000);
        const check = () => {
          const hit = lines().find((r) => r.msg === msg && pred(r));
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else listeners.push(check);
        };
        check();
      }),
  };
}

describe('smtp-sidecar start', () => {
  it('says where mail goes, serves, reloads on SIGHUP, and exits 0 on SIGTERM', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecar-cli-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify(config()));
    const relay = start(path);
    const listening = await relay.waitFor('listening');
    expect(relay.lines()[0]).toMatchObject({ msg: 'upstreams.outbox', outboxDir: expect.stringMatching(/outbox/) });

    const c = await openTransaction(listening.port as number, 'a@legacy.test', ['b@dest.test']);
    c.write('Subject: via child\r\n\r\nhello\r\n.\r\n');
    expect(await c.next()).toMatch(/^250 2\.0\.0 Ok: (queued|delivered) as /);
    c.close();

    // a valid change is applied and audited; a secret appears as a changed key, never a value
    const upstream = (pass: string) => [{ name: 'u', host: '127.0.0.1', port: 2, security: 'none', auth: { type: 'login', user: 'relay', pass, allowPlaintext: true } }];
    await writeFile(path, JSON.stringify(config({ message: { globalFrom: 'noreply@corp.test' }, upstreams: upstream('OldPa55-111') })));
    process.kill(child!.pid!, 'SIGHUP');
    await relay.waitFor('config.changed');
    await writeFile(path, JSON.stringify(config({ message: { globalFrom: 'noreply@corp.test' }, limits: { maxAttachments: 3 }, upstreams: upstream('NewPa55-222') })));
    process.kill(child!.pid!, 'SIGHUP');
    const changed = await relay.waitFor('config.changed', (r) => (r.changed as string[]).includes('limits.maxAttachments'));
    expect(changed.changed).toEqual(['limits.maxAttachments', 'upstreams[0].auth.pass']);

    // an invalid file is refused and the running config stays
    await writeFile(path, JSON.stringify({ listen: { port: 'nope' } }));
    process.kill(child!.pid!, 'SIGHUP');
    const refused = await relay.waitFor('config.reload-refused');
    expect(refused.problems).toEqual(['listen.port: Invalid input: expected number, received string']);
    const c2 = await openTransaction(listening.port as number, 'a@legacy.test', ['b@dest.test']);
    c2.write('Subject: still serving\r\n\r\nhello\r\n.\r\n');
    expect(await c2.next()).toMatch(/^250 /);
    c2.close();
    // the message after the reload went out under the new policy (its log line may trail the reply)
    const received = await relay.waitFor('received', (r) => r.from === 'noreply@corp.test');
    expect(received.policies).toContain('global-from');

    const all = JSON.stringify(relay.lines());
    expect(all).not.toContain('OldPa55-111');
    expect(all).not.toContain('NewPa55-222');

    process.kill(child!.pid!, 'SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(relay.lines().at(-1)!.msg).toBe('stopped');
  });

  it('with --watch, reloads when the file changes (no signal needed)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecar-cli-'));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify(config()));
    const relay = start(path, ['--watch']);
    await relay.waitFor('listening');
    await writeFile(path, JSON.stringify(config({ limits: { maxAttachments: 7 } })));
    // The watcher compares the file's mtime once a second, from a first look it takes just after
    // `listening`. Move the mtime on at each check until it reports the change, so that neither a
    // coarse mtime nor a first look that races the write can hide it (bounded: 10 s).
    let bump = 0;
    const changed = await until(
      'the watcher reports the change',
      async () => {
        const at = new Date(Date.now() + ++bump * 1000);
        await utimes(path, at, at);
        return relay.lines().find((r) => r.msg === 'config.changed');
      },
      10_000,
      1100,
    );
    expect(changed.changed).toEqual(['limits.maxAttachments']);
    process.kill(child!.pid!, 'SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('refuses an invalid config with every problem and exit code 2', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecar-cli-'));
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ listen: { port: 70000, extra: true } }));
    const r = spawnSync(process.execPath, [MAIN, 'start', '--config', path], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('listen.port: Too big: expected number to be <=65535');
    expect(r.stderr).toContain('listen.extra: unknown key');
  });

  it('exits 1 with the remedy when the port is taken', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecar-cli-'));
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify(config({ listen: { host: '127.0.0.1', port } })));
    const r = spawnSync(process.execPath, [MAIN, 'start', '--config', path], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
  });
});

/** Why the privileged-port test cannot run here, or undefined when it can. */
function privilegedPortSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to drop to an unprivileged user with setpriv';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  const start = spawnSync('cat', ['/proc/sys/net/ipv4/ip_unprivileged_port_start'], { encoding: 'utf8' });
  if (start.status === 0 && Number(start.stdout.trim()) <= 25) return 'this kernel lets unprivileged users bind port 25 (ip_unprivileged_port_start <= 25)';
  return undefined;
}

describe('privileged port', () => {
  const skip = privilegedPortSkipReason();
  if (skip !== undefined) console.warn(`skipping the privileged-port test: ${skip}`);
  it.skipIf(skip !== undefined)('an unprivileged user binding port 25 gets exit 1 and the remedy', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecar-cli-'));
    spawnSync('chmod', ['0777', dir]);
    // The checkout may sit in a private directory (root's home is 0700), where nobody cannot load
    // dist/main.js: give it a copy of the built relay it can read. Hard links (same file system)
    // make that instant; a plain copy is the fallback.
    const app = join(dir, 'app');
    await mkdir(app, { mode: 0o755 });
    for (const part of ['package.json', 'dist', 'node_modules']) {
      const from = join(process.cwd(), part);
      if (spawnSync('cp', ['-al', from, app]).status !== 0) expect(spawnSync('cp', ['-a', from, app]).status).toBe(0);
    }
    const path = join(dir, 'c25.json');
    await writeFile(path, JSON.stringify(config({ listen: { host: '127.0.0.1', port: 25 } })));
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(app, 'dist', 'main.js'), 'start', '--config', path], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('cannot listen on 127.0.0.1:25: permission denied');
    expect(r.stderr).toContain('CAP_NET_BIND_SERVICE');
    expect(r.stderr).toContain('choose another port with listen.port');
  });
});

describe('smtp-sidecar encrypt and validate', () => {
  it('encrypts a secret from stdin that the relay can then use', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sidecar-cli-'));
    const env = { ...process.env, SMTP_SIDECAR_KEY: 'a test key that is long enough' };
    const enc = spawnSync(process.execPath, [MAIN, 'encrypt'], { input: 'Pa55word\n', env, encoding: 'utf8' });
    expect(enc.status).toBe(0);
    expect(enc.stdout).toMatch(/^enc:[A-Za-z0-9+/=]+\n$/);
    expect(enc.stdout).not.toContain('Pa55word');
    const path = join(dir, 'c.json');
    await writeFile(path, JSON.stringify(config({ upstreams: [{ name: 'u', host: '127.0.0.1', port: 2, security: 'none', auth: { type: 'login', user: 'x', pass: enc.stdout.trim(), allowPlaintext: true } }] })));
    const ok = spawnSync(process.execPath, [MAIN, 'validate', '--config', path], { env, encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('valid');
    expect(ok.stdout + ok.stderr).not.toContain('Pa55word');
    const wrong = spawnSync(process.execPath, [MAIN, 'validate', '--config', path], { env: { ...env, SMTP_SIDECAR_KEY: 'some other key, also long' }, encoding: 'utf8' });
    expect(wrong.status).toBe(2);
    expect(wrong.stdout).toContain('upstreams[0].auth.pass: cannot decrypt: wrong SMTP_SIDECAR_KEY or a tampered value');
    expect(await readFile(path, 'utf8')).not.toContain('Pa55word');
  });

  it('prints help for every command and exits 2 on an unknown one', () => {
    for (const cmd of ['start', 'validate', 'encrypt']) {
      const r = spawnSync(process.execPath, [MAIN, cmd, '--help'], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Usage: smtp-sidecar ${cmd}`);
    }
    const bad = spawnSync(process.execPath, [MAIN, 'frobnicate'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown command "frobnicate"');
  });
});
