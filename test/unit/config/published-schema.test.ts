/**
 * The published config.schema.json, checked with a standard JSON Schema validator (Ajv, draft
 * 2020-12, formats on) as an editor would check a file: every shipped config file passes it,
 * references are accepted in number, boolean and patterned fields, and real mistakes are not.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { GENERATED_FILES } from '../../../scripts/gen-config-docs.js';
import { loadConfig } from '../../../src/config/load.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const schema = JSON.parse(readFileSync(GENERATED_FILES.jsonSchema, 'utf8')) as Record<string, unknown>;
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats.default(ajv);
const validate = ajv.compile(schema);
const errorsOf = (value: unknown): string[] => (validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`));

/** Every config file the project ships: the example, and each JSON file under docker/ and deploy/. */
const shipped = [
  'config.example.json',
  ...['docker', 'deploy'].flatMap((dir) =>
    readdirSync(join(ROOT, dir))
      .filter((f) => f.endsWith('.json'))
      .map((f) => `${dir}/${f}`),
  ),
];

describe('config.schema.json with a standard validator', () => {
  it('is a valid draft 2020-12 schema', () => {
    expect(schema['$schema']).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(ajv.validateSchema(schema)).toBe(true);
  });

  it.each(shipped)('%s passes the published schema', (file) => {
    expect(errorsOf(JSON.parse(readFileSync(join(ROOT, file), 'utf8')))).toEqual([]);
  });

  it('docker/config.docker.json is among them (its ${env:...} sit in fields with an e-mail pattern)', () => {
    expect(shipped).toContain('docker/config.docker.json');
    expect(readFileSync(join(ROOT, 'docker/config.docker.json'), 'utf8')).toContain('"globalFrom": "${env:M365_SENDER}"');
  });

  it('accepts references in number, boolean, enum and patterned fields', () => {
    expect(
      errorsOf({
        listen: { port: '${env:SMTP_PORT}', allowedClients: ['${env:CLIENT_RANGE}'] },
        message: { globalFrom: '${env:SENDER}', confidential: { enabled: '${env:CONFIDENTIAL}' } },
        delivery: { waitSeconds: '${file:/run/secrets/wait}', fsync: '${env:FSYNC}' },
        upstreams: [{ name: 'a', host: 'h', port: '${env:UP_PORT}', security: '${env:UP_SECURITY}', auth: { type: 'login', user: 'u', pass: '${file:/run/secrets/p}' } }],
      }),
    ).toEqual([]);
  });

  it('still refuses what is wrong: an unknown key, a number as text, an address without a domain, a bad enum', () => {
    expect(errorsOf({ listen: { prot: 25 } }).join('\n')).toContain('must NOT have additional properties');
    expect(errorsOf({ listen: { port: '25' } }).join('\n')).toContain('/listen/port');
    expect(errorsOf({ message: { globalFrom: 'noreply' } }).join('\n')).toContain('/message/globalFrom');
    expect(errorsOf({ upstreams: [{ name: 'a', host: 'h', security: 'ssl' }] }).join('\n')).toContain('/upstreams/0');
  });

  it('every shipped file also loads with the relay\'s own loader once its references resolve', () => {
    const env = { M365_SENDER: 'relay@contoso.com', M365_TENANT_ID: 'tenant', M365_CLIENT_ID: 'client' };
    for (const file of shipped) {
      expect(() => loadConfig(join(ROOT, file), { env, readFile: (p) => (p.startsWith('/run/secrets/') ? 'secret\n' : readFileSync(p, 'utf8')) }), file).not.toThrow();
    }
  });
});
