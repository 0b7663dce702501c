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

export interface QidSequenceOptions {
  /** prefixes already used by messages in the spool (`qidPrefix`): never drawn again */
  readonly avoid?: ReadonlySet<string>;
  /** draws a random prefix (tests force a collision with it) */
  readonly drawPrefix?: () => string;
}

/** The per-start prefix inside a 16-character qid (characters 10-12), or undefined for another shape. */
export function qidPrefix(qid: string): string | undefined {
  return qid.length === TIME_DIGITS + RANDOM_DIGITS ? qid.slice(TIME_DIGITS, TIME_DIGITS + QID_PREFIX_DIGITS) : undefined;
}

/**
 * The default qid source: the same 16-character shape as `makeQid` (9 base36 digits of
 * milliseconds, then 7 more), but the 7 are a random prefix drawn once per spool plus a
 * counter, so a message costs no `randomBytes` call. Sortable by creation time (and, within
 * one millisecond, by creation order).
 * Unique, because a colliding qid would overwrite a queued message when it is renamed into
 * queue/: the time part never goes back within a process (a clock stepped back by NTP would
 * otherwise repeat time + counter pairs), so only 1.68 million qids in one millisecond could
 * repeat; and the prefix is never one that a message already in the spool carries (`avoid`,
 * given by the spool after recovery), so a clock that went back across a restart cannot
 * repeat an old qid either. A second process on the same `dir` is refused by spool-lock.ts.
 */
export function createQidSequence(clock: Clock, options: QidSequenceOptions = {}): () => string {
  const draw = options.drawPrefix ?? (() => makeQid(clock.now()).slice(-QID_PREFIX_DIGITS));
  let prefix = draw();
  // 46,656 prefixes and one used per start: a free one is found within a few draws
  for (let tries = 0; options.avoid?.has(prefix) === true && tries < 10_000; tries += 1) prefix = draw();
  let lastMs = 0;
  let counter = 0;
  return () => {
    lastMs = Math.max(lastMs, clock.now());
    const time = timeDigits(lastMs);
    const sequence = counter.toString(36).padStart(QID_COUNTER_DIGITS, '0');
    counter = (counter + 1) % QID_COUNTER_WRAP;
    return time + prefix + sequence;
  };
}

