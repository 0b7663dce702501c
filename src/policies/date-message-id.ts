/**
 * Date and Message-ID: add them when the message has none (RFC 5322 requires Date; M365
 * and spam filters score messages without a Message-ID).
 *
 * Does: `setIfAbsent` Date (RFC 5322 format, from the injected clock, UTC) and Message-ID
 *   (`<local@listen.hostname>`, local part from the injected generator).
 * Never: replace a Date or Message-ID the message already has.
 * Assumes: facts.headerNames lists the top-level fields, lower-cased.
 */
import type { HeaderEdit } from '../core/types.js';
import { edit, pass } from '../core/verdict.js';
import type { Policy } from './types.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

const two = (n: number): string => String(n).padStart(2, '0');

/** `Thu, 01 Jan 2026 00:00:00 +0000` */
export function formatRfc5322Date(date: Date): string {
  const day = DAYS[date.getUTCDay()] ?? 'Sun';
  const month = MONTHS[date.getUTCMonth()] ?? 'Jan';
  return `${day}, ${two(date.getUTCDate())} ${month} ${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}

export const dateMessageIdPolicy: Policy = {
  name: 'date-message-id',
  apply: ({ facts, now, hostname, newMessageIdLocalPart }) => {
    const present = new Set(facts.headerNames);
    const edits: HeaderEdit[] = [];
    if (!present.has('date')) edits.push({ op: 'setIfAbsent', name: 'Date', value: formatRfc5322Date(now) });
    if (!present.has('message-id')) {
      edits.push({ op: 'setIfAbsent', name: 'Message-ID', value: `<${newMessageIdLocalPart()}@${hostname}>` });
    }
    return edits.length === 0 ? pass() : edit(edits);
  },
};
