/**
 * Where the local relay listens, read from its config file for the commands that talk to a
 * running relay from the outside (`sendmail`, `health`).
 *
 * Does: read only the `listen`, `http` and `delivery.waitSeconds` keys (references in them
 *   resolved, SMTP_SIDECAR_LISTEN__* / HTTP__* / DELIVERY__* variables applied, validated by
 *   the one schema with its defaults); map a wildcard listen address
 *   (0.0.0.0, ::) to the loopback address that reaches it; fall back to the built-in defaults
 *   when the file does not exist or cannot be read by this user, and say so in `source`.
 * Never: read or resolve the rest of the file (upstream secrets, `${file:}` references only
 *   the relay's user can read, `enc:` values that need the key), so that any local user, cron
 *   job or container healthcheck can use it.
 * Assumes: a config that names no file uses the built-in defaults, as the relay itself does.
 */
import { readFileSync } from 'node:fs';
import { applyEnvironment } from '../config/env-overlay.js';
import { ConfigError, parseConfig } from '../config/load.js';
import { configJsonSchema } from '../config/schema-paths.js';

export interface LocalAddresses {
  readonly smtp: { readonly host: string; readonly port: number };
  readonly http: { readonly enabled: boolean; readonly host: string; readonly port: number };
  readonly waitSeconds: number;
  /** where the addresses came from, for messages ("listen.host/listen.port in FILE", "the built-in default ...") */
  readonly source: string;
}

export type LocalAddressesResult = { readonly ok: true; readonly addresses: LocalAddresses } | { readonly ok: false; readonly problems: readonly string[] };

/** The address a client uses to reach a listener bound to `host`. */
export function loopbackFor(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host;
}

/** `host:port`, with brackets around an IPv6 address. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function readLocalAddresses(
  path: string,
  options: { readonly env: NodeJS.ProcessEnv; readonly readFile?: (path: string) => string },
): LocalAddressesResult {
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let raw: Record<string, unknown> = {};
  let source = `${path}`;
  try {
    const parsed: unknown = JSON.parse(readFile(path));
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) raw = parsed as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM') {
      source = `the built-in defaults (${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${code}`})`;
    } else {
      return { ok: false, problems: [`${path}: not valid JSON (${(err as Error).message})`] };
    }
  }
  const delivery = raw['delivery'];
  const waitSeconds = delivery !== null && typeof delivery === 'object' ? (delivery as Record<string, unknown>)['waitSeconds'] : undefined;
  try {
    // SMTP_SIDECAR_LISTEN__PORT and the like apply here as they do for the relay
    const overlay = applyEnvironment({ listen: raw['listen'], http: raw['http'], delivery: { waitSeconds } }, options.env, configJsonSchema(), {
      sections: ['listen', 'http', 'delivery'],
    });
    const config = parseConfig(overlay.value, { env: options.env }, overlay);
    return {
      ok: true,
      addresses: {
        smtp: { host: loopbackFor(config.listen.host), port: config.listen.port },
        http: { enabled: config.http.enabled, host: loopbackFor(config.http.host), port: config.http.port },
        waitSeconds: config.delivery.waitSeconds,
        source,
      },
    };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, problems: err.problems.map((p) => `${path}: ${p}`) };
    throw err;
  }
}
