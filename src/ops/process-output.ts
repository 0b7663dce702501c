/**
 * Routes what libraries print on their own into the relay's logger, so stdout stays one JSON
 * object (or one `line` format line) per line and stderr stays empty while the relay runs.
 *
 * Does: replace console.log/info/debug/warn/error with functions that log one `console` event
 *   (the text formatted as console would, `source: 'console'`) at the matching level; replace
 *   Node's default 'warning' printer (which writes "(node:123) Warning: ..." to stderr) with one
 *   `process.warning` event. Known case: nodemailer calls console.warn("Failed to resolve IPv6
 *   addresses with current network") when DNS returns only addresses of a family the host has
 *   no route for; that text used to land on stderr among the JSON lines.
 * Never: run outside the `start` command (it changes process-wide state; tests and the other
 *   commands keep the real console); swallow a line (everything still reaches the log).
 * Assumes: called once, right after the logger exists; the returned function restores the
 *   console and the warning listeners (used when start returns).
 */
import { format } from 'node:util';
import type { Logger } from '../core/ports.js';

type ConsoleMethod = 'log' | 'info' | 'debug' | 'warn' | 'error';
const LEVEL: Readonly<Record<ConsoleMethod, 'info' | 'debug' | 'warn' | 'error'>> = { log: 'info', info: 'info', debug: 'debug', warn: 'warn', error: 'error' };

export function routeProcessOutputToLogger(logger: Logger): () => void {
  const saved = new Map<ConsoleMethod, (...args: unknown[]) => void>();
  for (const method of Object.keys(LEVEL) as ConsoleMethod[]) {
    saved.set(method, console[method]);
    console[method] = (...args: unknown[]) => logger[LEVEL[method]]({ source: 'console', text: format(...args) }, 'console');
  }
  const previousWarningListeners = process.listeners('warning');
  process.removeAllListeners('warning');
  const onWarning = (warning: Error & { code?: string }) =>
    logger.warn({ source: 'process', name: warning.name, ...(warning.code !== undefined ? { code: warning.code } : {}), text: warning.message }, 'process.warning');
  process.on('warning', onWarning);
  return () => {
    for (const [method, original] of saved) console[method] = original;
    process.off('warning', onWarning);
    for (const listener of previousWarningListeners) process.on('warning', listener);
  };
}
