/**
 * Loads the config: read the JSON file → apply SMTP_SIDECAR_* environment variables over it
 * (env-overlay.ts) → resolve `${env:NAME}`, `${file:/path}` and `enc:` references in every
 * string → coerce the strings that came from a reference or a variable to the number or
 * boolean the schema wants there ("25" → 25, "true" → true) → validate against the one schema
 * → deep-freeze.
 *
 * Does: report every problem as `path: message` (ConfigError, exit code 2); run from the
 *   environment alone when the default file (/etc/smtp-sidecar/config.json) does not exist
 *   and SMTP_SIDECAR_* configuration variables are set (containers without a config file).
 *   Literal strings in the file are never coerced: `"port": "25"` stays an error.
 * Never: turn a missing reference into an empty string; print a secret value.
 * Assumes: it runs at start-up and on reload only, so synchronous file reads are fine here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyEnvironment, isConfigVariable } from './env-overlay.js';
import { configJsonSchema, type JsonSchemaNode, nodesAt, typesOf } from './schema-paths.js';
import { configSchema, type Config } from './schema.js';
import { decryptSecret, ENC_PREFIX, keyFromEnvironment, SecretKeyError } from './secrets.js';

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Where a packaged relay (systemd unit, Docker image) keeps its config; every command's default --config. */
export const DEFAULT_CONFIG_PATH = '/etc/smtp-sidecar/config.json';

/** The installed package's own directory (dist/config/load.js → two levels up), for hints that name shipped files. */
export const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** What to do when there is no config file: the example to start from and the commands. */
function missingFileHint(path: string): string {
  const example = join(PACKAGE_DIR, 'config.example.json');
  return (
    `${path}: there is no config file. Create it from the example and edit it: ` +
    `install -D -m 0640 ${example} ${path}; or name another file with --config FILE` +
    (path === DEFAULT_CONFIG_PATH ? ', or set the keys as SMTP_SIDECAR_* environment variables (docs/CONFIG.md) ' : ' ') +
    `(to try the relay at once: smtp-sidecar start --config ${example})`
  );
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly readFile?: (path: string) => string;
}

type PathPart = string | number;

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

const REFERENCE = /\$\{(env|file):([^}]*)\}/g;

/** Resolves references in every string of a parsed JSON value; collects problems instead of stopping. */
export function resolveReferences(
  value: unknown,
  options: LoadOptions = {},
): { value: unknown; problems: string[]; failedPaths: Set<string>; referencePaths: PathPart[][] } {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const problems: string[] = [];
  const failedPaths = new Set<string>();
  const referencePaths: PathPart[][] = [];
  const problem = (path: PathPart[], text: string) => {
    failedPaths.add(formatPath(path));
    problems.push(`${formatPath(path)}: ${text}`);
  };
  let key: Buffer | undefined;
  let keyLoaded = false;

  const resolveString = (s: string, path: PathPart[]): string => {
    if (s.search(REFERENCE) !== -1) referencePaths.push(path);
    let out = s.replace(REFERENCE, (_m, kind: string, ref: string) => {
      if (kind === 'env') {
        const v = env[ref];
        if (v === undefined || v === '') {
          problem(path, `environment variable ${ref} is not set`);
          return '';
        }
        return v;
      }
      try {
        // Docker secrets and `echo x > file` leave one trailing newline; it is never part of the secret.
        return readFile(ref).replace(/\r?\n$/, '');
      } catch (err) {
        problem(path, `cannot read file ${ref} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        return '';
      }
    });
    if (out.startsWith(ENC_PREFIX)) {
      try {
        if (!keyLoaded) {
          keyLoaded = true;
          key = keyFromEnvironment(env);
        }
        out = decryptSecret(out, key);
      } catch (err) {
        problem(path, err instanceof SecretKeyError ? err.message : 'cannot decrypt');
      }
    }
    return out;
  };

  const walk = (v: unknown, path: PathPart[]): unknown => {
    if (typeof v === 'string') return resolveString(v, path);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, [...path, k])]));
    }
    return v;
  };
  return { value: walk(value, []), problems, failedPaths, referencePaths };
}

const NUMBER = /^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;
const BOOLEANS: Readonly<Record<string, boolean>> = { true: true, false: false, yes: true, no: false, on: true, off: false, '1': true, '0': false };

/**
 * The strings at `paths` turned into the number or boolean the schema expects there (a
 * reference or an environment variable always yields a string). A field that takes a string
 * keeps it; a string that is not a number or boolean is left for the schema to refuse.
 */
function coerceAt(value: unknown, paths: readonly PathPart[][], root: () => JsonSchemaNode): unknown {
  let out = value;
  for (const path of paths) {
    const current = path.reduce<unknown>((v, k) => (v === null || typeof v !== 'object' ? undefined : (v as Record<PathPart, unknown>)[k]), out);
    if (typeof current !== 'string') continue;
    const types = typesOf(nodesAt(root(), path));
    if (types.has('string')) continue;
    let coerced: unknown = current;
    if (types.has('number') && NUMBER.test(current)) coerced = Number(current);
    else if (types.has('boolean') && BOOLEANS[current.trim().toLowerCase()] !== undefined) coerced = BOOLEANS[current.trim().toLowerCase()];
    if (coerced !== current) out = replaceAt(out, path, coerced);
  }
  return out;
}

function replaceAt(tree: unknown, path: readonly PathPart[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [PathPart, ...PathPart[]];
  const copy = (Array.isArray(tree) ? [...tree] : { ...(tree as object) }) as Record<PathPart, unknown>;
  copy[head] = replaceAt(copy[head], rest, value);
  return copy;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/**
 * Validates an already-parsed JSON value (references resolved and coerced here too).
 * `fromEnvironment`: what applyEnvironment set (strings to coerce) and the problems it found.
 */
export function parseConfig(
  raw: unknown,
  options: LoadOptions = {},
  fromEnvironment: { readonly coercePaths: readonly PathPart[][]; readonly problems: readonly string[] } = { coercePaths: [], problems: [] },
): Config {
  const resolved = resolveReferences(raw, options);
  const { problems, failedPaths } = resolved;
  problems.unshift(...fromEnvironment.problems);
  let schema: JsonSchemaNode | undefined;
  const root = () => (schema ??= configJsonSchema());
  const value = coerceAt(resolved.value, [...resolved.referencePaths, ...fromEnvironment.coercePaths], root);
  const result = configSchema.safeParse(value);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) problems.push(`${formatPath([...issue.path, k])}: unknown key`);
      } else if (!failedPaths.has(formatPath(issue.path))) {
        // a reference that failed to resolve was already reported; its empty stand-in is not a second problem
        problems.push(`${formatPath(issue.path)}: ${issue.message}`);
      }
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return deepFreeze(result.data);
}

/**
 * Reads the config file at `path`, applies the SMTP_SIDECAR_* variables of `options.env` over
 * it and validates the result. Throws ConfigError listing every problem.
 */
export function loadConfig(path: string, options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const root = configJsonSchema();
  let text: string | undefined;
  try {
    text = readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const envOnly = code === 'ENOENT' && path === DEFAULT_CONFIG_PATH && Object.keys(env).some((name) => isConfigVariable(name, root));
    if (!envOnly) throw new ConfigError([code === 'ENOENT' ? missingFileHint(path) : `${path}: cannot read config file (${code ?? 'error'})`]);
  }
  let raw: unknown = {};
  if (text !== undefined) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError([`${path}: not valid JSON (${(err as Error).message})`]);
    }
  }
  const overlay = applyEnvironment(raw, env, root);
  return parseConfig(overlay.value, options, overlay);
}
