/**
 * What a reload (SIGHUP or --watch) changes, decided from the two configs alone.
 *
 * Does: list the changed keys (never values); name those that take effect only at the next start
 * (the bound listener, the spool directory, the logger); say whether the upstream set must be
 * rebuilt and which existing upstreams' settings changed (their down marks are cleared: they
 * were about the old settings).
 * Never: touches anything running (app.ts carries the plan out).
 */
import { changedKeys, changedUpstreams } from './diff.js';
import type { Config } from './schema.js';

/** Keys the running listener, spool or logger cannot change: they take effect at the next start. */
export const RESTART_KEYS: readonly string[] = [
  'listen.host',
  'listen.port',
  'listen.maxMessageSizeMB',
  'listen.maxClients',
  'listen.socketTimeoutSeconds',
  'listen.shutdownGraceSeconds',
  'delivery.spoolDir',
  'log.level',
  'log.format',
];

/** Keys that the upstream set is built from (transports read the EHLO name and the trace switch). */
const UPSTREAM_SET_KEYS: readonly string[] = ['upstreams', 'listen.hostname', 'log.trace'];

export interface ReloadPlan {
  /** every changed leaf path, sorted */
  readonly changed: readonly string[];
  /** the changed paths that wait for the next start */
  readonly needsRestart: readonly string[];
  /** build a new upstream set (and retire the old one) */
  readonly rebuildUpstreams: boolean;
  /** upstreams present before and after whose settings changed */
  readonly changedUpstreams: readonly string[];
}

/** `key` is `root` or lies below it (`root.x`, `root[0]`). */
function isUnder(key: string, root: string): boolean {
  return key === root || key.startsWith(`${root}.`) || key.startsWith(`${root}[`);
}

export function planReload(previous: Config, next: Config): ReloadPlan {
  const changed = changedKeys(previous, next);
  return {
    changed,
    needsRestart: changed.filter((key) => RESTART_KEYS.some((root) => isUnder(key, root))),
    rebuildUpstreams: changed.some((key) => UPSTREAM_SET_KEYS.some((root) => isUnder(key, root))),
    changedUpstreams: changedUpstreams(previous, next),
  };
}
