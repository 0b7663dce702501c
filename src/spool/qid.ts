/**
 * Queue ids: short, sortable, unique, filename-safe.
 *
 * Does: build a qid from the clock's time (base36, fixed width, so qids sort by
 * creation time) and random base36 digits; check that a string is a safe qid.
 * Never: accept a qid that could name a path outside the spool (only [A-Za-z0-9]).
 * Assumes: times after 1970 and before year 5188 (9 base36 digits of milliseconds).
 */
import { randomBytes } from 'node:crypto';

const TIME_DIGITS = 9;
const RANDOM_DIGITS = 7;
const QID_PATTERN = /^[A-Za-z0-9]+$/;
/** long enough for any qid we make, short enough that a file name stays well under limits */
const MAX_QID_LENGTH = 64;

/** A 16-character qid, e.g. `0mjv5q1c0k3f9x2a`. */
export function makeQid(nowMs: number): string {
  const time = Math.max(0, Math.floor(nowMs)).toString(36).padStart(TIME_DIGITS, '0').slice(-TIME_DIGITS);
  const random = randomBytes(8).readBigUInt64BE().toString(36).padStart(RANDOM_DIGITS, '0').slice(-RANDOM_DIGITS);
  return time + random;
}

export function isValidQid(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_QID_LENGTH && QID_PATTERN.test(value);
}
