/**
 * Loads the config: read the JSON file → resolve `${env:NAME}`, `${file:/path}` and `enc:`
 * references in every string → validate against the one schema → deep-freeze.
 *
 * Does: report every problem as `path: message` (ConfigError, exit code 2).
 * Never: turn a missing reference into an empty string; print a secret value.
 * Assumes: it runs at start-up and on reload only, so synchronous file reads are fine here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
    `install -D -m 0640 ${example} ${path}; or name another file with --config FILE ` +
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
): { value: unknown; problems: string[]; failedPaths: Set<string> } {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const problems: string[] = [];
  const failedPaths = new Set<string>();
  const problem = (path: PathPart[], text: string) => {
    failedPaths.add(formatPath(path));
    problems.push(`${formatPath(path)}: ${text}`);
  };
  let key: Buffer | undefined;
  let keyLoaded = false;

  const resolveString = (s: string, path: PathPart[]): string => {
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
  return { value: walk(value, []), problems, failedPaths };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** Validates an already-parsed JSON value (references resolved here too). */
export function parseConfig(raw: unknown, options: LoadOptions = {}): Config {
  const { value, problems, failedPaths } = resolveReferences(raw, options);
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

/** Reads and validates the config file at `path`. Throws ConfigError listing every problem. */
export function loadConfig(path: string, options: LoadOptions = {}): Config {
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([code === 'ENOENT' ? missingFileHint(path) : `${path}: cannot read config file (${code ?? 'error'})`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`${path}: not valid JSON (${(err as Error).message})`]);
  }
  return parseConfig(raw, options);
}
