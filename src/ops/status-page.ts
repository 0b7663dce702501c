/**
 * The status page at `/`: its static files (src/ops/page/, copied next to the built module by
 * `npm run build`) and the one JSON document the page polls (`GET /admin/overview`, behind the
 * admin token like every /admin route).
 *
 * Does: read the page's three files once and keep them in memory; build the overview from
 *   cheap sources only: the spool's directory listings plus the details of at most
 *   `OVERVIEW_LIMIT` queued and failed messages (never every spool file), the in-memory upstream
 *   health, token status, recent tries and counters.
 * Never: put the admin token in a file it serves (the page takes it from the URL fragment,
 *   which browsers never send); serve anything but the three page files (no directory paths
 *   from the request reach the file system); load anything from another origin (the CSP
 *   allows 'self' only, so no CDN can creep in).
 * Assumes: the page directory sits next to this module (src/ops/page in tests, dist/ops/page
 *   in a build or a production install).
 */
import { readFile } from 'node:fs/promises';
import type { MetricTotals } from './metrics.js';
import type { RecentTry } from './recent.js';
import type { Overview } from './spool-admin.js';

/** queued and failed messages shown with details on one page view (the totals count them all) */
export const OVERVIEW_LIMIT = 50;

const ASSETS: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
};

/** Response headers of every page file: nothing from elsewhere, no framing, no referrer. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export function isPageAsset(path: string): boolean {
  return Object.hasOwn(ASSETS, path);
}

export interface PageAsset {
  readonly body: string;
  readonly contentType: string;
}

/** The page files, read once from `dir` (default: ./page next to this module). */
export function pageAssets(dir: URL = new URL('./page/', import.meta.url)): (path: string) => Promise<PageAsset | undefined> {
  const cache = new Map<string, Promise<PageAsset>>();
  return (path) => {
    const asset = ASSETS[path];
    if (asset === undefined) return Promise.resolve(undefined);
    let loaded = cache.get(path);
    if (loaded === undefined) {
      loaded = readFile(new URL(asset.file, dir), 'utf8').then((body) => ({ body, contentType: asset.type }));
      loaded.catch(() => cache.delete(path)); // a missing file is retried on the next request
      cache.set(path, loaded);
    }
    return loaded;
  };
}

export interface OverviewSources {
  readonly spool: (limit: number) => Promise<Overview>;
  readonly upstreams: () => readonly object[];
  readonly tokens: () => readonly object[];
  readonly recent: () => readonly RecentTry[];
  readonly totals: () => Promise<MetricTotals>;
  readonly now: () => number;
}

/** What one page refresh shows. */
export async function buildOverview(sources: OverviewSources): Promise<object> {
  const [spool, totals] = await Promise.all([sources.spool(OVERVIEW_LIMIT), sources.totals()]);
  return {
    now: new Date(sources.now()).toISOString(),
    queued: spool.queued,
    failed: spool.failed,
    upstreams: sources.upstreams(),
    tokens: sources.tokens(),
    recent: sources.recent(),
    totals,
  };
}
