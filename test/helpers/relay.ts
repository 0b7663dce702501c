/**
 * Starts the real relay in-process (createApp) on 127.0.0.1 port 0 with a temporary spool and
 * outbox, and captures its JSON log lines. Every test that needs a relay uses this.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App, type AppOverrides } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/ops/logger.js';

export interface LogCapture {
  readonly lines: string[];
  /** parsed JSON records */
  records(): Record<string, unknown>[];
  /** records whose msg equals `event` */
  events(event: string): Record<string, unknown>[];
  /** resolves when a record with msg `event` satisfying `pred` appears */
  waitFor(event: string, pred?: (r: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function captureLogs(): LogCapture & { write(line: string): void } {
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const events = (event: string) => records().filter((r) => r.msg === event);
  return {
    lines,
    write(line: string) {
      lines.push(line.trimEnd());
      for (const w of waiters.splice(0)) w();
    },
    records,
    events,
    waitFor(event, pred = () => true, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => reject(new Error(`timed out waiting for log event ${event}`)), timeoutMs);
        const check = () => {
          const hit = events(event).find(pred);
          if (hit !== undefined) {
            clearTimeout(deadline);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

type Json = Record<string, unknown>;

export interface TestRelay {
  readonly app: App;
  readonly port: number;
  /** the HTTP port when http.enabled was set in the overrides */
  readonly httpPort: number | undefined;
  readonly config: Config;
  readonly dir: string;
  readonly spoolDir: string;
  readonly outboxDir: string;
  readonly logs: LogCapture;
  stop(): Promise<void>;
}

function merge(base: Json, extra: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const prev = out[k];
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && prev !== null && typeof prev === 'object' && !Array.isArray(prev)
        ? merge(prev as Json, v as Json)
        : v;
  }
  return out;
}

/** Builds a config with test defaults (port 0, temp dirs, no HTTP) merged with `extra`. */
export function testConfig(dir: string, extra: Json = {}): Config {
  const base: Json = {
    listen: { host: '127.0.0.1', port: 0, hostname: 'relay.test', shutdownGraceSeconds: 2 },
    delivery: { spoolDir: join(dir, 'spool'), outboxDir: join(dir, 'outbox'), waitSeconds: 0, retry: { minBackoffSeconds: 1, maxBackoffSeconds: 2 } },
    http: { enabled: false },
  };
  return parseConfig(merge(base, extra));
}

export async function startRelay(extra: Json = {}, overrides: Omit<AppOverrides, 'logger'> = {}): Promise<TestRelay> {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-sidecar-test-'));
  const config = testConfig(dir, extra);
  const logs = captureLogs();
  const logger = createLogger({ level: 'debug', destination: logs });
  const app = createApp(config, { ...overrides, logger });
  const { smtpPort, httpPort } = await app.start();
  return {
    app,
    port: smtpPort,
    httpPort,
    config,
    dir,
    spoolDir: config.delivery.spoolDir,
    outboxDir: config.delivery.outboxDir,
    logs,
    async stop() {
      await app.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
