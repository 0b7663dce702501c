/**
 * Slow-client guard (slowloris defence) for one client socket.
 *
 * Does: watch the bytes a client sends and cut the connection (a `421 4.4.2` line, then close)
 *   when one line (a command, or a line of message data) has been arriving for longer than
 *   `lineLimitMs` without its LF. smtp-server's own socket timeout only measures idle time, so
 *   a client that trickles one byte at a time would otherwise hold its slot for ever.
 * Never: reads or changes the bytes smtp-server gets (it only listens to 'data'); counts the
 *   time a client waits between lines (that is the idle timeout's job).
 * Assumes: the socket is the raw TCP socket smtp-server reads from (plain SMTP, no TLS).
 */
import type { Socket } from 'node:net';
import type { Clock } from '../core/clock.js';

const LF = 0x0a;

export function guardSlowLines(socket: Socket, lineLimitMs: number, clock: Clock, onStall: () => void): void {
  let inLine = false;
  let lineStartedAtMs = 0;
  let stalled = false;
  socket.on('data', (chunk: Buffer) => {
    if (stalled || chunk.length === 0) return;
    const now = clock.now();
    const lastLf = chunk.lastIndexOf(LF);
    if (lastLf >= 0) {
      // the lines ending in this chunk completed in time; a new one may have started
      inLine = lastLf < chunk.length - 1;
      if (inLine) lineStartedAtMs = now;
      return;
    }
    if (!inLine) {
      inLine = true;
      lineStartedAtMs = now;
      return;
    }
    if (now - lineStartedAtMs > lineLimitMs) {
      stalled = true;
      onStall();
    }
  });
}
