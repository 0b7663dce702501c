/**
 * Shared tools for the hostile-input suite: a relay in front of a recording fake upstream that
 * authenticates with a known secret, raw-socket senders (one write or byte by byte), and the
 * secrets check every file runs after each test (item 8 of issue 7).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect, type TestContext } from 'vitest';
import type { AppOverrides } from '../../../src/app.js';
import { startFakeUpstream, type FakeUpstream, type FakeUpstreamOptions } from '../../helpers/fake-upstream.js';
import { startRelay, type LogCapture, type TestRelay } from '../../helpers/relay.js';
import { openTransaction, rawSmtp, type RawSmtp } from '../../helpers/smtp-client.js';

export const UPSTREAM_USER = 'relay-user';
export const UPSTREAM_PASS = 'S3cr3t-Pa55-XYZ';
export const OAUTH_CLIENT_SECRET = 'cl1ent-S3cret-ABC';

/** Every secret value, with the encodings a careless log line would carry them in. */
export function secretForms(): string[] {
  const forms: string[] = [];
  for (const secret of [UPSTREAM_PASS, OAUTH_CLIENT_SECRET]) {
    forms.push(secret, Buffer.from(secret).toString('base64'), encodeURIComponent(secret));
  }
  forms.push(Buffer.from(`\0${UPSTREAM_USER}\0${UPSTREAM_PASS}`).toString('base64'));
  forms.push(Buffer.from(UPSTREAM_PASS).toString('base64').replace(/=+$/, ''));
  return forms;
}

export function expectNoSecrets(logs: LogCapture): void {
  const forms = secretForms();
  for (const line of logs.lines) {
    for (const form of forms) expect(line.includes(form), `a log line carries a secret: ${line.slice(0, 200)}`).toBe(false);
  }
}

export interface Hostile {
  readonly relay: TestRelay;
  readonly upstream: FakeUpstream;
  readonly extraUpstreams: FakeUpstream[];
  stop(): Promise<void>;
}

/** upstream config for a fake upstream with PLAIN auth (the known secret), plaintext, short timeouts */
export function plainUpstreamConfig(name: string, port: number, socketSeconds = 5): Record<string, unknown> {
  return {
    name,
    host: '127.0.0.1',
    port,
    security: 'none',
    auth: { type: 'plain', user: UPSTREAM_USER, pass: UPSTREAM_PASS, allowPlaintext: true },
    timeouts: { connectSeconds: 2, greetingSeconds: 2, socketSeconds },
  };
}

export async function startAuthUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  return startFakeUpstream({ tls: 'none', auth: { methods: ['PLAIN'], users: { [UPSTREAM_USER]: UPSTREAM_PASS } }, ...options });
}

/**
 * A relay (in-process) whose single upstream is a recording fake that requires the known
 * password. `delivery.waitSeconds` defaults to 5, so a 250 means "delivered" and the upstream's
 * record is complete when the reply arrives.
 */
export async function startHostile(
  extra: Record<string, unknown> = {},
  overrides: Omit<AppOverrides, 'logger'> = {},
  upstreamOptions: FakeUpstreamOptions = {},
  /** merged into the primary upstream's config (e.g. `{ maxConnections: 1 }`) */
  primaryExtra: Record<string, unknown> = {},
): Promise<Hostile> {
  const upstream = await startAuthUpstream(upstreamOptions);
  const base: Record<string, unknown> = {
    delivery: { waitSeconds: 5, fsync: false, retry: { minBackoffSeconds: 1, maxBackoffSeconds: 1 } },
    upstreams: [{ ...plainUpstreamConfig('primary', upstream.port), ...primaryExtra }],
    log: { trace: 'detail' },
  };
  const relay = await startRelay(mergeDeep(base, extra), overrides);
  const extraUpstreams: FakeUpstream[] = [];
  return {
    relay,
    upstream,
    extraUpstreams,
    async stop() {
      expectNoSecrets(relay.logs);
      await relay.stop();
      await upstream.close();
      await Promise.all(extraUpstreams.map((u) => u.close()));
    },
  };
}

export interface HostileTest extends Hostile {
  /** Closes `session` when the test finishes, before the relay stops. */
  track<T extends { close(): void }>(session: T): T;
}

