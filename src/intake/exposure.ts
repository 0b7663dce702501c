/**
 * Start-up exposure checks for the listener: which warnings a listen configuration deserves.
 *
 * Does: decide, as a pure function of `listen.host` and `listen.allowedClients`, whether the
 *   relay listens beyond loopback while only loopback clients are allowed (other hosts will be
 *   refused), and whether the allow-list admits every address (an open relay if the port is
 *   reachable).
 * Never: log, bind or resolve names (a host name other than `localhost` counts as non-loopback).
 * Assumes: `allowedClients` entries passed the config schema (IP or CIDR).
 */
import { isIP } from 'node:net';
import { isLoopbackAddress } from '../core/loopback.js';

export interface ExposureWarning {
  readonly kind: 'non-loopback-host-loopback-clients' | 'allows-any-client';
  readonly message: string;
}

/** Whether a CIDR entry (or single address) lies entirely inside loopback. */
function isLoopbackRange(entry: string): boolean {
  const [ip, bits] = entry.split('/') as [string, string | undefined];
  if (!isLoopbackAddress(ip)) return false;
  if (bits === undefined) return true;
  return isIP(ip) === 4 ? Number(bits) >= 8 : Number(bits) === 128;
}

export function listenExposureWarnings(host: string, allowedClients: readonly string[]): ExposureWarning[] {
  const warnings: ExposureWarning[] = [];
  if (!isLoopbackAddress(host) && allowedClients.every(isLoopbackRange)) {
    warnings.push({
      kind: 'non-loopback-host-loopback-clients',
      message: 'listening on a non-loopback address while listen.allowedClients only allows loopback: other hosts will be refused (554)',
    });
  }
  if (allowedClients.some((entry) => /\/0$/.test(entry))) {
    warnings.push({
      kind: 'allows-any-client',
      message: 'listen.allowedClients admits every address (a /0 range): anyone who can reach the port can relay mail as this service',
    });
  }
  return warnings;
}
