/**
 * Issue 12 finding 3: one relay per spool. Real processes (the built relay): a second relay on
 * the same spool, with a free port or with the first one's port (EADDRINUSE), exits 1 naming the
 * first one's PID and touches nothing (tmp/ is not cleaned, nothing is quarantined); an offline
 * `queue` command refuses while the relay holds the spool; a lock left by a killed relay is stale
 * and taken over. In-process: a lock from another host or a live process is respected, a
 * reused PID is not the owner.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acquireSpoolLock, SPOOL_LOCK_FILE, SpoolLockedError } from '../../../src/spool/spool-lock.js';
import { BUILT_MAIN, ensureBuilt, REPO_ROOT, startRelayProcess, type RelayProcess } from '../../helpers/relay-process.js';

const run = promisify(execFile);
let dir: string;
const relays: RelayProcess[] = [];
beforeAll(() => ensureBuilt());
afterEach(async () => {
  for (const r of relays.splice(0)) await r.kill('SIGKILL').catch(() => undefined);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function writeConfig(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, name);
  await writeFile(
    path,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0, hostname: 'relay.test' },
      delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox'), waitSeconds: 0, fsync: false },
      http: { enabled: false },
      ...extra,
    }),
  );
  return path;
}

/** Runs the built CLI to its end; never throws for a non-zero exit. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BUILT_MAIN, ...args], { cwd: REPO_ROOT, timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Files a second relay's recovery would remove or quarantine. */
async function plantRecoveryBait(): Promise<void> {
  await writeFile(join(dir, 'spool', 'tmp', 'INFLIGHT1.eml'), 'a message being received');
  await writeFile(join(dir, 'spool', 'queue', 'BROKEN01.json'), '{ not json');
}

async function expectBaitUntouched(): Promise<void> {
  expect(existsSync(join(dir, 'spool', 'tmp', 'INFLIGHT1.eml'))).toBe(true);
  expect(existsSync(join(dir, 'spool', 'queue', 'BROKEN01.json'))).toBe(true);
  expect(await readdir(join(dir, 'spool', 'quarantine'))).toEqual([]);
}

describe('one relay per spool (real processes)', () => {
  it('a second relay on the same spool exits 1 naming the PID and touches nothing, also when its port is taken', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-lock-'));
    const first = await startRelayProcess({ configPath: await writeConfig('first.json') });
    relays.push(first);
    await plantRecoveryBait();

    for (const config of [await writeConfig('second.json'), await writeConfig('same-port.json', { listen: { host: '127.0.0.1', port: first.port, hostname: 'relay.test' } })]) {
      const second = await cli(['start', '--config', config]);
      expect(second.code, second.stderr).toBe(1);
      expect(second.stderr).toContain(`in use by a relay (PID ${first.pid}`);
      expect(second.stderr).toContain('one relay per spool');
      expect(second.stderr).not.toContain('port is already in use');
      await expectBaitUntouched();
    }

    // the first relay still owns its spool and accepts mail
    const client = nodemailer.createTransport({ host: '127.0.0.1', port: first.port, ignoreTLS: true });
    const info = await client.sendMail({ from: 'app@legacy.test', to: 'x@dest.test', subject: 's', text: 't' });
    client.close();
    expect(info.response).toMatch(/^250 /);
    expect(JSON.parse(await readFile(join(dir, 'spool', SPOOL_LOCK_FILE), 'utf8'))).toMatchObject({ pid: first.pid, command: 'relay' });
  });

  it('offline queue commands refuse while a relay holds the spool, and work once it has stopped', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-lock-'));
    const config = await writeConfig('relay.json');
    const relay = await startRelayProcess({ configPath: config });
    relays.push(relay);
    await plantRecoveryBait();
    for (const args of [['list'], ['delete', 'BROKEN01']]) {
      const q = await cli(['queue', ...args, '--config', config]);
      expect(q.code, q.stderr).toBe(1);
      expect(q.stderr).toContain(`PID ${relay.pid}`);
      expect(q.stderr).toContain('nothing was changed');
    }
    await expectBaitUntouched();

    expect(await relay.kill('SIGTERM')).toBe(0);
    expect(existsSync(join(dir, 'spool', SPOOL_LOCK_FILE))).toBe(false);
    const after = await cli(['queue', 'list', '--config', config]);
    expect(after.code, after.stderr).toBe(0);
    expect(existsSync(join(dir, 'spool', SPOOL_LOCK_FILE))).toBe(false);
  });

  it('a lock left by a killed relay is stale: the next relay takes it over and recovers', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-lock-'));
    const config = await writeConfig('relay.json');
    const first = await startRelayProcess({ configPath: config });
    relays.push(first);
    expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    expect(existsSync(join(dir, 'spool', SPOOL_LOCK_FILE))).toBe(true);
    await writeFile(join(dir, 'spool', 'tmp', 'INFLIGHT1.eml'), 'left by the crash');

    const next = await startRelayProcess({ configPath: config });
    relays.push(next);
    expect(next.logs.events('spool.stale-lock-replaced')).toEqual([expect.objectContaining({ pid: first.pid })]);
    expect(next.logs.events('spool.recovered')).toEqual([expect.objectContaining({ removedTmp: 1 })]);
    expect(JSON.parse(await readFile(join(dir, 'spool', SPOOL_LOCK_FILE), 'utf8'))).toMatchObject({ pid: next.pid });
  });
});

describe(acquireSpoolLock.name, () => {
  const lockPath = () => join(dir, 'spool', SPOOL_LOCK_FILE);
  const plant = async (owner: Record<string, unknown>) => {
    await mkdir(join(dir, 'spool'), { recursive: true });
    await writeFile(lockPath(), JSON.stringify({ host: hostname(), bootId: '', procStart: '', command: 'relay', since: '2026-01-01T00:00:00.000Z', ...owner }));
  };

  it('refuses while a live process holds it, and release() frees it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-lock-'));
    const lock = await acquireSpoolLock(join(dir, 'spool'), { command: 'relay', create: true });
    const refused = await acquireSpoolLock(join(dir, 'spool'), { command: 'queue', create: false }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SpoolLockedError);
    expect((refused as Error).message).toContain(`PID ${process.pid}`);
    await lock.release();
    expect(existsSync(lockPath())).toBe(false);
    const again = await acquireSpoolLock(join(dir, 'spool'), { command: 'queue', create: false });
    await again.release();
    expect(await readdir(join(dir, 'spool'))).toEqual([]);
  });

  it('respects a lock written on another host (it cannot check that PID) and says how to clear it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-lock-'));
    await plant({ pid: 4_000_000, host: 'other-pod-7' });
    const refused = await acquireSpoolLock(join(dir, 'spool'), { command: 'relay', create: true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SpoolLockedError);
    expect((refused as Error).message).toContain('on host other-pod-7');
    expect((refused as Error).message).toContain(`remove ${lockPath()}`);
    expect(existsSync(lockPath())).toBe(true);
  });

  it('takes over a lock whose PID now belongs to another process (PID reuse, e.g. PID 1 after a container restart)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-lock-'));
    await plant({ pid: process.pid, procStart: '1' }); // this PID, but not this process's start time
    const lock = await acquireSpoolLock(join(dir, 'spool'), { command: 'relay', create: true });
    expect(lock.replaced).toMatchObject({ pid: process.pid, procStart: '1' });
    await lock.release();
  });

  it('does not create a missing spool directory for queue', async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-lock-'));
    await expect(acquireSpoolLock(join(dir, 'spool'), { command: 'queue', create: false })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(existsSync(join(dir, 'spool'))).toBe(false);
  });
});
