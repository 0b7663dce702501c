/**
 * Per-session caps that keep clients from holding listener slots without sending mail.
 *
 * Does: decide when a session must be cut off with a 421, for four reasons:
 *   - `lifetime`: the session is older than `maxSessionSeconds` (checked at expiry when no
 *     DATA is in progress, else at the next command after that DATA);
 *   - `junk-commands`: more than `maxJunkCommands` commands that move no mail (NOOP, RSET,
 *     HELO/EHLO, VRFY, EXPN, HELP, unknown) since the session's last message;
 *   - `no-progress`: a junk command arrives when nothing moved mail (MAIL, RCPT, DATA, message
 *     bytes) for `idleSeconds` (the socket timeout): a NOOP every 20 s no longer keeps an idle
 *     session alive past the idle timeout;
 *   - `slow-data`: a DATA phase averages fewer than `minDataRateBytesPerSecond` once it has
 *     run for `minDataRateAfterSeconds` (1 byte/s with a line feed every 30 bytes is cut off);
 *     time the relay itself stops reading (waiting for the in-flight budget) does not count.
 *   Calls `cut(sessionId, reason, reply)`; the listener sends the reply and closes.
 * Never: cut a session in the middle of a DATA phase for lifetime or commands (only for its
 *   rate); count MAIL, RCPT, DATA or QUIT as junk.
 * Assumes: `command` is called for every command line the SMTP server parses (not for DATA
 *   lines), `dataStarted`/`dataBytes`/`dataEnded` around each DATA phase, `closed` once.
 */
import type { Clock, Timer } from '../core/clock.js';

export interface SessionLimits {
  readonly maxSessionSeconds: number;
  readonly maxJunkCommands: number;
  readonly idleSeconds: number;
  /** 0: no minimum */
  readonly minDataRateBytesPerSecond: number;
  readonly minDataRateAfterSeconds: number;
}

export type CutReason = 'lifetime' | 'junk-commands' | 'no-progress' | 'slow-data';

interface SessionState {
  readonly openedAtMs: number;
  lastProgressAtMs: number;
  junk: number;
  dataStartedAtMs: number | undefined;
  /** time the relay itself held the DATA back (not the client's slowness) */
  dataPausedMs: number;
  dataPausedAtMs: number | undefined;
  expired: boolean;
  cut: boolean;
  timer: Timer | undefined;
}

const PROGRESS = new Set(['MAIL', 'RCPT', 'DATA', 'QUIT', 'BDAT']);

export class SessionGuard {
  readonly #sessions = new Map<string, SessionState>();

  constructor(
    private readonly limits: SessionLimits,
    private readonly clock: Clock,
    private readonly cut: (sessionId: string, reason: CutReason, reply: string) => void,
  ) {}

  opened(id: string): void {
    const now = this.clock.now();
    const state: SessionState = { openedAtMs: now, lastProgressAtMs: now, junk: 0, dataStartedAtMs: undefined, dataPausedMs: 0, dataPausedAtMs: undefined, expired: false, cut: false, timer: undefined };
    state.timer = this.clock.after(this.limits.maxSessionSeconds * 1000, () => {
      state.expired = true;
      if (state.dataStartedAtMs === undefined) this.#cut(id, state, 'lifetime');
    });
    this.#sessions.set(id, state);
  }

  command(id: string, name: string): void {
    const state = this.#sessions.get(id);
    if (state === undefined || state.cut) return;
    const now = this.clock.now();
    if (state.expired) return this.#cut(id, state, 'lifetime');
    if (PROGRESS.has(name)) {
      state.lastProgressAtMs = now;
      return;
    }
    state.junk += 1;
    if (state.junk > this.limits.maxJunkCommands) return this.#cut(id, state, 'junk-commands');
    if (now - state.lastProgressAtMs > this.limits.idleSeconds * 1000) this.#cut(id, state, 'no-progress');
  }

  dataStarted(id: string): void {
    const state = this.#sessions.get(id);
    if (state === undefined) return;
    state.dataStartedAtMs = this.clock.now();
    state.dataPausedMs = 0;
    state.dataPausedAtMs = undefined;
  }

  /** The relay stops reading the DATA (backpressure of its own): that time is not the client's. */
  dataPaused(id: string): void {
    const state = this.#sessions.get(id);
    if (state !== undefined && state.dataPausedAtMs === undefined) state.dataPausedAtMs = this.clock.now();
  }

  dataResumed(id: string): void {
    const state = this.#sessions.get(id);
    if (state === undefined || state.dataPausedAtMs === undefined) return;
    state.dataPausedMs += this.clock.now() - state.dataPausedAtMs;
    state.dataPausedAtMs = undefined;
  }

  /** `totalBytes`: message bytes received in this DATA phase so far */
  dataBytes(id: string, totalBytes: number): void {
    const state = this.#sessions.get(id);
    if (state === undefined || state.cut || state.dataStartedAtMs === undefined) return;
    const now = this.clock.now();
    state.lastProgressAtMs = now;
    const { minDataRateBytesPerSecond: minRate, minDataRateAfterSeconds: afterSeconds } = this.limits;
    const elapsedSeconds = (now - state.dataStartedAtMs - state.dataPausedMs) / 1000;
    if (minRate > 0 && elapsedSeconds > afterSeconds && totalBytes / elapsedSeconds < minRate) this.#cut(id, state, 'slow-data', totalBytes / elapsedSeconds);
  }

  dataEnded(id: string): void {
    const state = this.#sessions.get(id);
    if (state === undefined) return;
    state.dataStartedAtMs = undefined;
    state.junk = 0;
    state.lastProgressAtMs = this.clock.now();
  }

  closed(id: string): void {
    const state = this.#sessions.get(id);
    state?.timer?.cancel();
    this.#sessions.delete(id);
  }

  #cut(id: string, state: SessionState, reason: CutReason, rate?: number): void {
    if (state.cut) return;
    state.cut = true;
    this.cut(id, reason, this.#reply(reason, rate));
  }

  #reply(reason: CutReason, rate: number | undefined): string {
    const l = this.limits;
    switch (reason) {
      case 'lifetime':
        return `4.4.2 Session lasted longer than ${l.maxSessionSeconds} seconds (listen.maxSessionSeconds); closing connection, reconnect to send more`;
      case 'junk-commands':
        return `4.7.0 Too many commands without a message (more than ${l.maxJunkCommands} NOOP, RSET, HELO, VRFY or unknown; listen.maxJunkCommands); closing connection`;
      case 'no-progress':
        return `4.4.2 No mail sent for ${l.idleSeconds} seconds (listen.socketTimeoutSeconds); closing connection`;
      case 'slow-data':
        return `4.4.2 Message data arrives too slowly (${(rate ?? 0).toFixed(1)} bytes/s; at least ${l.minDataRateBytesPerSecond} required, listen.minDataRateBytesPerSecond); closing connection`;
    }
  }
}
