/** Loads the config for a command; an invalid one is reported on stderr (every problem) and yields undefined (exit 2). */
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { CliIo } from './io.js';

export function loadConfigOrReport(path: string, io: CliIo): Config | undefined {
  try {
    return loadConfig(path, { env: io.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`smtp-sidecar: ${path} is not valid:\n${err.problems.map((p) => `  ${p}\n`).join('')}`);
      return undefined;
    }
    throw err;
  }
}
