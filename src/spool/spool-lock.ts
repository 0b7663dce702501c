/**
 * One owner per spool: an exclusive lock file `<spoolDir>/owner.lock`, taken before the spool
 * is recovered or cleaned, by the relay (for its whole life) and by `queue` when it works on
 * the spool files directly (for one command).
 *
 * Does: create the lock atomically with its full contents (write a private temp file, then
 *   link(2) it to the lock name: link fails with EEXIST like O_EXCL, and no reader ever sees a
 *   half-written lock); when the name exists, decide whether its owner still lives: same host
 *   name and boot id, the PID exists (kill 0; EPERM also means "exists") and that PID's start
 *   time in /proc is the recorded one (a reused PID, e.g. PID 1 after a container restart, is
 *   not the owner). A dead owner's lock is stale: it is taken over (renamed aside and checked
 *   to be the very file judged stale, so two starters cannot both take it). release() removes
 *   the lock only while it is still ours.
 * Never: take over a lock whose owner may live, or one written on another host (a spool on a
 *   shared volume: the PID cannot be checked from here; the admin removes the file); touch
 *   anything in the spool but the lock and its own temp file.
 * Assumes: Linux /proc for start times and the boot id (elsewhere a live PID counts as the
 *   owner); every owner runs in the same PID namespace, or on a different host name (containers
 *   sharing one spool volume have different host names unless they share a pod's).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const SPOOL_LOCK_FILE = 'owner.lock';

export interface SpoolLockOwner {
  readonly pid: number;
  readonly host: string;
  /** /proc/sys/kernel/random/boot_id, '' where unknown */
  readonly bootId: string;
  /** field 22 of /proc/<pid>/stat (start time in clock ticks since boot), '' where unknown */
  readonly procStart: string;
  /** what holds it: 'relay' or 'queue' */
  readonly command: string;
  /** ISO 8601 */
  readonly since: string;
}

export class SpoolLockedError extends Error {
  constructor(
    readonly lockPath: string,
    readonly owner: SpoolLockOwner,
  ) {
    const where = owner.host === hostname() ? '' : ` on host ${owner.host}`;
    super(
      `the spool ${lockPath.slice(0, -SPOOL_LOCK_FILE.length - 1)} is in use by ${owner.command === 'relay' ? 'a relay' : `smtp-sidecar ${owner.command}`} (PID ${owner.pid}${where}, since ${owner.since}); ` +
        `one relay per spool: stop that process or give this one another delivery.spoolDir` +
        (where === '' ? '' : `; if that process is gone, remove ${lockPath}`),
    );
    this.name = 'SpoolLockedError';
  }
}

export interface SpoolLock {
  readonly path: string;
  /** the stale lock this one replaced, if any (for a log line) */
  readonly replaced: SpoolLockOwner | undefined;
  release(): Promise<void>;
}

function readProc(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Start time of a process from /proc/<pid>/stat (field 22), '' when it cannot be read. */
function procStartOf(pid: number): string {
  const stat = readProc(`/proc/${pid}/stat`);
  // the command name (field 2) is in parentheses and may hold spaces: count from the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? '';
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(text: string): SpoolLockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<SpoolLockOwner>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0 || typeof v.host !== 'string') return undefined;
    return { pid: v.pid, host: v.host, bootId: String(v.bootId ?? ''), procStart: String(v.procStart ?? ''), command: String(v.command ?? 'relay'), since: String(v.since ?? '?') };
  } catch {
    return undefined;
  }
}

/** Whether the lock's owner may still be running ('unknown': another host, cannot tell). */
export function ownerState(owner: SpoolLockOwner): 'alive' | 'dead' | 'unknown' {
  if (owner.host !== hostname()) return 'unknown';
  const bootId = readProc('/proc/sys/kernel/random/boot_id');
  if (owner.bootId !== '' && bootId !== '' && owner.bootId !== bootId) return 'dead';
  if (!pidExists(owner.pid)) return 'dead';
  const start = procStartOf(owner.pid);
  if (owner.procStart !== '' && start !== '' && owner.procStart !== start) return 'dead';
  return 'alive';
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Takes the spool's lock or throws SpoolLockedError naming the owner. With `create`, makes the
 * spool directory (0750) when it does not exist yet (the relay); without, a missing directory
 * is an ENOENT error (`queue` on a spool no relay ever used).
 */
export async function acquireSpoolLock(spoolDir: string, options: { readonly command: string; readonly create: boolean; readonly now?: () => Date }): Promise<SpoolLock> {
  if (options.create) await mkdir(spoolDir, { recursive: true, mode: 0o750 });
  const path = join(spoolDir, SPOOL_LOCK_FILE);
  const me: SpoolLockOwner = {
    pid: process.pid,
    host: hostname(),
    bootId: readProc('/proc/sys/kernel/random/boot_id'),
    procStart: procStartOf(process.pid),
    command: options.command,
    since: (options.now?.() ?? new Date()).toISOString(),
  };
  const mine = `${JSON.stringify(me)}\n`;
  const tag = `${process.pid}.${randomBytes(6).toString('hex')}`;
  const tmp = `${path}.${tag}.tmp`;
  await writeFile(tmp, mine, { flag: 'wx', mode: 0o640 });
  let replaced: SpoolLockOwner | undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, path);
        break;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST' || attempt >= 5) throw err;
      }
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue; // released meanwhile: try again
        throw err;
      }
      const owner = parseOwner(text);
      if (owner !== undefined && ownerState(owner) !== 'dead') throw new SpoolLockedError(path, owner);
      // Stale (or unreadable garbage): move it aside, and keep it only if it is what we judged.
      const aside = `${path}.${tag}.stale`;
      try {
        await rename(path, aside);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw err;
      }
      if ((await readFile(aside, 'utf8')) !== text) {
        // another starter replaced it in between: put theirs back and judge again
        await link(aside, path).catch(() => undefined);
        await unlink(aside);
        continue;
      }
      await unlink(aside);
      replaced = owner;
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  let released = false;
  return {
    path,
    replaced,
    async release() {
      if (released) return;
      released = true;
      try {
        if ((await readFile(path, 'utf8')) === mine) await unlink(path);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    },
  };
}
