/**
 * Whether the config file shows its secrets to other users: a file others can read that holds a
 * password, client secret or private key written in it (not a `${env:}`/`${file:}` reference
 * or an `enc:` value). Said as a warning at start-up and by `validate`.
 *
 * Does: look at the file's mode (the "other" read bit) and, only then, at its JSON for literal
 *   secrets; return one warning naming the keys (never their values) and the remedy.
 * Never: change the file; fail (an unreadable or odd file is loadConfig's problem, not this).
 * Assumes: the file was loaded successfully just before (start, validate).
 */
import { readFileSync, statSync } from 'node:fs';
import { ENC_PREFIX } from './secrets.js';

/** Keys whose string value is a secret wherever they appear. */
const SECRET_KEYS = new Set(['pass', 'clientSecret', 'privateKey']);
const ONLY_REFERENCES = /^(\$\{(env|file):[^}]*\})+$/;

function literalSecretPaths(value: unknown, path: string, out: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => literalSecretPaths(v, `${path}[${i}]`, out));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (SECRET_KEYS.has(key) && typeof v === 'string' && v !== '' && !v.startsWith(ENC_PREFIX) && !ONLY_REFERENCES.test(v)) out.push(at);
      else literalSecretPaths(v, at, out);
    }
  }
}

export function configFileExposure(path: string): string | undefined {
  let mode: number;
  let parsed: unknown;
  try {
    mode = statSync(path).mode;
    if ((mode & 0o004) === 0) return undefined;
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  const paths: string[] = [];
  literalSecretPaths(parsed, '', paths);
  if (paths.length === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return (
    `${path} is readable by every user (mode ${octal}) and holds plaintext secrets (${paths.join(', ')}): ` +
    `chmod 600 it (or 640 with the relay's group), or move the secrets out with \${file:/run/secrets/...}, \${env:NAME} or enc:`
  );
}
