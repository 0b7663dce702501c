/**
 * Routing: which upstreams, in which order, for which recipients.
 *
 * Does: split a message's pending recipients by the first route whose pattern matches each
 * one (recipients matching no route use every upstream in configured order), and order each
 * group's upstreams so that those marked down come last (if all are down, all are tried).
 * Never: does I/O or reads health itself (it is passed in).
 */
import { matchesAddressPattern } from '../core/address.js';
import type { RouteConfig } from '../config/schema.js';

export interface RouteGroup {
  readonly recipients: readonly string[];
  /** upstream names in the order to try */
  readonly upstreams: readonly string[];
  /** index of the matching route, or -1 for the default route */
  readonly routeIndex: number;
}

export type AddressMatcher = (address: string, pattern: string) => boolean;

export function planRoutes(
  recipients: readonly string[],
  routes: readonly RouteConfig[],
  allUpstreams: readonly string[],
  isDown: (upstream: string) => boolean,
  matches: AddressMatcher = matchesAddressPattern,
): RouteGroup[] {
  const byRoute = new Map<number, string[]>();
  for (const rcpt of recipients) {
    const index = routes.findIndex((r) => r.recipients.some((pattern) => matches(rcpt, pattern)));
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

/** Upstreams that are up keep their order and come first; the ones marked down follow, in order. */
export function orderByHealth(upstreams: readonly string[], isDown: (upstream: string) => boolean): string[] {
  const up = upstreams.filter((u) => !isDown(u));
  const down = upstreams.filter((u) => isDown(u));
  return [...up, ...down];
}
