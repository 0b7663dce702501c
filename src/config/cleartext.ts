/**
 * What a config says about passwords and TLS, for the start-up log and `validate`: which
 * basic-auth upstreams get STARTTLS required in effect, and which may send a password in clear
 * because auth.allowPlaintext is set.
 *
 * Does: derive advice from a validated config (pure).
 * Never: name a secret (paths and upstream names only).
 * Assumes: the schema already refused security "none" with login/plain unless allowPlaintext.
 */
import type { Config } from './schema.js';

export interface CleartextAdvice {
  readonly level: 'warning' | 'note';
  readonly upstream: string;
  /** config path, e.g. upstreams[0].auth.allowPlaintext */
  readonly path: string;
  readonly message: string;
}

export function cleartextAdvice(config: Config): CleartextAdvice[] {
  const advice: CleartextAdvice[] = [];
  config.upstreams.forEach((u, i) => {
    if (u.protocol !== 'smtp' || (u.auth.type !== 'login' && u.auth.type !== 'plain')) return;
    if (u.auth.allowPlaintext && u.security !== 'tls' && u.security !== 'starttls-required') {
      advice.push({
        level: 'warning',
        upstream: u.name,
        path: `upstreams[${i}].auth.allowPlaintext`,
        message: `the ${u.auth.type} password for upstream "${u.name}" may be sent in clear (security "${u.security}"${u.security === 'starttls' ? ' and a server that offers no STARTTLS' : ''}): anyone on the path can read it`,
      });
    } else if (u.security === 'starttls') {
      advice.push({
        level: 'note',
        upstream: u.name,
        path: `upstreams[${i}].security`,
        message: `"starttls" with auth.type "${u.auth.type}" works as "starttls-required": the password is only sent after STARTTLS, and a server that offers none is refused (auth.allowPlaintext: true would allow cleartext)`,
      });
    }
  });
  return advice;
}
