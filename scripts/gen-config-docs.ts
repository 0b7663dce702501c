/**
 * Generates the config reference from the one schema (src/config/schema.ts):
 * config.schema.json (JSON Schema, input side: keys with defaults are optional, for editor
 * completion) and docs/CONFIG.md (one table per section: key path, type, default, description).
 *
 * Does: walk the JSON Schema zod 4 produces (it carries `default` and `description`), including
 * the upstream array items and each auth variant; write both files (run: npx tsx scripts/gen-config-docs.ts).
 * Never: invents defaults; edits by hand what it generates (test/unit/ops/config-docs.test.ts
 * fails when the committed files differ from a fresh generation).
 * Assumes: run from anywhere; paths are resolved from this file's location.
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';

/** The subset of JSON Schema that zod emits for this config. */
interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  minLength?: number;
  format?: string;
  pattern?: string;
}

/**
 * Descriptions for keys whose schema has no `.describe()` text yet. The schema's own text
 * always wins; each entry here is a candidate to move into src/config/schema.ts.
 */
const FALLBACK_DESCRIPTIONS: Readonly<Record<string, string>> = {
  listen: 'The SMTP listener legacy applications connect to.',
  message: 'The site mail policy applied to every message before it is spooled.',
  'message.confidential': 'Confidential marking headers.',
  delivery: 'The durable spool, the synchronous wait and retries.',
  'delivery.retry': 'Retry backoff and the lifetime of a queued message.',
  upstreams: 'Ordered list of upstream servers: the first is the primary, the rest are tried in order (failover). Empty: messages go to delivery.outboxDir as .eml files.',
  'upstreams[].name': 'Unique name, used in logs, metrics, routes and health (letters, digits, dot, dash, underscore).',
  'upstreams[].host': 'Upstream SMTP server host name or address.',
  'upstreams[].port': 'Upstream SMTP port (587 submission with STARTTLS, 465 implicit TLS, 25 relay).',
  'upstreams[].security': 'none | starttls (use STARTTLS when offered) | starttls-required | tls (implicit TLS, port 465).',
  'upstreams[].tls': 'TLS settings for this upstream.',
  'upstreams[].tls.minVersion': 'Lowest TLS version accepted.',
  'upstreams[].timeouts': 'Timeouts for this upstream.',
  'upstreams[].timeouts.connectSeconds': 'How long to wait for the TCP (and TLS) connection.',
  'upstreams[].timeouts.greetingSeconds': 'How long to wait for the 220 greeting after connecting.',
  'upstreams[].timeouts.socketSeconds': 'How long a connection may stay idle during a transaction.',
  'upstreams[].auth': 'How the relay authenticates to this upstream; one of the variants below, chosen by auth.type.',
  'upstreams[].auth.type': 'Authentication variant.',
  'upstreams[].auth.user': 'User name (login/plain) or the mailbox that sends (oauth2).',
  'upstreams[].auth.tenantId': 'Microsoft Entra tenant ID (GUID) or domain.',
  'upstreams[].auth.clientId': 'Application (client) ID of the app registration.',
  'upstreams[].auth.clientSecret': 'Client secret of the app registration (secret: use ${env:NAME}, ${file:/path} or enc:...). Set exactly one of clientSecret or clientCertificate.',
  'upstreams[].auth.clientCertificate': 'Certificate credential of the app registration, instead of clientSecret.',
  'upstreams[].auth.clientCertificate.thumbprintSha256': 'SHA-256 thumbprint of the certificate, 64 hex digits.',
  'upstreams[].auth.authority': 'Token authority ("server token URL"); change it for sovereign clouds or a private endpoint.',
  'upstreams[].auth.scope': 'OAuth2 scope requested with client credentials.',
  routes: 'Recipient-based routing: messages whose recipients match a route use its upstreams in order; others use all upstreams.',
  'routes[].recipients': 'Recipient addresses or patterns like *@sms.example.net.',
  'routes[].upstreams': 'Names of upstreams (from upstreams[].name) to try in order.',
  log: 'Logging (pino JSON lines on stdout).',
  'log.level': 'Lowest level logged.',
  http: 'The operations HTTP server: /healthz, /readyz, /metrics and the loopback-only admin queue API.',
  'http.enabled': 'Serve the operations HTTP endpoints.',
  'http.host': 'Address the HTTP server listens on. Loopback by default; 0.0.0.0 in a container for health checks and scraping. The admin API answers loopback clients only.',
  'http.port': 'HTTP port (0 picks a free port).',
};

const HEADER = `<!-- Generated by scripts/gen-config-docs.ts from src/config/schema.ts. Do not edit by hand: run \`npx tsx scripts/gen-config-docs.ts\`. -->`;

export function buildJsonSchema(): JsonSchema & Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input' }) as JsonSchema & Record<string, unknown>;
}

