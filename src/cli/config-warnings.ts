/**
 * What `validate` says about a valid config besides "valid": advice (routing that lets
 * unrouted mail reach a route's upstreams; passwords and TLS, config/cleartext.ts) and how it understood keys that take more than one
 * form (auth.authority). Lines are `warning: path: message` or `note: path: message`.
 * Never: changes the exit code (a warning is not an error); prints a secret.
 */
import { describeAuthority, readAuthority } from '../config/authority.js';
import { cleartextAdvice } from '../config/cleartext.js';
import type { Config } from '../config/schema.js';
import { routingWarnings } from '../routing/route.js';

export function configWarnings(config: Config): string[] {
  const lines = routingWarnings(config.routes).map((w) => `warning: ${w.path}: ${w.message}`);
  config.upstreams.forEach((u, i) => {
    if (u.auth.type !== 'oauth2') return;
    const reading = readAuthority(u.auth.authority, u.auth.tenantId);
    if (reading.ok) lines.push(`note: upstreams[${i}].auth.authority: ${describeAuthority(reading)}`);
  });
  for (const a of cleartextAdvice(config)) lines.push(`${a.level}: ${a.path}: ${a.message}`);
  return lines;
}
