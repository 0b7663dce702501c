import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { GENERATED_FILES, renderConfigDocs, renderJsonSchema } from '../../../scripts/gen-config-docs.js';

const REGENERATE = 'out of date: run `npx tsx scripts/gen-config-docs.ts` and commit the result';

describe('generated config reference', () => {
  it('config.schema.json is what the schema generates today', () => {
    expect(readFileSync(GENERATED_FILES.jsonSchema, 'utf8'), `config.schema.json ${REGENERATE}`).toBe(renderJsonSchema());
  });

  it('docs/CONFIG.md is what the schema generates today', () => {
    expect(readFileSync(GENERATED_FILES.docs, 'utf8'), `docs/CONFIG.md ${REGENERATE}`).toBe(renderConfigDocs());
  });

  it('the JSON schema is the input side: keys with defaults are optional', () => {
    const schema = JSON.parse(renderJsonSchema()) as {
      required?: string[];
      properties: { listen: { required?: string[]; properties: { port: { default: number } } }; upstreams: { items: { oneOf: { required: string[] }[] } } };
    };
    expect(schema.required ?? []).toEqual([]);
    expect(schema.properties.listen.required ?? []).toEqual([]);
    expect(schema.properties.listen.properties.port.default).toBe(25);
    // one item kind per protocol: smtp (protocol defaults to smtp) and graph
    expect(schema.properties.upstreams.items.oneOf.map((kind) => kind.required)).toEqual([['name', 'host'], ['name', 'protocol', 'auth']]);
  });

  it('the docs list every section, the upstream item keys and each auth variant with defaults and descriptions', () => {
    const docs = renderConfigDocs();
    for (const section of ['listen', 'message', 'limits', 'delivery', 'upstreams', 'routes', 'log', 'http']) expect(docs).toContain(`\n## ${section}\n`);
    expect(docs).toMatch(/\| `listen\.port` \| [^|]+ \| `25` \| SMTP port/);
    expect(docs).toMatch(/\| `http\.port` \| [^|]+ \| `8025` \|/);
    expect(docs).toContain('| `upstreams[].host` | string, **required** |');
    expect(docs).toContain('| `upstreams[].tls.rejectUnauthorized` | boolean | `true` |');
    expect(docs).toContain('### `upstreams[].auth` with type "none"');
    expect(docs).toContain('### `upstreams[].auth` with type "login" | "plain"');
    expect(docs).toContain('### `upstreams[].auth` with type "oauth2"');
    expect(docs).toContain('| `upstreams[].auth.pass` | string, **required** |');
    expect(docs).toContain('| `upstreams[].auth.clientCertificate.thumbprintSha256` |');
    expect(docs).toContain('| `upstreams[].auth.authority` | string (URL) | `"https://login.microsoftonline.com"` |');
    expect(docs).toContain('| `routes[].recipients` |');
  });

  it('names the environment variable of every key', () => {
    const docs = renderConfigDocs();
    expect(docs).toContain('\n## Environment variables\n');
    expect(docs).toMatch(/\| `listen\.port` \|.*\| `SMTP_SIDECAR_LISTEN__PORT` \|$/m);
    expect(docs).toMatch(/\| `listen\.maxMessageSizeMB` \|.*\| `SMTP_SIDECAR_LISTEN__MAX_MESSAGE_SIZE_MB` \|$/m);
    expect(docs).toMatch(/\| `upstreams\[\]\.auth\.clientSecret` \|.*\| `SMTP_SIDECAR_UPSTREAMS__<n>__AUTH__CLIENT_SECRET` \|$/m);
  });

  it('every key in the docs has a description', () => {
    const rows = renderConfigDocs()
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => l.replace(/\\\|/g, '¦').slice(2, -2).split(' | '));
    expect(rows.length).toBeGreaterThan(60);
    for (const row of rows) expect(row).toHaveLength(5);
    // the array rows themselves ("upstreams", "routes") are described by their section introduction
    const undocumented = rows.filter(([key, , , description]) => description?.trim() === '' && key !== '`upstreams`' && key !== '`routes`').map(([key]) => key);
    expect(undocumented).toEqual([]);
  });
});

describe('config.example.json', () => {
  it('validates against the schema', () => {
    const raw: unknown = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../../config.example.json'), 'utf8'));
    const config = parseConfig(raw, { env: {} });
    expect(config.listen.host).toBe('127.0.0.1');
  });
});
