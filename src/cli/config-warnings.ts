/**
 * What `validate` says about a valid config besides "valid": advice (routing that lets
 * unrouted mail reach a route's upstreams) and how it understood keys that take more than one
 * form (auth.authority). Lines are `warning: path: message` or `note: path: message`.
 * Never: changes the exit code (a warning is not an error); prints a secret.
 */
import { describeAuthority, readAuthority } from '../config/authority.js';
import type { Config } from '../config/schema.js';
import { routingWarnings } from '../routing/route.js';

export function configWarnings(config: Config): string[] {
  const lines = routingWarnings(config.routes).map((w) => `warning: ${w.path}: ${w.message}`);
  config.upstreams.forEach((u, i) => {
    if (u.auth.type !== 'oauth2') return;
    const reading = readAuthority(u.auth.authority, u.auth.tenantId);
    if (reading.ok) lines.push(`note: upstreams[${i}].auth.authority: ${describeAuthority(reading)}`);
  });
  return lines;
}
