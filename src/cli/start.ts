/**
 * `smtp-sidecar start --config FILE`: run the relay until SIGTERM/SIGINT.
 * Exit codes: 0 after a clean stop, 1 when it cannot start (e.g. cannot listen), 2 for an invalid config.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { createApp, type App } from '../app.js';
import type { Logger } from '../core/ports.js';
import { configFileExposure } from '../config/file-exposure.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../ops/logger.js';
import { routeProcessOutputToLogger } from '../ops/process-output.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { loadConfigOrReport } from './load-config.js';
import { CONFIG_WATCH_INTERVAL_MS } from '../core/delays.js';


export const START_HELP = `Usage: smtp-sidecar start [--config FILE] [--pretty] [--watch]

Runs the relay: listens for SMTP (listen.host:listen.port), spools every accepted message
durably and delivers it upstream (or to delivery.outboxDir when no upstream is configured).
SIGTERM/SIGINT stop it cleanly (open DATA transactions may finish, bounded by
listen.shutdownGraceSeconds). SIGHUP reloads the config file (an invalid file is
refused and the running config stays).

Options:
  --config FILE   config file (default: /etc/smtp-sidecar/config.json)
  --pretty        one human line per event instead of JSON lines (as log.format "line")
  --watch         reload when the config file changes (as on SIGHUP)
`;

/**
 * SIGHUP: load and validate the file again; a valid config is swapped in (app.reload logs the
 * `config.changed` audit line), an invalid one is refused and the running config stays.
 */
export function reloadFromFile(path: string, app: App, io: CliIo, logger: Logger): boolean {
  try {
    app.reload(loadConfig(path, { env: io.env }));
    return true;
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    logger.error({ problems }, 'config.reload-refused');
    return false;
  }
}

export async function startCommand(options: { config: string; pretty: boolean; watch?: boolean }, io: CliIo): Promise<number> {
  const config = loadConfigOrReport(options.config, io);
  if (config === undefined) return EXIT.USAGE_OR_CONFIG;
  const logger = createLogger({ level: config.log.level, format: options.pretty ? 'line' : config.log.format });
  const exposure = configFileExposure(options.config);
  if (exposure !== undefined) logger.warn({ config: options.config, detail: exposure }, 'config.readable-secrets');
  // libraries' own console output and Node's warnings go through the logger, not onto stderr
  const restoreOutput = routeProcessOutputToLogger(logger);
  const app = createApp(config, { logger });
  try {
    await app.start();
  } catch (err) {
    logger.fatal({ err: { message: (err as Error).message } }, 'start-failed');
    logger.flush();
    restoreOutput();
    io.stderr(`smtp-sidecar: ${(err as Error).message}\n`);
    await app.stop().catch(() => undefined);
    return EXIT.FAILURE;
  }
  return new Promise<number>((resolveStop) => {
    const resolve = (code: number) => {
      restoreOutput();
      resolveStop(code);
    };
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'signal');
      unwatchFile(options.config);
      app.stop().then(
        () => resolve(EXIT.OK),
        (err: unknown) => {
          logger.error({ err }, 'stop-failed');
          resolve(EXIT.FAILURE);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      if (stopping) return;
      reloadFromFile(options.config, app, io, logger);
    });
    if (options.watch === true) {
      // Polling survives editors that replace the file (rename) where fs.watch loses track of it.
      watchFile(options.config, { interval: CONFIG_WATCH_INTERVAL_MS, persistent: false }, (now, before) => {
        if (!stopping && now.mtimeMs !== before.mtimeMs) reloadFromFile(options.config, app, io, logger);
      });
    }
  });
}
