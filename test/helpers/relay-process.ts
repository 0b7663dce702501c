/**
 * Runs the BUILT relay (`node dist/main.js start --config FILE`) as a child process, for tests
 * that must kill it for real (SIGKILL), start it again on the same spool, or measure its own
 * process (RSS).
 *
 * Does: write the config file when given one, spawn the child, collect its JSON log lines from
 *   stdout (`logs`, same API as the in-process relay helper), resolve once the `listening` line
 *   gives the SMTP port, and kill it by its PID only.
 * Never: kill anything it did not start; wait without a bound (start and exit are timed).
 * Assumes: `npm run build` has produced dist/main.js (`ensureBuilt()` builds it when missing).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { captureLogs, type LogCapture } from './relay.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILT_MAIN = join(REPO_ROOT, 'dist', 'main.js');

export interface RelayProcess {
  readonly pid: number;
  /** the SMTP port from the `listening` log line */
  readonly port: number;
  /** JSON log lines from stdout */
  readonly logs: LogCapture;
  /** stdout lines that were not JSON, and all of stderr */
  readonly otherOutput: string[];
  /** resolves with the exit code (or the signal name) when the child has exited */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** Sends `signal` (default SIGTERM) to this child's PID and waits (bounded) for it to exit. */
  kill(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | NodeJS.Signals>;
}

export interface RelayProcessOptions {
  readonly configPath: string;
  /** written (as JSON) to configPath before the start; without it the file must exist */
  readonly config?: Record<string, unknown>;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** how long to wait for the `listening` line (default 15 s) */
  readonly startTimeoutMs?: number;
}

/** Builds dist/ (npm run build) when dist/main.js does not exist yet. */
export async function ensureBuilt(timeoutMs = 120_000): Promise<void> {
  if (existsSync(BUILT_MAIN)) return;
  await promisify(execFile)('npm', ['run', 'build'], { cwd: REPO_ROOT, timeout: timeoutMs });
  if (!existsSync(BUILT_MAIN)) throw new Error(`npm run build did not produce ${BUILT_MAIN}`);
}

export async function startRelayProcess(options: RelayProcessOptions): Promise<RelayProcess> {
  if (!existsSync(BUILT_MAIN)) throw new Error(`${BUILT_MAIN} is missing: run npm run build first`);
  if (options.config !== undefined) await writeFile(options.configPath, JSON.stringify(options.config, null, 2));
  const child: ChildProcess = spawn(process.execPath, [BUILT_MAIN, 'start', '--config', options.configPath], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('relay child process did not start');
  const logs = captureLogs();
  const otherOutput: string[] = [];
  const exited = new Promise<number | NodeJS.Signals>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(signal ?? code ?? -1));
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      JSON.parse(line);
      logs.write(line);
    } catch {
      otherOutput.push(line);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => otherOutput.push(line));

  let alive = true;
  void exited.then(() => (alive = false));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | NodeJS.Signals> => {
    if (alive) {
      try {
        process.kill(pid, signal); // by PID: only the child this helper started
      } catch {
        // already gone
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`relay child ${pid} did not exit within ${timeoutMs} ms after ${signal}`)), timeoutMs);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const listening = await Promise.race([
    logs.waitFor('listening', () => true, startTimeoutMs),
    exited.then((how) => {
      throw new Error(`relay child exited (${String(how)}) before listening:\n${otherOutput.join('\n')}`);
    }),
  ]).catch(async (err: unknown) => {
    await kill('SIGKILL').catch(() => undefined);
    throw err;
  });
  const port = listening['port'];
  if (typeof port !== 'number') throw new Error('the listening line carries no port');
  return { pid, port, logs, otherOutput, exited, kill };
}
