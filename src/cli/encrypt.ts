/**
 * `smtp-sidecar encrypt`: reads one secret from stdin (never from argv, which other users can
 * see in `ps`) and prints its `enc:` form for the config file.
 */
import { encryptSecret, keyFromEnvironment, SecretKeyError } from '../config/secrets.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

export const ENCRYPT_HELP = `Usage: smtp-sidecar encrypt < secret.txt
       printf '%s' "$SECRET" | smtp-sidecar encrypt

Reads a secret from standard input and prints it encrypted (AES-256-GCM) as enc:...,
to paste into the config as auth.pass, auth.clientSecret or clientCertificate.privateKey.
The key comes from SMTP_SIDECAR_KEY or the file named by SMTP_SIDECAR_KEY_FILE; the relay
needs the same key at start-up. One trailing newline of the input is ignored.
`;

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

export async function encryptCommand(io: CliIo): Promise<number> {
  let key;
  try {
    key = keyFromEnvironment(io.env);
  } catch (err) {
    io.stderr(`smtp-sidecar encrypt: ${(err as SecretKeyError).message}\n`);
    return EXIT.USAGE_OR_CONFIG;
  }
  if (key === undefined) {
    io.stderr('smtp-sidecar encrypt: set SMTP_SIDECAR_KEY (or SMTP_SIDECAR_KEY_FILE) to the key the relay will use, e.g. `openssl rand -base64 32`\n');
    return EXIT.USAGE_OR_CONFIG;
  }
  const secret = (await readAll(io.stdin)).replace(/\r?\n$/, '');
  if (secret === '') {
    io.stderr('smtp-sidecar encrypt: no secret on standard input\n');
    return EXIT.USAGE_OR_CONFIG;
  }
  io.stdout(`${encryptSecret(secret, key)}\n`);
  return EXIT.OK;
}
