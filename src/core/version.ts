/**
 * The version of the installed package (package.json's "version").
 *
 * Does: read package.json two levels above this file (src/core/version.ts and
 *   dist/core/version.js both sit there), for `--version` and the status page.
 * Never: throw ("unknown" when package.json cannot be read).
 */
import { createRequire } from 'node:module';

export function packageVersion(): string {
  try {
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
