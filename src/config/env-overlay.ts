/**
 * Configuration from the environment: every key can be set as SMTP_SIDECAR_<PATH>, the path's
 * keys joined with a double underscore, array items by index:
 *   SMTP_SIDECAR_LISTEN__PORT=25               → listen.port
 *   SMTP_SIDECAR_LISTEN__ALLOWED_CLIENTS=10.0.0.0/8,127.0.0.0/8   (a list: commas, or JSON)
 *   SMTP_SIDECAR_UPSTREAMS__0__HOST=smtp.office365.com            → upstreams[0].host
 *   SMTP_SIDECAR_UPSTREAMS='[{"name":"m365",...}]'                (a whole value as JSON)
 *   SMTP_SIDECAR_MESSAGE__CONFIDENTIAL__HEADERS__SENSITIVITY=...  (a map key as written)
 * Key names match case-insensitively with underscores ignored (ALLOWED_CLIENTS, ALLOWEDCLIENTS
 * and allowedClients are the same key).
 *
 * Does: set each variable's value at its path over the file's value (the file stays the base;
 *   variables are applied in name order, so SMTP_SIDECAR_UPSTREAMS comes before
 *   SMTP_SIDECAR_UPSTREAMS__0__HOST); return the paths of the plain string values so that the
 *   loader coerces them to the schema's number or boolean; report a variable that names no key
 *   (a typo) with the keys that exist there.
 * Never: read variables without the prefix; treat SMTP_SIDECAR_KEY, SMTP_SIDECAR_KEY_FILE,
 *   SMTP_SIDECAR_RELAY (or any other name without "__" that is not a top-level key) as config;
 *   put a value in a problem message (it may be a secret).
 * Assumes: `root` is the config's JSON Schema (schema-paths.ts).
 */
import { childNodes, type JsonSchemaNode, typesOf, variantsOf } from './schema-paths.js';

export const ENV_PREFIX = 'SMTP_SIDECAR_';

type PathPart = string | number;

export interface EnvOverlayResult {
  readonly value: unknown;
  /** paths of values set from plain strings (to be coerced to the schema's type) */
  readonly coercePaths: PathPart[][];
  readonly problems: string[];
  /** the variables that were applied, in order */
  readonly applied: string[];
}

const normalize = (key: string): string => key.toLowerCase().replace(/_/g, '');

/** The config key for an environment name segment below `nodes`, or undefined. */
function keyFor(nodes: readonly JsonSchemaNode[], segment: string): PathPart | undefined {
  const variants = nodes.flatMap(variantsOf);
  if (/^\d+$/.test(segment) && variants.some((n) => n.items !== undefined)) return Number(segment);
  for (const node of variants) {
    for (const name of Object.keys(node.properties ?? {})) if (normalize(name) === normalize(segment)) return name;
  }
  if (variants.some((n) => typeof n.additionalProperties === 'object')) return segment;
  return undefined;
}

function keysBelow(nodes: readonly JsonSchemaNode[]): string {
  const names = new Set(nodes.flatMap(variantsOf).flatMap((n) => Object.keys(n.properties ?? {})));
  if (nodes.flatMap(variantsOf).some((n) => n.items !== undefined)) names.add('<index>');
  return [...names].join(', ');
}

/** `setAt(tree, ['a', 0, 'b'], v)`: creates the objects and arrays on the way; returns the new tree. */
function setAt(tree: unknown, path: readonly PathPart[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [PathPart, ...PathPart[]];
  const container: Record<string | number, unknown> | unknown[] =
    typeof head === 'number' ? (Array.isArray(tree) ? [...(tree as unknown[])] : []) : tree !== null && typeof tree === 'object' && !Array.isArray(tree) ? { ...(tree as object) } : {};
  (container as Record<string | number, unknown>)[head] = setAt((container as Record<string | number, unknown>)[head], rest, value);
  return container;
}

/** Whether an environment variable is meant as configuration (and which top-level key it names). */
export function isConfigVariable(name: string, root: JsonSchemaNode): boolean {
  if (!name.startsWith(ENV_PREFIX)) return false;
  const rest = name.slice(ENV_PREFIX.length);
  return rest.includes('__') || keyFor([root], rest) !== undefined;
}

export function applyEnvironment(
  base: unknown,
  env: NodeJS.ProcessEnv,
  root: JsonSchemaNode,
  options: { readonly sections?: readonly string[] } = {},
): EnvOverlayResult {
  let value: unknown = base ?? {};
  const coercePaths: PathPart[][] = [];
  const problems: string[] = [];
  const applied: string[] = [];
  for (const name of Object.keys(env).filter((n) => isConfigVariable(n, root)).sort()) {
    const raw = env[name];
    if (raw === undefined) continue;
    const segments = name.slice(ENV_PREFIX.length).split('__');
    const path: PathPart[] = [];
    let nodes: JsonSchemaNode[] = [root];
    let unknown: string | undefined;
    let skip = false;
    for (const segment of segments) {
      const key = segment === '' ? undefined : keyFor(nodes, segment);
      if (key === undefined) {
        const where = path.length === 0 ? 'the config' : path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
        unknown = `environment variable ${name}: ${where} has no key "${segment}" (keys: ${keysBelow(nodes)})`;
        break;
      }
      path.push(key);
      if (path.length === 1 && options.sections !== undefined && !options.sections.includes(String(key))) {
        skip = true;
        break;
      }
      nodes = childNodes(nodes, key);
    }
    if (skip) continue;
    if (unknown !== undefined) {
      problems.push(unknown);
      continue;
    }
    const types = typesOf(nodes);
    const trimmed = raw.trim();
    if ((types.has('array') || types.has('object')) && (trimmed.startsWith('[') || trimmed.startsWith('{'))) {
      try {
        value = setAt(value, path, JSON.parse(trimmed));
      } catch (err) {
        problems.push(`environment variable ${name}: not valid JSON (${(err as Error).message})`);
        continue;
      }
    } else if (types.has('array') && !types.has('string')) {
      value = setAt(value, path, trimmed === '' ? [] : trimmed.split(',').map((item) => item.trim()));
    } else {
      value = setAt(value, path, raw);
      coercePaths.push(path);
    }
    applied.push(name);
  }
  return { value, coercePaths, problems, applied };
}
