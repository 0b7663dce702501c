/**
 * `smtp-sidecar send-test --to ADDR [--from ADDR] [--upstream NAME] [--via HOST:PORT] [--config F]`
 *
 * Does: build a small test message ("smtp-sidecar test message", the date, this host's name) and
 *   either
 *   - (--via) submit it over SMTP to a running relay exactly as a legacy app would, and print the
 *     relay's reply (which names the qid); or
 *   - (default) put it through the relay's own stages in-process: facts parser → policies →
 *     header edits → routing (or the one --upstream) → the real upstream transport (same options,
 *     credentials and OAuth2 tokens as the relay), failing over like the dispatcher does, and
 *     print each upstream's answer or its failure with the classification (failover / retry /
 *     final, DSN, reason). Without any upstream configured it writes to the outbox directory.
 * Never: touch the relay's spool (direct mode sends synchronously and keeps nothing); print a
 *   password or token (the transport scrubs its errors; tokens are never printed); accept an
 *   address with CR/LF or spaces (it goes into headers).
 * Assumes: the config is valid; the message is tiny (built in memory).
 * Exit codes: 0 delivered (every recipient accepted), 1 refused or failed, 2 usage or config error.
 */
import { randomBytes } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import type { INetworkModule } from '@azure/msal-node';
import nodemailer from 'nodemailer';
import pino from 'pino';
import type { Config } from '../config/schema.js';
import { type Clock, systemClock } from '../core/clock.js';
import { SEND_TEST_CONNECT_TIMEOUT_MS, SEND_TEST_REPLY_TIMEOUT_MS } from '../core/delays.js';
import type { Logger, OutgoingMessage, UpstreamSet } from '../core/ports.js';
import type { Attempt, Envelope } from '../core/types.js';
import { classifyError, classifyRejection } from '../delivery/classify.js';
import { countedAttachments } from '../core/attachments.js';
import { attemptDelivery, describeError } from '../delivery/attempt.js';
import { buildUpstreamSet } from '../delivery/upstream-set.js';
import { applyHeaderEdits } from '../message/header-edits.js';
import { createFactsParser } from '../message/parse.js';
import { headerBlockEnd } from '../core/raw-source.js';
import { formatRfc5322Date } from '../policies/date-message-id.js';
import { runPolicies } from '../policies/index.js';
import { RateLimiter } from '../routing/rate-limit.js';
import { makeQid } from '../spool/qid.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { loadConfigOrReport } from './load-config.js';
import { parseVia } from './smtp-submit.js';

export const SEND_TEST_HELP = `Usage: smtp-sidecar send-test --to ADDR [--from ADDR] [--upstream NAME] [--config FILE]
       smtp-sidecar send-test --to ADDR [--from ADDR] --via HOST:PORT

Sends a short test message ("smtp-sidecar test message").

Without --via it runs the relay's own pipeline in this process (policies, routing, the upstream
transports with their credentials and failover) and prints each upstream's answer, or the failure
and how the relay would treat it (failover, retry later, or final). --upstream NAME sends through
that upstream only. Nothing is spooled: the running relay is not involved.

With --via HOST:PORT it submits the message over SMTP to a running relay, as an application
would, and prints the relay's reply (with the queue id).

Options:
  --to ADDR          recipient (required)
  --from ADDR        envelope and header sender (default: message.globalFrom, else smtp-sidecar@<host>)
  --upstream NAME    only this upstream (not with --via)
  --via HOST:PORT    a running relay's SMTP address, e.g. 127.0.0.1:25
  --config FILE      config file (default: /etc/smtp-sidecar/config.json; not read with --via)

Exit codes: 0 delivered/accepted, 1 refused or failed, 2 usage error or invalid config.
`;

export interface SendTestOptions {
  readonly config: string;
  readonly to?: string | undefined;
  readonly from?: string | undefined;
  readonly upstream?: string | undefined;
  readonly via?: string | undefined;
}

export interface SendTestDeps {
  readonly clock?: Clock;
  /** this machine's name, for the message text and the default sender */
  readonly hostname?: string;
  /** msal network client for oauth2 upstreams (tests); the CLI passes none */
  readonly tokenNetworkClient?: INetworkModule;
}

