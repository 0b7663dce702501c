/**
 * Readiness: may a load balancer or orchestrator send mail to this relay now?
 *
 * Does: turn the facts (SMTP listener bound, spool writable, upstream health, token status)
 * into one report: ready = listener bound AND spool writable AND at least one upstream of the
 * default route not marked down. With no upstream configured the relay delivers to the outbox,
 * which is always up. Token problems are reported for the admin but do not decide readiness
 * (a token failure marks its upstream down, which does).
 * Never: probes anything itself in buildReadiness (pure); reports error text or secrets.
 * Assumes: `upstreams` is the default route (every configured upstream, in order).
 */

/** The slice of routing's UpstreamState that readiness reads. */
export interface UpstreamReadiness {
  readonly name: string;
  readonly up: boolean;
}

/** The slice of credentials' TokenStatus that readiness reads. */
export interface TokenReadiness {
  readonly upstream: string;
  readonly lastError: string | undefined;
  readonly certificateWarning?: string;
}

export interface ReadinessInput {
  readonly listening: boolean;
  readonly spoolWritable: boolean;
  readonly upstreams: readonly UpstreamReadiness[];
  readonly tokens?: readonly TokenReadiness[];
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: {
    readonly listener: { readonly ok: boolean };
    readonly spool: { readonly ok: boolean };
    readonly upstreams: { readonly ok: boolean; readonly up: readonly string[]; readonly down: readonly string[] };
    /** informational: upstreams whose last token fetch failed, certificates close to expiry */
    readonly tokens: { readonly failing: readonly string[]; readonly certificateWarnings: readonly string[] };
  };
}

export function buildReadiness(input: ReadinessInput): ReadinessReport {
  const up = input.upstreams.filter((u) => u.up).map((u) => u.name);
  const down = input.upstreams.filter((u) => !u.up).map((u) => u.name);
  // No upstream configured: the embedded outbox delivers, and it is never down.
  const upstreamsOk = input.upstreams.length === 0 || up.length > 0;
  const tokens = input.tokens ?? [];
  const report: ReadinessReport = {
    ready: input.listening && input.spoolWritable && upstreamsOk,
    checks: {
      listener: { ok: input.listening },
      spool: { ok: input.spoolWritable },
      upstreams: { ok: upstreamsOk, up, down },
      tokens: {
        failing: tokens.filter((t) => t.lastError !== undefined).map((t) => t.upstream),
        certificateWarnings: tokens.filter((t) => t.certificateWarning !== undefined).map((t) => t.upstream),
      },
    },
  };
  return report;
}

export interface ReadinessSources {
  readonly isListening: () => boolean;
  readonly probeSpoolWritable: () => Promise<boolean>;
  /** the default route's upstreams (e.g. health.snapshot(upstreamNames)) */
  readonly upstreams: () => readonly UpstreamReadiness[];
  readonly tokens?: () => readonly TokenReadiness[];
}

/** The function the HTTP server calls on GET /readyz: gathers the facts, then buildReadiness. */
export function createReadinessCheck(sources: ReadinessSources): () => Promise<ReadinessReport> {
  return async () => {
    const spoolWritable = await sources.probeSpoolWritable().catch(() => false);
    return buildReadiness({
      listening: sources.isListening(),
      spoolWritable,
      upstreams: sources.upstreams(),
      ...(sources.tokens !== undefined ? { tokens: sources.tokens() } : {}),
    });
  };
}
