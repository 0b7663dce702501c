import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { SessionGuard, type CutReason } from '../../../src/intake/session-guard.js';

function setup() {
  const clock = new ManualClock(0);
  const cuts: CutReason[] = [];
  const guard = new SessionGuard(
    { maxSessionSeconds: 3600, maxJunkCommands: 3, idleSeconds: 60, minDataRateBytesPerSecond: 100, minDataRateAfterSeconds: 10 },
    clock,
    (_id, reason) => cuts.push(reason),
  );
  guard.opened('s');
  return { guard, cuts, clock, advance: (ms: number) => clock.advance(ms) };
}

describe(SessionGuard.name, () => {
  it('time the relay holds DATA back does not count against the client rate', () => {
    const { guard, cuts, advance } = setup();
    guard.dataStarted('s');
    guard.dataPaused('s');
    advance(30_000); // waiting for the in-flight budget
    guard.dataResumed('s');
    advance(2_000);
    guard.dataBytes('s', 1024); // 1 KiB in the 2 s the relay was reading
    expect(cuts).toEqual([]);
    advance(20_000);
    guard.dataBytes('s', 1100); // 1,100 bytes in 22 s of reading: 50 bytes/s
    expect(cuts).toEqual(['slow-data']);
    guard.closed('s');
  });

  it('MAIL, RCPT and DATA are progress; NOOP and RSET are junk; a message resets the count', () => {
    const { guard, cuts } = setup();
    for (const c of ['EHLO', 'NOOP', 'RSET', 'MAIL', 'RCPT', 'DATA']) guard.command('s', c);
    guard.dataStarted('s');
    guard.dataEnded('s');
    for (const c of ['NOOP', 'NOOP', 'NOOP']) guard.command('s', c);
    expect(cuts).toEqual([]);
    guard.command('s', 'XYZZY');
    expect(cuts).toEqual(['junk-commands']);
    guard.closed('s');
  });

  it('lifetime: an idle session is cut when maxSessionSeconds runs out, not a millisecond before', () => {
    const { guard, cuts, advance } = setup();
    advance(3_600_000 - 1);
    expect(cuts).toEqual([]);
    advance(1);
    expect(cuts).toEqual(['lifetime']);
    guard.closed('s');
  });

  it('lifetime: a session in the middle of DATA is cut at its next command, and a closed session leaves no timer', () => {
    const { guard, cuts, clock, advance } = setup();
    guard.dataStarted('s');
    guard.dataBytes('s', 10_000_000);
    advance(3_600_000);
    expect(cuts).toEqual([]); // never in the middle of a message
    guard.dataEnded('s');
    guard.command('s', 'MAIL');
    expect(cuts).toEqual(['lifetime']);
    guard.closed('s');
    guard.opened('t');
    guard.closed('t');
    expect(clock.pendingTimers).toBe(0);
  });
});
