import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/ops/logger.js';
import { routeProcessOutputToLogger } from '../../../src/ops/process-output.js';

describe(routeProcessOutputToLogger.name, () => {
  it("routes a library's console output and Node's warnings into the log, and restores both", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    const originalWarn = console.warn;
    const restore = routeProcessOutputToLogger(logger);
    try {
      // what nodemailer's DNS helper prints when a host has no route for the family it resolved
      console.warn(`Failed to resolve IPv${6} addresses with current network`);
      console.log('plain %s', 'text');
      const emitted = once(process, 'warning');
      process.emitWarning('something deprecated', { code: 'TEST_WARN' });
      await emitted;
    } finally {
      restore();
    }
    expect(console.warn).toBe(originalWarn);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'console', source: 'console', text: 'Failed to resolve IPv6 addresses with current network' }),
      expect.objectContaining({ level: 'info', msg: 'console', text: 'plain text' }),
      expect.objectContaining({ level: 'warn', msg: 'process.warning', code: 'TEST_WARN', text: 'something deprecated' }),
    ]);
    expect(process.listeners('warning').length).toBeGreaterThan(0); // Node's own printer is back
  });
});
