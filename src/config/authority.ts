/**
 * How `auth.authority` is read: admins paste either the base authority
 * (`https://login.microsoftonline.com`) or the full token URL an app's panel asks for
 * (Argus Safety's "Server Token URL": `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`).
 *
 * Does: turn either form (and a base that ends in the tenant) into the base authority, and say
 *   which form was understood; name the fix for forms that cannot work (a v1 token URL, a token
 *   URL for another tenant, a query string).
 * Never: does I/O.
 * Assumes: `authority` is an https URL (the schema checks that first).
 */

export type AuthorityReading =
  | {
      readonly ok: true;
      readonly form: 'base' | 'base-with-tenant' | 'token-url';
      /** scheme, host and path prefix, without the tenant and without a trailing slash */
      readonly base: string;
      /** where tokens are requested */
      readonly tokenEndpoint: string;
    }
  | { readonly ok: false; readonly problem: string };

const V2_TOKEN = /^(.*)\/([^/]+)\/oauth2\/v2\.0\/token$/i;
const V1_TOKEN = /\/oauth2\/token$/i;

export function readAuthority(authority: string, tenantId: string): AuthorityReading {
  let url: URL;
  try {
    url = new URL(authority);
  } catch {
    return { ok: false, problem: 'must be an https:// URL' };
  }
  if (url.search !== '' || url.hash !== '') {
    return { ok: false, problem: 'must not have a query string or fragment: give the base authority (https://login.microsoftonline.com) or the token URL alone' };
  }
  const path = url.pathname.replace(/\/+$/, '');
  const origin = url.origin;
  const endpoint = (base: string) => `${base}/${tenantId}/oauth2/v2.0/token`;
  const sameTenant = (t: string) => t.toLowerCase() === tenantId.toLowerCase();

  const v2 = V2_TOKEN.exec(path);
  if (v2 !== null) {
    const [, prefix = '', tenant = ''] = v2;
    if (!sameTenant(decodeURIComponent(tenant))) {
      return { ok: false, problem: `is a token URL for tenant "${decodeURIComponent(tenant)}" but tenantId is "${tenantId}": make them the same` };
    }
    const base = `${origin}${prefix}`;
    return { ok: true, form: 'token-url', base, tokenEndpoint: endpoint(base) };
  }
  if (V1_TOKEN.test(path)) {
    return {
      ok: false,
      problem: `is a v1 token URL (…/oauth2/token), which client credentials with a scope cannot use: use ${origin}/${tenantId}/oauth2/v2.0/token or the base authority ${origin}`,
    };
  }
  const segments = path.split('/').filter((s) => s !== '');
  const last = segments.at(-1);
  if (last !== undefined && sameTenant(decodeURIComponent(last))) {
    const base = `${origin}${segments.length > 1 ? `/${segments.slice(0, -1).join('/')}` : ''}`;
    return { ok: true, form: 'base-with-tenant', base, tokenEndpoint: endpoint(base) };
  }
  const base = `${origin}${path}`;
  return { ok: true, form: 'base', base, tokenEndpoint: endpoint(base) };
}

/** One line for `validate`: which form was understood and where tokens will come from. */
export function describeAuthority(reading: Extract<AuthorityReading, { ok: true }>): string {
  const what =
    reading.form === 'token-url'
      ? 'understood as a full token URL'
      : reading.form === 'base-with-tenant'
        ? 'understood as a base authority followed by the tenant'
        : 'understood as a base authority';
  return `${what}: authority ${reading.base}, tokens from ${reading.tokenEndpoint}`;
}
