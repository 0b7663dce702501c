/**
 * Admission by per-upstream limits, decided while the client waits at DATA: a message that no
 * upstream of some recipient's route can ever take (each one's own attachment limits refuse it)
 * would otherwise be accepted with 250 and retried until it expires.
 *
 * Does: group the recipients by route (routing/route.ts, health ignored: a down upstream may come
 * back, a limit does not change), and for the first group whose every upstream refuses the
 * message by its limits, return the error code and the text that names the limit (the most
 * permissive limit of that group, so the sender learns what would pass).
 * Never: name an upstream or a host in the text (it goes to the SMTP client); refuse when at
 * least one upstream of every group could take the message.
 * Assumes: `counted` was counted the way the global limits count (core/attachments.ts).
 */
import { type AttachmentLimits, type CountedAttachments, exceededLimit, overLimitText } from '../core/attachments.js';
import type { RouteConfig } from '../config/schema.js';
import { planRoutes } from './route.js';

export interface LimitRefusal {
  readonly code: 'E_ATTACHMENT_COUNT' | 'E_ATTACHMENT_SIZE';
  readonly detail: string;
}

export function refusalByUpstreamLimits(
  recipients: readonly string[],
  routes: readonly RouteConfig[],
  upstreams: readonly { readonly name: string; readonly limits?: AttachmentLimits | undefined }[],
  counted: CountedAttachments,
): LimitRefusal | undefined {
  if (upstreams.length === 0) return undefined;
  const byName = new Map(upstreams.map((u) => [u.name, u]));
  const groups = planRoutes(recipients, routes, upstreams.map((u) => u.name), () => false);
  for (const group of groups) {
    const eligible = group.upstreams.flatMap((name) => byName.get(name) ?? []);
    if (eligible.length === 0) continue;
    const refusals = eligible.map((u) => ({ limits: u.limits ?? {}, exceeded: exceededLimit(counted, u.limits ?? {}) }));
    if (refusals.some((r) => r.exceeded === undefined)) continue;
    const byCount = refusals.filter((r) => r.exceeded === 'count');
    if (byCount.length > 0) {
      const most = Math.max(...byCount.map((r) => r.limits.maxAttachments ?? 0));
      return { code: 'E_ATTACHMENT_COUNT', detail: overLimitText(counted, 'count', { maxAttachments: most }) };
    }
    const most = Math.max(...refusals.map((r) => r.limits.maxAttachmentsTotalMB ?? 0));
    return { code: 'E_ATTACHMENT_SIZE', detail: overLimitText(counted, 'size', { maxAttachmentsTotalMB: most }) };
  }
  return undefined;
}
