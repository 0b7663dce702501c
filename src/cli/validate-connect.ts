/**
 * `smtp-sidecar validate --connect`: builds the upstreams exactly as the relay does (the one
 * UpstreamSet: same transports, TLS material, credentials) and runs each transport's `verify()`,
 * printing one line per step (connect, greeting, ehlo, tls, token, auth, quit for SMTP).
 *
 * Does: check every upstream in order, even after one failed; print each step as it ends.
 * Never: print a secret (each transport scrubs its own steps); send mail.
 * Assumes: the config is validated.
 */
import type { INetworkModule } from '@azure/msal-node';
import pino from 'pino';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import type { VerifyStep } from '../core/ports.js';
import { buildUpstreamSet } from '../delivery/upstream-set.js';
import type { CliIo } from './io.js';

export { SecretScrubber } from '../delivery/secret-scrubber.js';

export interface ConnectCheckOptions {
  readonly clock?: Clock;
  /** msal network client for oauth2 upstreams (tests: the fake token endpoint); the CLI passes none */
  readonly tokenNetworkClient?: INetworkModule;
}

/** For validateCommand's `connectCheck` parameter. */
export function connectCheck(options: ConnectCheckOptions = {}): (config: Config, io: CliIo) => Promise<boolean> {
  return (config, io) => checkUpstreams(config, io, options);
}

/** Checks every upstream in order; true when all of them passed every step. */
export async function checkUpstreams(config: Config, io: CliIo, options: ConnectCheckOptions = {}): Promise<boolean> {
  if (config.upstreams.length === 0) {
    io.stdout('no upstream configured: messages go to the outbox directory\n');
    return true;
  }
  const nameWidth = Math.max(...config.upstreams.map((u) => u.name.length)) + 2;
  const set = buildUpstreamSet(config, {
    clock: options.clock ?? systemClock,
    logger: pino({ enabled: false }),
    tolerateBroken: true,
    ...(options.tokenNetworkClient === undefined ? {} : { tokenNetworkClient: options.tokenNetworkClient }),
  });
  let allPassed = true;
  try {
    for (const name of set.names) {
      const print = (line: VerifyStep): void => {
        io.stdout(`${`${name.padEnd(nameWidth)}${line.step.padEnd(10)}${line.status.padEnd(8)}${line.detail}`.trimEnd()}\n`);
      };
      const steps = (await set.get(name)?.transport.verify(print)) ?? [];
      allPassed &&= steps.every((s) => s.status !== 'failed');
    }
  } finally {
    await set.close();
  }
  return allPassed;
}