/** One mailbox, no display name, nothing that could end a header or an SMTP command. */
const PLAIN_ADDRESS = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+$/;

export function buildTestMessage(input: { readonly from: string; readonly to: string; readonly now: Date; readonly hostname: string }): Buffer {
  return Buffer.from(
    [
      `From: smtp-sidecar <${input.from}>`,
      `To: <${input.to}>`,
      'Subject: smtp-sidecar test message',
      `Date: ${formatRfc5322Date(input.now)}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      'This is a test message sent by "smtp-sidecar send-test".',
      '',
      `Sent at: ${input.now.toISOString()}`,
      `From host: ${input.hostname}`,
      '',
    ].join('\r\n'),
    'utf8',
  );
}

export async function sendTestCommand(options: SendTestOptions, io: CliIo, deps: SendTestDeps = {}): Promise<number> {
  const usage = (problem: string): number => {
    io.stderr(`smtp-sidecar send-test: ${problem}\n\n${SEND_TEST_HELP}`);
    return EXIT.USAGE_OR_CONFIG;
  };
  if (options.to === undefined || options.to === '') return usage('--to ADDR is required');
  if (!PLAIN_ADDRESS.test(options.to)) return usage(`--to "${options.to}" is not a plain address like user@example.com`);
  if (options.from !== undefined && !PLAIN_ADDRESS.test(options.from)) return usage(`--from "${options.from}" is not a plain address like user@example.com`);
  const clock = deps.clock ?? systemClock;
  const hostname = deps.hostname ?? osHostname();

  if (options.via !== undefined) {
    if (options.upstream !== undefined) return usage('--upstream cannot be combined with --via (the relay picks its upstream)');
    const target = parseVia(options.via);
    if (target === undefined) return usage(`--via "${options.via}" is not HOST:PORT`);
    const from = options.from ?? `smtp-sidecar@${hostname}`;
    return submitToRelay(target, { from, to: options.to }, buildTestMessage({ from, to: options.to, now: new Date(clock.now()), hostname }), hostname, io);
  }

  const config = loadConfigOrReport(options.config, io);
  if (config === undefined) return EXIT.USAGE_OR_CONFIG;
  if (options.upstream !== undefined && !config.upstreams.some((u) => u.name === options.upstream)) {
    const known = config.upstreams.map((u) => u.name).join(', ') || 'none';
    return usage(`no upstream named "${options.upstream}" (configured: ${known})`);
  }
  const from = options.from ?? config.message.globalFrom ?? `smtp-sidecar@${hostname}`;
  const raw = buildTestMessage({ from, to: options.to, now: new Date(clock.now()), hostname });
  return sendInProcess(config, { from, to: options.to }, raw, options.upstream, io, clock, deps);
}

// ---------------------------------------------------------------------------------------------
// --via: a running relay

async function submitToRelay(
  target: { host: string; port: number },
  envelope: { from: string; to: string },
  raw: Buffer,
  hostname: string,
  io: CliIo,
): Promise<number> {
  const transporter = nodemailer.createTransport({
    host: target.host,
    port: target.port,
    secure: false,
    // the relay listens for plain SMTP from local apps; do what such an app does
    ignoreTLS: true,
    name: hostname.includes('.') ? hostname : 'localhost',
    connectionTimeout: SEND_TEST_CONNECT_TIMEOUT_MS,
    greetingTimeout: SEND_TEST_CONNECT_TIMEOUT_MS,
    socketTimeout: SEND_TEST_REPLY_TIMEOUT_MS,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  try {
    const info = await transporter.sendMail({ envelope: { from: envelope.from, to: [envelope.to] }, raw });
    io.stdout(`relay ${target.host}:${target.port} accepted the message: ${String(info.response)}\n`);
    return EXIT.OK;
  } catch (err) {
    io.stdout(`relay ${target.host}:${target.port} refused the message: ${describeError(err)}\n`);
    return EXIT.FAILURE;
  } finally {
    transporter.close();
  }
}

// ---------------------------------------------------------------------------------------------
// in-process: policies, routing, the real upstream transports

async function sendInProcess(
  config: Config,
  addresses: { from: string; to: string },
  raw: Buffer,
  onlyUpstream: string | undefined,
  io: CliIo,
  clock: Clock,
  deps: SendTestDeps,
): Promise<number> {
  const qid = makeQid(clock.now());
  const parser = createFactsParser();
  parser.input.end(raw);
  const facts = await parser.facts;
  const outcome = runPolicies({
    envelope: { mailFrom: addresses.from, rcptTo: [addresses.to] },
    facts,
    message: config.message,
    limits: config.limits,
    hostname: config.listen.hostname,
    now: new Date(clock.now()),
    newMessageIdLocalPart: () => `${qid}.${randomBytes(6).toString('hex')}`,
  });
  if (outcome.kind === 'reject') {
    io.stdout(`policy ${outcome.policy} refuses the message: ${outcome.code} ${outcome.detail}\n`);
    return EXIT.FAILURE;
  }
  io.stdout(
    `policies: ${outcome.applied.length === 0 ? 'no changes' : `applied ${outcome.applied.join(', ')}`}; envelope ${outcome.envelope.mailFrom || '<>'} -> ${outcome.envelope.rcptTo.join(', ')}\n`,
  );
  const end = headerBlockEnd(raw);
  const finalRaw = Buffer.concat([applyHeaderEdits(raw.subarray(0, end), outcome.headerEdits), raw.subarray(end)]);
  const envelope: Envelope = { ...outcome.envelope, bodyType: '7bit' };

  const logger: Logger = pino({ enabled: false });
  const upstreams = buildUpstreamSet(config, {
    clock,
    logger,
    tolerateBroken: true,
    ...(deps.tokenNetworkClient === undefined ? {} : { tokenNetworkClient: deps.tokenNetworkClient }),
  });
  try {
    // --upstream NAME: a set of that one upstream, and no routes (it takes every recipient)
    const only = onlyUpstream === undefined ? undefined : upstreams.get(onlyUpstream);
    const view: UpstreamSet = only === undefined ? upstreams : { names: [only.name], get: (name) => (name === only.name ? only : undefined), close: () => upstreams.close() };
    const counted = countedAttachments(facts.attachments, config.limits.countInlineParts);
    const report = await attemptDelivery(
      {
        upstreams: view,
        health: { isDown: () => false },
        rate: new RateLimiter(clock),
        clock,
        routes: only === undefined ? config.routes : [],
        onAttempt: (attempt) => io.stdout(`${describeAttempt(attempt)}\n`),
      },
      {
        qid,
        envelope,
        facts: { from: undefined, subject: undefined, messageId: undefined, attachments: counted.count, attachmentsBytes: counted.bytes },
        raw: finalRaw,
      },
    );
    if (config.upstreams.length === 0) io.stdout(`no upstream configured: written to the outbox directory ${resolve(config.delivery.outboxDir)}\n`);
    const waiting = [...report.results].filter(([, r]) => r.outcome === 'deferred').map(([rcpt]) => rcpt);
    if (waiting.length > 0) io.stdout(`no upstream took the message for ${waiting.join(', ')}: the relay would keep it queued and retry\n`);
    return [...report.results.values()].every((r) => r.outcome === 'sent') ? EXIT.OK : EXIT.FAILURE;
  } finally {
    await upstreams.close();
  }
}

/** One line per try or skip, as the relay would log it, with the classification of a failure. */
function describeAttempt(attempt: Attempt): string {
  const relay = attempt.relay;
  if (attempt.kind === 'skip') {
    return attempt.why === 'limits'
      ? `${relay}: skipped: the message exceeds this upstream's attachment limits`
      : `${relay}: skipped: its rate cap (maxMessagesPerMinute) is used up until ${new Date(attempt.retryAtMs ?? 0).toISOString()}`;
  }
  if (attempt.outcome === 'sent') return `${relay}: ${attempt.response} (accepted: ${attempt.recipients.join(', ')})`;
  const how = `${attempt.outcome}, ${attempt.dsn}: ${attempt.reason ?? ''}`;
  if (attempt.failure === undefined) return `${relay}: refused ${attempt.recipients.join(', ')}: ${attempt.response} — ${how}`;
  return `${relay}: failed: ${attempt.response} — ${how}`;
}
