/** Loads the config for a command; an invalid one is reported on stderr (every problem) and yields undefined (exit 2). */
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { CliIo } from './io.js';

export function loadConfigOrReport(path: string, io: CliIo): Config | undefined {
  try {
    return loadConfig(path, { env: io.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      // a missing file is one problem that already names the file and says what to do
      const missing = err.problems.length === 1 && err.problems[0]!.startsWith(`${path}: there is no config file`);
      io.stderr(missing ? `smtp-sidecar: ${err.problems[0]}\n` : `smtp-sidecar: ${path} is not valid:\n${err.problems.map((p) => `  ${p}\n`).join('')}`);
      return undefined;
    }
    throw err;
  }
}
