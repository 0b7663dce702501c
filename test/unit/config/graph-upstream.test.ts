import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';

const auth = { type: 'oauth2', user: 'relay@contoso.com', tenantId: 'contoso.onmicrosoft.com', clientId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', clientSecret: 's3cret-value' };

function issues(upstream: Record<string, unknown>): string[] {
  const result = configSchema.safeParse({ upstreams: [upstream] });
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('upstreams[] with protocol "graph"', () => {
  it('takes the Graph defaults: scope, endpoint, Sent Items', () => {
    const config = configSchema.parse({ upstreams: [{ name: 'graph', protocol: 'graph', auth }] });
    const u = config.upstreams[0]!;
    expect(u.protocol).toBe('graph');
    if (u.protocol !== 'graph') throw new Error('unreachable');
    expect(u.auth.scope).toBe('https://graph.microsoft.com/.default');
    expect(u.graph).toEqual({ endpoint: 'https://graph.microsoft.com', saveToSentItems: true });
    expect(u.tls.rejectUnauthorized).toBe(true);
  });

  it('leaves SMTP upstreams as they were (protocol defaults to smtp, the Exchange Online SMTP scope)', () => {
    const config = configSchema.parse({ upstreams: [{ name: 'm365', host: 'smtp.office365.com', auth }] });
    const u = config.upstreams[0]!;
    expect(u.protocol).toBe('smtp');
    expect(u.auth.type === 'oauth2' && u.auth.scope).toBe('https://outlook.office365.com/.default');
  });

  it('names an SMTP-only key on a graph upstream as the error', () => {
    expect(issues({ name: 'graph', protocol: 'graph', auth, host: 'smtp.office365.com', port: 587 })).toEqual([
      'upstreams.0: "host", "port" are SMTP settings: a graph upstream talks to graph.endpoint over HTTPS; remove them',
    ]);
    expect(issues({ name: 'graph', protocol: 'graph', auth, timeouts: { greetingSeconds: 5 } })[0]).toMatch(/upstreams\.0\.timeouts: .*greetingSeconds/);
  });

  it('requires auth.type oauth2 and says why', () => {
    expect(issues({ name: 'graph', protocol: 'graph', auth: { type: 'login', user: 'a@b.c', pass: 'x' } }).join('\n')).toMatch(
      /upstreams\.0\.auth\.type: a graph upstream needs auth\.type "oauth2"/,
    );
    expect(issues({ name: 'graph', protocol: 'graph' }).join('\n')).toMatch(/upstreams\.0\.auth/);
  });

  it('refuses an http:// Graph endpoint (the bearer token never goes over plaintext)', () => {
    expect(issues({ name: 'graph', protocol: 'graph', auth, graph: { endpoint: 'http://graph.example' } }).join('\n')).toMatch(/graph\.endpoint: must be an https:\/\/ URL/);
  });
});
