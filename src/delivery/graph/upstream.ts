/**
 * A `protocol: "graph"` upstream from its config: the TransportFactory row of delivery/upstream-set.ts.
 *
 * Does: map the upstream's config (graph.endpoint, graph.saveToSentItems, auth.user, proxy, tls,
 *   timeouts) onto the Graph transport, with the token source the set built for it.
 * Never: builds a token source itself (the set's shared cache keeps one token per lifetime).
 * Assumes: the config is validated: auth is oauth2, so the set always passes credentials.
 */
import type { GraphUpstreamConfig } from '../../config/schema.js';
import { RelayError } from '../../core/errors.js';
import type { UpstreamTransport } from '../../core/ports.js';
import { readTlsMaterial } from '../tls-files.js';
import type { TransportContext } from '../upstream-set.js';
import { createGraphTransport } from './transport.js';

export function createGraphUpstream(upstream: GraphUpstreamConfig, context: TransportContext): UpstreamTransport {
  if (context.credentials === undefined) {
    throw new RelayError('E_CONFIG', { logMessage: `upstream "${upstream.name}": a graph upstream needs OAuth2 credentials` });
  }
  const tls = readTlsMaterial(upstream);
  // tls.rejectUnauthorized false: the relay warns (upstream.tls-insecure) at start and reload
  return createGraphTransport({
    name: upstream.name,
    endpoint: upstream.graph.endpoint,
    user: upstream.auth.user,
    saveToSentItems: upstream.graph.saveToSentItems,
    // Graph sends as the mailbox: unless the admin chose a sender (upstreams[].from, or
    // message.globalFrom, which then needs Send As rights), messages go out From auth.user
    ...(upstream.from === undefined && context.globalFrom === undefined ? { defaultFrom: upstream.auth.user } : {}),
    tokens: context.credentials,
    clock: context.clock,
    logger: context.logger,
    http: {
      ...(upstream.proxy === undefined ? {} : { proxy: upstream.proxy }),
      tls: {
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(upstream.tls.servername === undefined ? {} : { servername: upstream.tls.servername }),
        rejectUnauthorized: upstream.tls.rejectUnauthorized,
        minVersion: upstream.tls.minVersion,
      },
      connectTimeoutMs: upstream.timeouts.connectSeconds * 1000,
      socketTimeoutMs: upstream.timeouts.socketSeconds * 1000,
    },
  });
}
