/**
 * `smtp-sidecar health [--config FILE]`: is the local relay alive? For container healthchecks
 * (the Docker image's HEALTHCHECK) and monitoring scripts.
 *
 * Does: read where the relay listens from its config (local-addresses.ts: only listen/http);
 *   with the HTTP server enabled, GET /healthz on http.host:http.port (a wildcard address is
 *   asked on loopback); with it disabled, connect to the SMTP port and expect a 220 greeting.
 *   Print one line saying what was checked and the answer.
 * Never: wait more than a few seconds; need the relay's secrets.
 * Assumes: the relay runs on this host (or in this container).
 * Exit codes: 0 healthy, 1 not healthy or not reachable, 2 usage or config error.
 */
import net from 'node:net';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { hostPort, readLocalAddresses } from './local-addresses.js';
import { HEALTH_CHECK_TIMEOUT_MS } from '../core/delays.js';

export const HEALTH_HELP = `Usage: smtp-sidecar health [--config FILE]

Checks that the relay configured in FILE runs: GET /healthz on http.host:http.port, or, when
http.enabled is false, the SMTP greeting on listen.host:listen.port (0.0.0.0 and :: are
reached on loopback). Reads only the listen and http keys, so it needs none of the secrets.

Options:
  --config FILE   config file (default: /etc/smtp-sidecar/config.json; built-in defaults when it does not exist)

Exit codes: 0 healthy, 1 not healthy or not reachable, 2 invalid config.
`;

function smtpGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no greeting within ${HEALTH_CHECK_TIMEOUT_MS / 1000} s`));
    }, HEALTH_CHECK_TIMEOUT_MS);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const lf = text.indexOf('\n');
      if (lf === -1) return;
      clearTimeout(timer);
      socket.end('QUIT\r\n');
      resolve(text.slice(0, lf).replace(/\r$/, ''));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(err.code ?? err.message));
    });
  });
}

export async function healthCommand(options: { readonly config: string }, io: CliIo): Promise<number> {
  const result = readLocalAddresses(options.config, { env: io.env });
  if (!result.ok) {
    io.stderr(`smtp-sidecar health: the config is not valid:\n${result.problems.map((p) => `  ${p}\n`).join('')}`);
    return EXIT.USAGE_OR_CONFIG;
  }
  const { http, smtp, source } = result.addresses;
  if (http.enabled) {
    const url = `http://${hostPort(http.host, http.port)}/healthz`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(HEALTH_CHECK_TIMEOUT_MS) });
      const body = (await response.text()).trim().slice(0, 200);
      if (response.ok) {
        io.stdout(`healthy: ${url} answered ${response.status} ${body}\n`);
        return EXIT.OK;
      }
      io.stdout(`not healthy: ${url} answered ${response.status} ${body}\n`);
      return EXIT.FAILURE;
    } catch (err) {
      const cause = (err as Error & { cause?: NodeJS.ErrnoException }).cause;
      io.stdout(`not healthy: ${url} (from ${source}) does not answer (${cause?.code ?? (err as Error).message}); is the relay running?\n`);
      return EXIT.FAILURE;
    }
  }
  const where = hostPort(smtp.host, smtp.port);
  try {
    const greeting = await smtpGreeting(smtp.host, smtp.port);
    const healthy = greeting.startsWith('220');
    io.stdout(`${healthy ? 'healthy' : 'not healthy'}: SMTP ${where} greeted with "${greeting}" (http.enabled is false)\n`);
    return healthy ? EXIT.OK : EXIT.FAILURE;
  } catch (err) {
    io.stdout(`not healthy: SMTP ${where} (from ${source}) does not answer (${(err as Error).message}); is the relay running?\n`);
    return EXIT.FAILURE;
  }
}