export function renderJsonSchema(): string {
  return `${JSON.stringify(buildJsonSchema(), null, 2)}\n`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const code = (value: unknown) => `\`${JSON.stringify(value)}\``;
const SAFE_MAX = Number.MAX_SAFE_INTEGER;

function typeOf(schema: JsonSchema): string {
  if (schema.const !== undefined) return code(schema.const);
  if (schema.enum !== undefined) return schema.enum.map(code).join(' | ');
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants !== undefined) return variants.map(typeOf).join(' or ');
  const type = Array.isArray(schema.type) ? schema.type.join(' or ') : (schema.type ?? 'any');
  if (type === 'array') return `array of ${schema.items === undefined ? 'any' : typeOf(schema.items)}${schema.minItems ? ` (at least ${schema.minItems})` : ''}`;
  if (type === 'object' && schema.properties === undefined && typeof schema.additionalProperties === 'object') {
    return `map of ${schema.propertyNames !== undefined ? typeOf(schema.propertyNames) : 'string'} → ${typeOf(schema.additionalProperties)}`;
  }
  const bounds: string[] = [];
  if (schema.minimum !== undefined && schema.minimum > -SAFE_MAX) bounds.push(`≥ ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined && schema.maximum < SAFE_MAX) bounds.push(`≤ ${schema.maximum}`);
  if (schema.format === 'uri') bounds.push('URL');
  return bounds.length === 0 ? type : `${type} (${bounds.join(', ')})`;
}

function defaultOf(schema: JsonSchema): string {
  if (schema.default === undefined) return '';
  // `{}` on a section only means "every key below takes its default".
  if (typeof schema.default === 'object' && schema.default !== null && !Array.isArray(schema.default) && Object.keys(schema.default).length === 0) return '';
  return code(schema.default);
}

function describe(path: string, schema: JsonSchema): string {
  return schema.description ?? FALLBACK_DESCRIPTIONS[path] ?? '';
}

interface Row {
  readonly path: string;
  readonly type: string;
  readonly defaultValue: string;
  readonly description: string;
}

const isObjectWithKeys = (s: JsonSchema) => s.properties !== undefined;

/** Rows for every key below `schema` (an object), depth-first; auth-like unions are left to the caller. */
function rowsOf(prefix: string, schema: JsonSchema, variantsOut: { path: string; schema: JsonSchema }[]): Row[] {
  const rows: Row[] = [];
  const required = new Set(schema.required ?? []);
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (child.oneOf !== undefined && child.oneOf.every(isObjectWithKeys)) {
      rows.push({ path, type: 'object (one of the variants below)', defaultValue: defaultOf(child), description: describe(path, child) });
      variantsOut.push({ path, schema: child });
      continue;
    }
    const requiredMark = required.has(key) ? ', **required**' : '';
    rows.push({ path, type: `${typeOf(child)}${requiredMark}`, defaultValue: defaultOf(child), description: describe(path, child) });
    if (isObjectWithKeys(child)) rows.push(...rowsOf(path, child, variantsOut));
    else if (child.items !== undefined && isObjectWithKeys(child.items)) rows.push(...rowsOf(`${path}[]`, child.items, variantsOut));
  }
  return rows;
}

function table(rows: readonly Row[]): string {
  const lines = ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |'];
  for (const row of rows) lines.push(`| \`${row.path}\` | ${cell(row.type)} | ${cell(row.defaultValue)} | ${cell(row.description)} |`);
  return lines.join('\n');
}

function variantName(schema: JsonSchema): string {
  const type = schema.properties?.type;
  if (type?.const !== undefined) return JSON.stringify(type.const);
  if (type?.enum !== undefined) return type.enum.map((v) => JSON.stringify(v)).join(' | ');
  return 'variant';
}

export function renderConfigDocs(): string {
  const root = buildJsonSchema();
  const out: string[] = [
    HEADER,
    '',
    '# Configuration reference',
    '',
    'The config file is JSON (see `config.example.json`; `config.schema.json` gives editors completion and checks: add `"$schema": "./config.schema.json"`).',
    'Unknown keys are errors. Any string value may be `${env:NAME}` (an environment variable) or `${file:/path}` (a file, one trailing newline removed, e.g. a Docker secret); secrets may also be `enc:...` values produced by `smtp-sidecar encrypt`.',
    'Check a file with `smtp-sidecar validate --config FILE` (add `--connect` to try each upstream).',
    '',
    'Keys marked **required** must be set when their section is present; every other key has the default shown (or is unset when no default is shown).',
    '',
  ];
  for (const [section, schema] of Object.entries(root.properties ?? {})) {
    if (section === '$schema') continue; // described in the introduction
    const variants: { path: string; schema: JsonSchema }[] = [];
    out.push(`## ${section}`, '');
    const intro = describe(section, schema);
    if (intro !== '') out.push(intro, '');
    let rows: Row[];
    if (isObjectWithKeys(schema)) rows = rowsOf(section, schema, variants);
    else if (schema.items !== undefined && isObjectWithKeys(schema.items)) {
      rows = [{ path: section, type: typeOf(schema), defaultValue: defaultOf(schema), description: '' }, ...rowsOf(`${section}[]`, schema.items, variants)];
    } else rows = [{ path: section, type: typeOf(schema), defaultValue: defaultOf(schema), description: '' }];
    out.push(table(rows), '');
    for (const { path, schema: union } of variants) {
      for (const variant of union.oneOf ?? []) {
        out.push(`### \`${path}\` with type ${variantName(variant)}`, '');
        const nested: { path: string; schema: JsonSchema }[] = [];
        out.push(table(rowsOf(path, variant, nested)), '');
      }
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const GENERATED_FILES = {
  jsonSchema: resolve(repoRoot, 'config.schema.json'),
  docs: resolve(repoRoot, 'docs', 'CONFIG.md'),
} as const;

function main(): void {
  writeFileSync(GENERATED_FILES.jsonSchema, renderJsonSchema());
  writeFileSync(GENERATED_FILES.docs, renderConfigDocs());
  process.stdout.write(`wrote ${GENERATED_FILES.jsonSchema}\nwrote ${GENERATED_FILES.docs}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
