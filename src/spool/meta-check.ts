/**
 * Sanity check of a spooled message's JSON metadata.
 *
 * Does: parse bytes into a SpoolMeta and check the fields the delivery half relies on
 * (version 1, qid equal to the file's qid, an envelope with a sender string and a
 * recipient list, a parseable receivedAt). Returns a value: the meta, or why not.
 * Never: throw; repair a bad meta.
 * Assumes: the rest of SpoolMeta was written by this relay (only the load-bearing
 * fields are checked).
 */
import type { SpoolMeta } from '../core/types.js';

export type MetaCheck = { readonly ok: true; readonly meta: SpoolMeta } | { readonly ok: false; readonly problem: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function checkMeta(bytes: Buffer, expectedQid: string): MetaCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  if (!isRecord(parsed)) return { ok: false, problem: 'not an object' };
  if (parsed['version'] !== 1) return { ok: false, problem: 'version is not 1' };
  if (parsed['qid'] !== expectedQid) return { ok: false, problem: 'qid does not match the file name' };
  const envelope = parsed['envelope'];
  if (!isRecord(envelope)) return { ok: false, problem: 'no envelope' };
  if (typeof envelope['mailFrom'] !== 'string') return { ok: false, problem: 'envelope.mailFrom is not a string' };
  const rcptTo = envelope['rcptTo'];
  if (!Array.isArray(rcptTo) || !rcptTo.every((address) => typeof address === 'string')) {
    return { ok: false, problem: 'envelope.rcptTo is not a list of addresses' };
  }
  const receivedAt = parsed['receivedAt'];
  if (typeof receivedAt !== 'string' || Number.isNaN(Date.parse(receivedAt))) return { ok: false, problem: 'receivedAt is not a date' };
  return { ok: true, meta: parsed as unknown as SpoolMeta };
}

/** Oldest first; qid breaks ties (qids sort by creation time). */
export function compareByReceivedAt(a: SpoolMeta, b: SpoolMeta): number {
  const byTime = Date.parse(a.receivedAt) - Date.parse(b.receivedAt);
  if (byTime !== 0) return byTime;
  return a.qid < b.qid ? -1 : a.qid > b.qid ? 1 : 0;
}
