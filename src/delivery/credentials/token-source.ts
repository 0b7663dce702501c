/** The seam between an upstream transport and whatever supplies OAuth2 access tokens. */
export interface AccessToken {
  readonly accessToken: string;
  readonly expiresOnMs: number;
}

export interface TokenSource {
  /** A valid token; `forceRefresh` fetches a new one (after the upstream refused the cached one). */
  getToken(options?: { readonly forceRefresh?: boolean }): Promise<AccessToken>;
}
