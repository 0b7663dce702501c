/**
 * Reads the PEM files an upstream's `tls` section names (CA, client certificate and key).
 *
 * Does: read each configured file once, when the transport is built.
 * Never: log or return file contents in an error message (a key is a secret).
 * Assumes: paths come from the validated config; a missing file is a configuration error.
 */
import { readFileSync } from 'node:fs';
import { RelayError } from '../core/errors.js';

export interface TlsMaterial {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

function readPem(upstreamName: string, key: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new RelayError('E_CONFIG', {
      cause,
      logMessage: `upstream "${upstreamName}": cannot read tls.${key} file ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
    });
  }
}

export function readTlsMaterial(upstream: { readonly name: string; readonly tls: { readonly ca?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined } }): TlsMaterial {
  return {
    ca: readPem(upstream.name, 'ca', upstream.tls.ca),
    cert: readPem(upstream.name, 'cert', upstream.tls.cert),
    key: readPem(upstream.name, 'key', upstream.tls.key),
  };
}
