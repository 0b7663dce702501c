/**
 * `validate --connect` for a Graph upstream: the checks that need no mail to be sent.
 *
 * Does: 1. connect: one HTTPS request to the Graph endpoint without a token (through the proxy,
 *   trusting tls.ca as delivery does); any HTTP answer proves DNS, proxy and TLS trust. 2. token:
 *   fetch a token from the upstream's token source, read its `aud` and `roles` claims and say
 *   plainly whether the Mail.Send application permission is granted.
 * Never: sends mail; prints the token (only its claims `aud` and `roles`); throws for a failed step.
 * Assumes: Entra access tokens for client credentials are JWTs whose payload carries `roles`
 *   (the application permissions granted with admin consent) and `aud` (the resource).
 */
import type { VerifyStep } from '../../core/ports.js';
import type { TokenSource } from '../credentials/token-source.js';
import type { GraphHttp } from './http.js';

/** The payload of a JWT, or undefined when the token is not one. */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export async function verifyGraph(
  input: { readonly http: GraphHttp; readonly tokens: TokenSource; readonly endpoint: string },
  onStep?: (step: VerifyStep) => void,
): Promise<VerifyStep[]> {
  const steps: VerifyStep[] = [];
  const report = (step: VerifyStep): void => {
    steps.push(step);
    onStep?.(step);
  };
  const origin = input.endpoint.replace(/\/+$/, '');
  try {
    const answer = await input.http.send({ command: 'connect', method: 'GET', url: `${origin}/v1.0/`, bearer: false }, () => true);
    report({ step: 'connect', status: 'ok', detail: `HTTPS to ${origin} works (HTTP ${answer.status} without a token, as expected)` });
  } catch (err) {
    const text = (err as { response?: string }).response ?? (err as Error).message;
    report({
      step: 'connect',
      status: 'failed',
      detail: `${text}: check graph.endpoint, proxy, and tls.ca if a proxy inspects TLS`,
    });
    report({ step: 'token', status: 'skipped', detail: 'not tried: Graph cannot be reached' });
    return steps;
  }
  let token: string;
  try {
    token = (await input.tokens.getToken()).accessToken;
  } catch (err) {
    report({ step: 'token', status: 'failed', detail: (err as Error).message });
    return steps;
  }
  const claims = jwtClaims(token);
  const roles = Array.isArray(claims?.roles) ? (claims.roles as unknown[]).filter((r): r is string => typeof r === 'string') : [];
  const audience = typeof claims?.aud === 'string' ? claims.aud : 'unknown';
  const shown = `aud ${audience}, roles [${roles.join(', ')}]`;
  if (roles.includes('Mail.Send')) {
    report({ step: 'token', status: 'ok', detail: `${shown}: Mail.Send is granted` });
  } else {
    report({
      step: 'token',
      status: 'failed',
      detail: `${shown}: Mail.Send is NOT granted: add the Microsoft Graph application permission Mail.Send to the app registration and grant admin consent (a new token shows it after a few minutes); a grant made with RBAC for Applications in Exchange Online does not show here: check it with Test-ServicePrincipalAuthorization`,
    });
  }
  return steps;
}
