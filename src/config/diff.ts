/**
 * Which config keys changed between two configs, for the `config.changed` audit line.
 * Does: list changed leaf paths (`upstreams[0].auth.pass`); name the upstreams whose own
 * settings changed (by name, wherever they sit in the list); never returns values, so secrets
 * can only ever appear as "changed".
 */
import { formatPath } from './load.js';
import type { Config } from './schema.js';

function flatten(value: unknown, path: (string | number)[], out: Map<string, string>): void {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(formatPath(path), '[]');
    value.forEach((v, i) => flatten(v, [...path, i], out));
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) out.set(formatPath(path), '{}');
    for (const [k, v] of entries) flatten(v, [...path, k], out);
  } else {
    out.set(formatPath(path), JSON.stringify(value));
  }
}

export function changedKeys(before: unknown, after: unknown): string[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(before, [], a);
  flatten(after, [], b);
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k)).sort();
}

/** Names of upstreams present in both configs whose settings differ (a new name is not "changed"). */
export function changedUpstreams(before: Config, after: Config): string[] {
  const old = new Map(before.upstreams.map((u) => [u.name, JSON.stringify(u)]));
  return after.upstreams.filter((u) => old.has(u.name) && old.get(u.name) !== JSON.stringify(u)).map((u) => u.name);
}
