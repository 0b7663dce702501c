/**
 * Runs the BUILT relay (`node dist/main.js start --config FILE`) as a child process, for tests
 * that crash or kill it. `npm run build` must have run first (the `pretest` script does).
 *
 * Does: write the config to a file, spawn the relay, collect its JSON log lines from stdout,
 *   resolve with the SMTP port once it logs `listening`; kill it by PID (SIGKILL or SIGTERM).
 * Never: kill anything but the child it started; leave it running after `kill()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BUILT_MAIN = join(ROOT, 'dist', 'main.js');

export interface RelayChild {
  readonly pid: number;
  readonly port: number;
  readonly lines: string[];
  /** SIGKILL (default) or SIGTERM by PID; resolves once the process has exited */
  kill(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
}

export async function startRelayChild(configPath: string, config: Record<string, unknown>, timeoutMs = 15_000): Promise<RelayChild> {
  if (!existsSync(BUILT_MAIN)) throw new Error(`${BUILT_MAIN} is missing: run npm run build first`);
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn(process.execPath, [BUILT_MAIN, 'start', '--config', configPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('relay child did not start');
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let buffered = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay child did not listen within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
    const onLine = (line: string): void => {
      lines.push(line);
      try {
        const record = JSON.parse(line) as { msg?: string; port?: number };
        if (record.msg === 'listening' && typeof record.port === 'number') {
          clearTimeout(timer);
          resolve(record.port);
        }
      } catch {
        // not JSON (a stack trace): kept in lines
      }
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let at;
      while ((at = buffered.indexOf('\n')) !== -1) {
        onLine(buffered.slice(0, at));
        buffered = buffered.slice(at + 1);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay child exited (${code}) before listening:\n${lines.join('\n')}`));
    });
  });
  return {
    pid,
    port,
    lines,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal);
      await exited;
    },
  };
}
