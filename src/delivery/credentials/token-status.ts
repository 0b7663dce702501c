/**
 * Token health per upstream, in one place, for the health endpoint and the logs.
 *
 * Does: remember, per upstream, the last successful token fetch (time, expiry), the last
 * failure (a log-safe message and when), how many fetches were made, and the client
 * certificate's expiry with a warning flag when it is close.
 * Never: hold a token, a secret or a private key (only times, counts and log-safe text).
 * Assumes: times come from the injected Clock (epoch ms); messages passed to
 * recordFailure are already free of secrets (RelayError log messages built by oauth2.ts).
 */

export interface TokenStatus {
  readonly upstream: string;
  /** ISO 8601 of the last token obtained, or undefined before the first */
  readonly lastSuccessAt: string | undefined;
  /** ISO 8601 expiry of the last token obtained */
  readonly expiresAt: string | undefined;
  /** log-safe message of the last failed fetch (cleared by the next success) */
  readonly lastError: string | undefined;
  readonly lastErrorAt: string | undefined;
  /** token requests made (successful and failed) */
  readonly fetches: number;
  /** ISO 8601 expiry of the app-registration certificate (when x5c is configured) */
  readonly certificateExpiresAt?: string;
  /** set when that certificate expires within the warning window */
  readonly certificateWarning?: string;
}

interface MutableTokenStatus {
  upstream: string;
  lastSuccessAt: string | undefined;
  expiresAt: string | undefined;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
  fetches: number;
  certificateExpiresAt?: string;
  certificateWarning?: string;
}

export interface TokenStatusBoardOptions {
  /** told of every token obtained (the relay counts them in /metrics) */
  readonly onFetched?: (upstream: string, expiresOnMs: number) => void;
}

export class TokenStatusBoard {
  private readonly byUpstream = new Map<string, MutableTokenStatus>();

  constructor(private readonly options: TokenStatusBoardOptions = {}) {}

  private entry(upstream: string): MutableTokenStatus {
    let status = this.byUpstream.get(upstream);
    if (status === undefined) {
      status = { upstream, lastSuccessAt: undefined, expiresAt: undefined, lastError: undefined, lastErrorAt: undefined, fetches: 0 };
      this.byUpstream.set(upstream, status);
    }
    return status;
  }

  /** Makes the upstream appear in snapshots before its first fetch. */
  register(upstream: string): void {
    this.entry(upstream);
  }

  recordSuccess(upstream: string, at: { readonly nowMs: number; readonly expiresOnMs: number }): void {
    const status = this.entry(upstream);
    status.fetches += 1;
    status.lastSuccessAt = new Date(at.nowMs).toISOString();
    status.expiresAt = new Date(at.expiresOnMs).toISOString();
    status.lastError = undefined;
    status.lastErrorAt = undefined;
    this.options.onFetched?.(upstream, at.expiresOnMs);
  }

  recordFailure(upstream: string, at: { readonly nowMs: number; readonly message: string }): void {
    const status = this.entry(upstream);
    status.fetches += 1;
    status.lastError = at.message;
    status.lastErrorAt = new Date(at.nowMs).toISOString();
  }

  recordCertificate(upstream: string, certificate: { readonly expiresOnMs: number; readonly warning: string | undefined }): void {
    const status = this.entry(upstream);
    status.certificateExpiresAt = new Date(certificate.expiresOnMs).toISOString();
    if (certificate.warning === undefined) delete status.certificateWarning;
    else status.certificateWarning = certificate.warning;
  }

  get(upstream: string): TokenStatus | undefined {
    const status = this.byUpstream.get(upstream);
    return status === undefined ? undefined : { ...status };
  }

  /** A copy of every upstream's status, in registration order. */
  snapshot(): TokenStatus[] {
    return [...this.byUpstream.values()].map((status) => ({ ...status }));
  }
}
