/** Shared by the CLI integration tests: a CliIo that captures what a command prints. */
import { Readable } from 'node:stream';
import type { CliIo } from '../../../src/cli/io.js';

export interface CapturedIo extends CliIo {
  /** everything written to stdout so far */
  out(): string;
  /** everything written to stderr so far */
  err(): string;
}

export function captureIo(env: NodeJS.ProcessEnv = {}): CapturedIo {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout: (text) => void stdout.push(text),
    stderr: (text) => void stderr.push(text),
    env,
    stdin: Readable.from([]),
    out: () => stdout.join(''),
    err: () => stderr.join(''),
  };
}
