/**
 * The one place that turns the config's upstreams into working parts: for each upstream its
 * transport (by `protocol`), its credentials (an OAuth2 token source when auth.type is oauth2)
 * and its settings (attachment limits, rate cap, required sender). The relay, `send-test`,
 * `validate --connect` and reload all build their upstreams here; reload swaps one set whole.
 *
 * Does: build every upstream of a config, or (no upstream configured) the outbox; close them all.
 *   `tolerateBroken` (the CLI checks) keeps an upstream that cannot be built (unreadable
 *   tls.ca, bad certificate) as a transport that reports the build error, so the others can
 *   still be checked; the relay builds strictly and refuses the config.
 * Never: send anything while building; log a secret.
 * Assumes: the config is validated (config/schema.ts).
 *
 * Adding a protocol: write one transport file that exports a `TransportFactory` (it gets the
 * upstream's config and a TransportContext with the logger, clock, EHLO default, trace level and
 * the credentials this set built for it, and returns an UpstreamTransport: send, verify,
 * close), add its variant to `upstreamSchema` in config/schema.ts (its `protocol` literal), and
 * add one row to TRANSPORTS below. TypeScript refuses a protocol without a row.
 */
import { resolve } from 'node:path';
import type { INetworkModule } from '@azure/msal-node';
import type { Config, UpstreamConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { RelayError } from '../core/errors.js';
import type { Logger, Upstream, UpstreamSet, UpstreamSettings, UpstreamTransport, VerifyStep } from '../core/ports.js';
import { createOAuth2TokenSource, type OAuth2TokenSource } from './credentials/oauth2.js';
import { TokenCache } from './credentials/token-cache.js';
import type { TokenSource } from './credentials/token-source.js';
import { TokenStatusBoard } from './credentials/token-status.js';
import { createGraphUpstream } from './graph/upstream.js';
import { createOutboxTransport } from './outbox.js';
import { createSmtpTransport } from './transport.js';

/** The upstream name used when no upstream is configured. */
export const OUTBOX = 'outbox';

export type Protocol = UpstreamConfig['protocol'];

export interface TransportContext {
  readonly logger: Logger;
  readonly clock: Clock;
  /** EHLO name (or similar) when the upstream sets none: listen.hostname */
  readonly defaultHostname: string;
  readonly trace: Config['log']['trace'];
  /** the upstream's token source, when its auth is oauth2 */
  readonly credentials: TokenSource | undefined;
  /** message.globalFrom (a Graph upstream sends as auth.user only when neither it nor upstreams[].from is set) */
  readonly globalFrom: string | undefined;
}

export type TransportFactory<P extends Protocol = Protocol> = (upstream: Extract<UpstreamConfig, { protocol: P }>, context: TransportContext) => UpstreamTransport;

/** protocol → transport: one row per protocol the schema knows. */
export const TRANSPORTS: { readonly [P in Protocol]: TransportFactory<P> } = {
  smtp: (upstream, context) =>
    createSmtpTransport(upstream, {
      logger: context.logger,
      clock: context.clock,
      defaultHostname: context.defaultHostname,
      trace: context.trace,
      ...(context.credentials === undefined ? {} : { credentials: context.credentials }),
    }),
  graph: (upstream, context) => createGraphUpstream(upstream, context),
};

export interface UpstreamSetDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** shared across reloads so a reload does not refetch tokens (a fresh one otherwise) */
  readonly tokenCache?: TokenCache;
  /** token health for /status and /metrics (a fresh one otherwise) */
  readonly tokenStatus?: TokenStatusBoard;
  /** msal network client for every oauth2 upstream (tests: a fake token endpoint) */
  readonly tokenNetworkClient?: INetworkModule;
  /** keep an upstream that cannot be built as a transport reporting why (CLI checks); default: throw */
  readonly tolerateBroken?: boolean;
}

export function settingsOf(upstream: UpstreamConfig): UpstreamSettings {
  return { limits: upstream.limits, maxMessagesPerMinute: upstream.maxMessagesPerMinute, from: upstream.from };
}

/** Builds every upstream of `config`; throws (after closing what it built) when one cannot be built, unless `tolerateBroken`. */
export function buildUpstreamSet(config: Config, deps: UpstreamSetDeps): UpstreamSet {
  const built = new Map<string, Upstream>();
  const sources: OAuth2TokenSource[] = [];
  const close = async (): Promise<void> => {
    await Promise.allSettled([...built.values()].map((u) => u.transport.close()));
    await Promise.allSettled(sources.map((s) => s.close()));
  };
  if (config.upstreams.length === 0) {
    const transport = createOutboxTransport({ dir: resolve(config.delivery.outboxDir), fsync: config.delivery.fsync });
    built.set(OUTBOX, { name: OUTBOX, transport, settings: {} });
  }
  const tokenCache = deps.tokenCache ?? new TokenCache({ clock: deps.clock });
  const tokenStatus = deps.tokenStatus ?? new TokenStatusBoard();
  for (const upstream of config.upstreams) {
    let step: 'config' | 'token' = 'config';
    try {
      let credentials: OAuth2TokenSource | undefined;
      if (upstream.auth.type === 'oauth2') {
        step = 'token';
        credentials = createOAuth2TokenSource(upstream.name, upstream.auth, {
          cache: tokenCache,
          clock: deps.clock,
          logger: deps.logger,
          status: tokenStatus,
          ...(upstream.proxy === undefined ? {} : { proxy: upstream.proxy }),
          ...(deps.tokenNetworkClient === undefined ? {} : { networkClient: deps.tokenNetworkClient }),
        });
        sources.push(credentials);
        step = 'config';
      }
      const factory = TRANSPORTS[upstream.protocol] as TransportFactory;
      const transport = factory(upstream, {
        logger: deps.logger,
        clock: deps.clock,
        defaultHostname: config.listen.hostname,
        globalFrom: config.message.globalFrom,
        trace: config.log.trace,
        credentials,
      });
      built.set(upstream.name, { name: upstream.name, transport, settings: settingsOf(upstream) });
    } catch (err) {
      if (deps.tolerateBroken !== true) {
        void close();
        throw err;
      }
      built.set(upstream.name, { name: upstream.name, transport: brokenTransport(upstream, step, err), settings: settingsOf(upstream) });
    }
  }
  const names = [...built.keys()];
  return { names, get: (name) => built.get(name), close };
}

/** An upstream that could not be built: every send fails with the reason (classified as failover), verify reports it. */
function brokenTransport(upstream: UpstreamConfig, failedStep: 'config' | 'token', cause: unknown): UpstreamTransport {
  const message = cause instanceof Error ? cause.message : String(cause);
  const step: VerifyStep = { step: failedStep, status: 'failed', detail: message };
  return {
    name: upstream.name,
    send: () => Promise.reject(new RelayError('E_CONFIG', { cause, logMessage: `upstream "${upstream.name}" cannot be used: ${message}` })),
    verify: (onStep) => {
      onStep?.(step);
      return Promise.resolve([step]);
    },
    close: () => Promise.resolve(),
  };
}
