/**
 * Queue ids: short, sortable, unique, filename-safe.
 *
 * Does: build a qid from the clock's time (base36, fixed width, so qids sort by
 * creation time) and random base36 digits; check that a string is a safe qid.
 * Never: accept a qid that could name a path outside the spool (only [A-Za-z0-9]).
 * Assumes: times after 1970 and before year 5188 (9 base36 digits of milliseconds).
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';

const TIME_DIGITS = 9;
const RANDOM_DIGITS = 7;
const QID_PATTERN = /^[A-Za-z0-9]+$/;
/** long enough for any qid we make, short enough that a file name stays well under limits */
const MAX_QID_LENGTH = 64;

/** A 16-character qid, e.g. `0mjv5q1c0k3f9x2a`. */
const timeDigits = (nowMs: number): string => Math.max(0, Math.floor(nowMs)).toString(36).padStart(TIME_DIGITS, '0').slice(-TIME_DIGITS);

export function makeQid(nowMs: number): string {
  const time = timeDigits(nowMs);
  const random = randomBytes(8).readBigUInt64BE().toString(36).padStart(RANDOM_DIGITS, '0').slice(-RANDOM_DIGITS);
  return time + random;
}

export function isValidQid(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_QID_LENGTH && QID_PATTERN.test(value);
}

const QID_PREFIX_DIGITS = 3;
const QID_COUNTER_DIGITS = 4;
const QID_COUNTER_WRAP = 36 ** QID_COUNTER_DIGITS;

/**
 * The default qid source: the same 16-character shape as `makeQid` (9 base36 digits of
 * milliseconds, then 7 more), but the 7 are a random prefix drawn once per spool plus a
 * counter, so a message costs no `randomBytes` call. Unique within this spool unless
 * 1.68 million qids are made in one millisecond; sortable by creation time (and, within
 * one millisecond, by creation order). A second process on the same `dir` is not
 * supported (see Assumes); even then the exclusive open refuses a colliding qid.
 */
export function createQidSequence(clock: Clock): () => string {
  const prefix = makeQid(clock.now()).slice(-QID_PREFIX_DIGITS);
  let counter = 0;
  return () => {
    const time = timeDigits(clock.now());
    const sequence = counter.toString(36).padStart(QID_COUNTER_DIGITS, '0');
    counter = (counter + 1) % QID_COUNTER_WRAP;
    return time + prefix + sequence;
  };
}

