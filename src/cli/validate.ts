/**
 * `smtp-sidecar validate [--config F] [--connect]`: check a config (and, with --connect, each upstream).
 * Exit codes: 0 valid (and every upstream passed), 1 an upstream check failed, 2 invalid config.
 */
import { configFileExposure } from '../config/file-exposure.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { configWarnings } from './config-warnings.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const VALIDATE_HELP = `Usage: smtp-sidecar validate [--config FILE] [--connect]

Checks the config file and prints every problem as "path: message" (exit 2 when invalid).
With --connect, also connects to each upstream in order (connect, greeting, EHLO, TLS,
AUTH or OAuth2 token (without auth: MAIL FROM:<> then RSET, to catch a server that demands
AUTH), QUIT) and prints one line per step (exit 1 if any upstream fails).
`;

export async function validateCommand(
  options: { config: string; connect: boolean },
  io: CliIo,
  connectCheck?: (config: ReturnType<typeof loadConfig>, io: CliIo) => Promise<boolean>,
): Promise<number> {
  let config;
  try {
    config = loadConfig(options.config, { env: io.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) io.stdout(`${p}\n`);
      io.stderr(`${options.config}: ${err.problems.length} problem(s)\n`);
      return EXIT.USAGE_OR_CONFIG;
    }
    throw err;
  }
  const upstreams = config.upstreams.length === 0 ? 'none (delivering to the outbox directory)' : config.upstreams.map((u) => u.name).join(', ');
  io.stdout(`${options.config}: valid (listen ${config.listen.host}:${config.listen.port}; upstreams: ${upstreams})\n`);
  for (const line of configWarnings(config)) io.stdout(`${line}\n`);
  const exposure = configFileExposure(options.config);
  if (exposure !== undefined) io.stdout(`warning: ${exposure}\n`);
  if (!options.connect) return EXIT.OK;
  if (connectCheck === undefined) {
    io.stderr('validate --connect is not available in this build\n');
    return EXIT.FAILURE;
  }
  return (await connectCheck(config, io)) ? EXIT.OK : EXIT.FAILURE;
}
