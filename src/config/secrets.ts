/**
 * `enc:` secret values: AES-256-GCM with a key from SMTP_SIDECAR_KEY or the file named by
 * SMTP_SIDECAR_KEY_FILE, so a config file can be shared without exposing its secrets.
 *
 * Format: `enc:` + base64(iv[12] | tag[16] | ciphertext). The key string (any length, e.g. the
 * output of `openssl rand -base64 32`) is stretched with scrypt into the 256-bit AES key.
 * Does: encrypt and decrypt one value. Never: log or return a secret in an error text.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const ENC_PREFIX = 'enc:';
const SALT = 'smtp-sidecar/enc/v1';

export class SecretKeyError extends Error {}

/** Reads the key from the environment; `undefined` when neither variable is set. */
export function keyFromEnvironment(env: NodeJS.ProcessEnv): Buffer | undefined {
  let material = env.SMTP_SIDECAR_KEY;
  if (material === undefined && env.SMTP_SIDECAR_KEY_FILE !== undefined) {
    try {
      material = readFileSync(env.SMTP_SIDECAR_KEY_FILE, 'utf8').trim();
    } catch (err) {
      throw new SecretKeyError(`cannot read SMTP_SIDECAR_KEY_FILE ${env.SMTP_SIDECAR_KEY_FILE}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (material === undefined) return undefined;
  if (material.length < 16) throw new SecretKeyError('SMTP_SIDECAR_KEY is too short: use at least 16 characters (e.g. `openssl rand -base64 32`)');
  return scryptSync(material, SALT, 32);
}

export function encryptSecret(plain: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return ENC_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

/** Throws SecretKeyError with a message safe to print (no secret, no key). */
export function decryptSecret(value: string, key: Buffer | undefined): string {
  if (key === undefined) throw new SecretKeyError('value is encrypted (enc:) but neither SMTP_SIDECAR_KEY nor SMTP_SIDECAR_KEY_FILE is set');
  const packed = Buffer.from(value.slice(ENC_PREFIX.length), 'base64');
  if (packed.length < 12 + 16 + 1) throw new SecretKeyError('encrypted value is truncated; produce it again with `smtp-sidecar encrypt`');
  const decipher = createDecipheriv('aes-256-gcm', key, packed.subarray(0, 12));
  decipher.setAuthTag(packed.subarray(12, 28));
  try {
    return Buffer.concat([decipher.update(packed.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretKeyError('cannot decrypt: wrong SMTP_SIDECAR_KEY or a tampered value');
  }
}
