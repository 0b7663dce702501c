/**
 * Routing: which upstreams, in which order, for which recipients.
 *
 * Does: split a message's pending recipients by the first route whose pattern matches each
 * one. The catch-all route (`recipients: ["*"]`, wherever it is listed) takes every recipient
 * that no other route matches and gives it only its own upstreams; without a catch-all,
 * recipients matching no route use every upstream in configured order. Orders each group's
 * upstreams so that those marked down come last (if all are down, all are tried).
 * Never: does I/O or reads health itself (it is passed in).
 */
import { matchesAddressPattern } from '../core/address.js';
import type { RouteConfig } from '../config/schema.js';

/** The catch-all pattern: recipients no other route matches. */
export const CATCH_ALL = '*';

export interface RouteGroup {
  readonly recipients: readonly string[];
  /** upstream names in the order to try */
  readonly upstreams: readonly string[];
  /** index of the matching route (the catch-all route's for unmatched recipients), or -1 for the default route */
  readonly routeIndex: number;
}

export type AddressMatcher = (address: string, pattern: string) => boolean;

/** Index of the catch-all route, or -1 when there is none. */
export function catchAllRouteIndex(routes: readonly RouteConfig[]): number {
  return routes.findIndex((r) => r.recipients.includes(CATCH_ALL));
}

export function planRoutes(
  recipients: readonly string[],
  routes: readonly RouteConfig[],
  allUpstreams: readonly string[],
  isDown: (upstream: string) => boolean,
  matches: AddressMatcher = matchesAddressPattern,
): RouteGroup[] {
  const catchAll = catchAllRouteIndex(routes);
  const byRoute = new Map<number, string[]>();
  for (const rcpt of recipients) {
    const found = routes.findIndex((r) => r.recipients.some((pattern) => pattern !== CATCH_ALL && matches(rcpt, pattern)));
    const index = found === -1 ? catchAll : found;
    const list = byRoute.get(index) ?? [];
    list.push(rcpt);
    byRoute.set(index, list);
  }
  return [...byRoute.entries()].map(([routeIndex, rcpts]) => ({
    recipients: rcpts,
    routeIndex,
    upstreams: orderByHealth(routeIndex === -1 ? allUpstreams : routes[routeIndex]!.upstreams, isDown),
  }));
}

/**
 * Config advice (not errors): without a catch-all route, mail that matches no route may use
 * every upstream, including the ones a route names. One warning per route, naming them.
 */
export function routingWarnings(routes: readonly RouteConfig[]): { path: string; message: string }[] {
  if (routes.length === 0 || catchAllRouteIndex(routes) !== -1) return [];
  return routes.map((r, i) => ({
    path: `routes[${i}].upstreams`,
    message:
      `${r.upstreams.map((u) => `"${u}"`).join(', ')} also carry mail whose recipients match no route (there is no catch-all route); ` +
      'to keep that mail off them, add a last route { "recipients": ["*"], "upstreams": [...] } naming the upstreams for everything else',
  }));
}

/** Upstreams that are up keep their order and come first; the ones marked down follow, in order. */
export function orderByHealth(upstreams: readonly string[], isDown: (upstream: string) => boolean): string[] {
  const up = upstreams.filter((u) => !isDown(u));
  const down = upstreams.filter((u) => isDown(u));
  return [...up, ...down];
}
