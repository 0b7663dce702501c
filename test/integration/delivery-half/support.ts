/**
 * Shared builders for the delivery-half integration tests: upstream configs for fake
 * upstreams, a relay started with those upstreams, spool inspection and a small sender.
 *
 * Does: keep every upstream on 127.0.0.1 with short timeouts (2 s connect/greeting) and the
 *   relay's retries short (1-2 s), so the whole folder runs in well under a minute.
 * Never: talk to anything but 127.0.0.1; leave a server or a transport open (callers close
 *   them through `Cleanup`).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { TestContext } from 'vitest';
import type { SpoolMeta } from '../../../src/core/types.js';
import type { AppOverrides } from '../../../src/app.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { systemClock } from '../../../src/core/clock.js';
import { FsSpool } from '../../../src/spool/fs-spool.js';

type Json = Record<string, unknown>;

/** An upstream entry (schema input) for a fake upstream on 127.0.0.1:port, plain SMTP, no AUTH. */
export function upstream(name: string, port: number, extra: Json = {}): Json {
  return {
    name,
    host: '127.0.0.1',
    port,
    security: 'none',
    timeouts: { connectSeconds: 2, greetingSeconds: 2, socketSeconds: 5 },
    ...extra,
  };
}

/** Starts a relay delivering to `upstreams` (in order) with short retries; `extra` is merged in. */
export async function relayWith(upstreams: readonly Json[], extra: Json = {}, overrides: Omit<AppOverrides, 'logger'> = {}): Promise<TestRelay> {
  const delivery = (extra['delivery'] ?? {}) as Json;
  return startRelay(
    {
    ...extra,
    upstreams,
    delivery: {
      fsync: false,
      upstreamDownSeconds: 1,
      ...delivery,
      retry: { minBackoffSeconds: 1, maxBackoffSeconds: 2, ...((delivery['retry'] ?? {}) as Json) },
    },
    },
    overrides,
  );
}

/** Closes everything registered, in reverse order; for afterEach. */
export class Cleanup {
  private readonly steps: (() => Promise<unknown> | unknown)[] = [];
  add<T>(thing: T, close: (t: T) => Promise<unknown> | unknown): T {
    this.steps.push(() => close(thing));
    return thing;
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await Promise.resolve(step()).catch(() => undefined);
  }
}

/** A Cleanup run when the test finishes: for tests that run concurrently, which one file-level afterEach cannot serve. */
export function cleanupFor(onTestFinished: TestContext['onTestFinished']): Cleanup {
  const cleanup = new Cleanup();
  onTestFinished(() => cleanup.run());
  return cleanup;
}

export interface SendResult {
  readonly response: string;
  readonly qid: string | undefined;
}

/** Sends one message to the relay with nodemailer and returns the DATA reply and the qid in it. */
export async function send(
  port: number,
  message: { from?: string; to: string | readonly string[]; subject?: string; text?: string; attachments?: { filename: string; content: string }[] },
): Promise<SendResult> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, connectionTimeout: 5000, socketTimeout: 15_000 });
  try {
    const info = await client.sendMail({
      from: message.from ?? 'app@legacy.test',
      to: [...(typeof message.to === 'string' ? [message.to] : message.to)],
      subject: message.subject ?? 'test',
      text: message.text ?? 'hello\n',
      ...(message.attachments !== undefined ? { attachments: message.attachments } : {}),
    });
    return { response: info.response, qid: qidOf(info.response) };
  } finally {
    client.close();
  }
}

/** The qid in a relay reply ("250 2.0.0 Ok: queued as QID"). */
export function qidOf(reply: string): string | undefined {
  return /(?:queued|delivered) as ([A-Za-z0-9]+)/.exec(reply)?.[1];
}

/** File names in spool/<sub>/ (empty when the folder does not exist). */
export async function spoolFiles(relay: { spoolDir: string }, sub: 'queue' | 'failed' | 'tmp'): Promise<string[]> {
  const dir = join(relay.spoolDir, sub);
  return existsSync(dir) ? (await readdir(dir)).sort() : [];
}

/** A queued message's meta, read through the spool's API (the files are the spool's business). */
export async function queuedMeta(relay: { spoolDir: string }, qid: string): Promise<SpoolMeta> {
  const entry = await new FsSpool({ dir: relay.spoolDir, fsync: false, clock: systemClock }).read(qid);
  if (entry === undefined) throw new Error(`no queued message ${qid} in ${relay.spoolDir}`);
  return entry.meta;
}

export async function failureReason(relay: { spoolDir: string }, qid: string): Promise<{ reason: string; recipients: { address: string; response: string }[] }> {
  return JSON.parse(await readFile(join(relay.spoolDir, 'failed', `${qid}.reason.json`), 'utf8')) as {
    reason: string;
    recipients: { address: string; response: string }[];
  };
}

export { until } from '../../helpers/wait.js';

/** `delivery` log lines of one message. */
export function deliveryLines(relay: TestRelay, qid: string): Record<string, unknown>[] {
  return relay.logs.events('delivery').filter((r) => r['qid'] === qid);
}

