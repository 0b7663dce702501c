/**
 * What the relay tells the admin about its config when it starts (and, for upstreams whose
 * settings changed, at a reload): where mail goes, and every setting that weakens a promise.
 *
 * Does: log the upstream summary (or the outbox warning), upstreams that skip certificate checks,
 * logins that would travel in clear, and a listener reachable beyond loopback.
 * Never: logs a secret (only names, hosts, modes and key paths).
 */
import { resolve } from 'node:path';
import type { Logger } from '../core/ports.js';
import { cleartextAdvice } from '../config/cleartext.js';
import type { Config } from '../config/schema.js';
import { listenExposureWarnings } from '../intake/exposure.js';

/** One line per upstream that does not verify the server's certificate. */
export function logInsecureUpstreams(upstreams: Config['upstreams'], logger: Logger): void {
  for (const u of upstreams) if (!u.tls.rejectUnauthorized) logger.warn({ upstream: u.name }, 'upstream.tls-insecure');
}

export function logStartupNotes(cfg: Config, logger: Logger): void {
  if (cfg.upstreams.length === 0) {
    logger.warn({ outboxDir: resolve(cfg.delivery.outboxDir) }, 'upstreams.outbox');
  } else {
    const summary = cfg.upstreams.map((u) =>
      u.protocol === 'graph'
        ? { name: u.name, protocol: u.protocol, endpoint: u.graph.endpoint, mailbox: u.auth.user, auth: u.auth.type }
        : { name: u.name, host: u.host, port: u.port, security: u.security, auth: u.auth.type },
    );
    logger.info({ upstreams: summary }, 'upstreams');
  }
  logInsecureUpstreams(cfg.upstreams, logger);
  for (const a of cleartextAdvice(cfg)) if (a.level === 'warning') logger.warn({ upstream: a.upstream, key: a.path, detail: a.message }, 'upstream.auth-plaintext');
  for (const warning of listenExposureWarnings(cfg.listen.host, cfg.listen.allowedClients)) {
    logger.warn({ host: cfg.listen.host, kind: warning.kind, detail: warning.message }, 'listen.exposed');
  }
}
