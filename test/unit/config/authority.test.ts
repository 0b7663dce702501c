/** auth.authority: a base authority, a base ending in the tenant, or the full token URL. */
import { describe, expect, it } from 'vitest';
import { describeAuthority, readAuthority } from '../../../src/config/authority.js';
import { configSchema } from '../../../src/config/schema.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

describe(readAuthority.name, () => {
  it.each([
    ['https://login.microsoftonline.com', 'base', 'https://login.microsoftonline.com'],
    ['https://login.microsoftonline.us/', 'base', 'https://login.microsoftonline.us'],
    [`https://login.microsoftonline.com/${TENANT}`, 'base-with-tenant', 'https://login.microsoftonline.com'],
    [`https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`, 'token-url', 'https://login.microsoftonline.com'],
    [`https://login.microsoftonline.com/${TENANT.toUpperCase()}/oauth2/v2.0/token/`, 'token-url', 'https://login.microsoftonline.com'],
    [`https://idp.corp.example:8443/entra/${TENANT}/oauth2/v2.0/token`, 'token-url', 'https://idp.corp.example:8443/entra'],
  ])('%s → %s, base %s', (authority, form, base) => {
    const reading = readAuthority(authority, TENANT);
    expect(reading).toEqual({ ok: true, form, base, tokenEndpoint: `${base}/${TENANT}/oauth2/v2.0/token` });
  });

  it('says which form it understood', () => {
    const reading = readAuthority(`https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`, TENANT);
    if (!reading.ok) throw new Error(reading.problem);
    expect(describeAuthority(reading)).toBe(
      `understood as a full token URL: authority https://login.microsoftonline.com, tokens from https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`,
    );
  });

  it.each([
    [`https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token`, /token URL for tenant "contoso.onmicrosoft.com" but tenantId is/],
    [`https://login.microsoftonline.com/${TENANT}/oauth2/token`, /v1 token URL.*use https:\/\/login\.microsoftonline\.com\/.+\/oauth2\/v2\.0\/token/],
    ['https://login.microsoftonline.com/?tenant=x', /query string/],
  ])('refuses %s with the fix', (authority, problem) => {
    const reading = readAuthority(authority, TENANT);
    expect(reading.ok).toBe(false);
    expect(reading.ok ? '' : reading.problem).toMatch(problem);
    const parsed = configSchema.safeParse({
      upstreams: [{ name: 'm365', host: 'smtp.office365.com', auth: { type: 'oauth2', user: 'relay@contoso.com', tenantId: TENANT, clientId: 'c', clientSecret: 's', authority } }],
    });
    expect(parsed.success ? [] : parsed.error.issues.map((i) => i.path.join('.'))).toEqual(['upstreams.0.auth.authority']);
  });
});