/**
 * startHostile for one test: the relay, its upstream and every session given to track() are
 * closed when the test finishes, passed or failed (the test context's onTestFinished, so it works
 * for concurrent tests too). stop() may be called earlier (to read what closing logs); the
 * finish then has nothing left to do.
 */
export async function hostileForTest(onTestFinished: TestContext['onTestFinished'], ...args: Parameters<typeof startHostile>): Promise<HostileTest> {
  const h = await startHostile(...args);
  const sessions: { close(): void }[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const session of sessions.splice(0)) session.close();
      await h.stop();
    })());
  onTestFinished(() => stop());
  return {
    ...h,
    stop,
    track(session) {
      sessions.push(session);
      return session;
    },
  };
}

export function mergeDeep(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const prev = out[k];
    const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
    out[k] = isObj(v) && isObj(prev) ? mergeDeep(prev, v) : v;
  }
  return out;
}

/** Dot-stuffs CRLF-clean message bytes and appends the terminator. */
export function dataPayload(message: Buffer): Buffer {
  const stuffed = Buffer.from(message.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');
  const needsCrlf = stuffed.length > 0 && !stuffed.subarray(-2).equals(Buffer.from('\r\n'));
  return Buffer.concat([stuffed, Buffer.from(needsCrlf ? '\r\n.\r\n' : '.\r\n')]);
}

/**
 * Writes bytes one at a time, one event-loop turn apart (the socket has setNoDelay). The relay of
 * startHostile runs in this process: between two of these writes (check phase) the loop's poll
 * phase reads what arrived, so the relay sees (nearly) every byte as its own chunk — measured:
 * 219 reads for 220 bytes, as many as with 1 ms sleeps, in 5 ms instead of 280.
 */
export async function writeByteByByte(client: RawSmtp, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    client.write(bytes.subarray(i, i + 1));
    await nextTurn();
  }
}

/** One transaction; `data` is written verbatim after the 354. Returns the reply to the data and closes. */
export async function sendData(port: number, data: Buffer, options: { from?: string; to?: readonly string[]; byteByByte?: boolean; timeoutMs?: number } = {}): Promise<string> {
  const client = await openTransaction(port, options.from ?? 'app@legacy.test', options.to ?? ['alice@dest.test']);
  try {
    if (options.byteByByte === true) await writeByteByByte(client, data);
    else client.write(data);
    return await client.next(options.timeoutMs ?? 20_000);
  } finally {
    client.close();
  }
}

/** Sends a whole CRLF-clean message (dot-stuffed by us). */
export function sendMessage(port: number, message: Buffer | string, options: { from?: string; to?: readonly string[]; timeoutMs?: number } = {}): Promise<string> {
  return sendData(port, dataPayload(Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8')), options);
}

/** The bytes after the first blank line (CRLF CRLF), or undefined when there is none. */
export function bodyOf(raw: Buffer): Buffer | undefined {
  if (raw.subarray(0, 2).equals(Buffer.from('\r\n'))) return raw.subarray(2);
  const at = raw.indexOf('\r\n\r\n');
  return at < 0 ? undefined : raw.subarray(at + 4);
}

/** Proves the relay still serves: a fresh session gets a greeting and a NOOP answer. */
export async function expectAlive(port: number): Promise<void> {
  const client = await rawSmtp(port);
  try {
    expect(await client.next()).toMatch(/^220 /);
    expect(await client.command('NOOP')).toMatch(/^250/);
  } finally {
    client.close();
  }
}

/** The end-of-data variants of issue 7 (hannob/smtpsmug and SMTP-Smuggling-Tools). */
export const EOD_VARIANTS: readonly [string, string][] = [
  ['lflf', '\n.\n'],
  ['crcr', '\r.\r'],
  ['crlf', '\r.\n'],
  ['lfcr', '\n.\r'],
  ['lfcrlf', '\n.\r\n'],
  ['crlflf', '\r\n.\n'],
  ['crcrlf', '\r.\r\n'],
  ['crlfcr', '\r\n.\r'],
  ['nullbefore', '\r\n\0.\r\n'],
  ['nullafter', '\r\n.\0\r\n'],
  ['crlf-crcrlf', '\r\n.\r\r\n'],
  ['crcrlf-crcrlf', '\r\r\n.\r\r\n'],
  ['lflf-crlf', '\n\n.\r\n'],
];
