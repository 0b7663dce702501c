import { describe, expect, it } from 'vitest';
import { SessionGuard, type CutReason } from '../../../src/intake/session-guard.js';

function setup() {
  let now = 0;
  const cuts: CutReason[] = [];
  const guard = new SessionGuard(
    { maxSessionSeconds: 3600, maxJunkCommands: 3, idleSeconds: 60, minDataRateBytesPerSecond: 100, minDataRateAfterSeconds: 10 },
    { now: () => now },
    (_id, reason) => cuts.push(reason),
  );
  guard.opened('s');
  return { guard, cuts, advance: (ms: number) => (now += ms) };
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
});
