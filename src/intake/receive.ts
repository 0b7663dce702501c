/**
 * The receive conductor: SMTP data stream → message facts → policies → header edits → spool
 * → (optionally) the first delivery attempt → the reply the client gets.
 *
 * Does: stream the message once, feeding the header-block reader, the facts parser and the
 * body store (memory, spilled to a spool tmp file past `spillThresholdBytes`) side by side.
 * Replies 250 only after the spool has the final bytes on disk.
 * Never: holds a large message whole in memory; acknowledges a message it could lose;
 * changes body bytes.
 * Assumes: the stream ends only at a real end of data (a disconnect destroys it).
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { countedAttachments } from '../core/attachments.js';
import { isRelayError, RelayError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { FLOOD_LOG_INTERVAL_MS, IN_FLIGHT_MAX_WAIT_MS } from '../core/delays.js';
import type { DeliveryPort, Logger, Spool } from '../core/ports.js';
import type { BodySource, SpoolMeta } from '../core/types.js';
import type { Config } from '../config/schema.js';
import { HeaderBlockReader } from '../message/header-block.js';
import { applyHeaderEdits } from '../message/header-edits.js';
import { createFactsParser } from '../message/parse.js';
import { runPolicies, DEFAULT_POLICIES } from '../policies/index.js';
import { refusalByUpstreamLimits } from '../routing/admission.js';
import { formatRfc5322Date } from '../policies/date-message-id.js';
import type { Policy } from '../policies/types.js';
import { InFlightBudget, type InFlightLease } from './in-flight-budget.js';
import { IntervalLog } from '../core/interval-log.js';
import { LineEndingTransform } from './line-endings.js';
import { LongLineFolder, MAX_LINE_CHARS } from './long-lines.js';
import type { IntakeSession } from './smtp-listener.js';

export const MAX_HEADER_BYTES = 1024 * 1024;

export interface ReceiveDeps {
  /** the current config (it can be swapped on reload; each message uses one snapshot) */
  readonly config: () => Config;
  readonly spool: Spool;
  readonly delivery: DeliveryPort;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly policies?: readonly Policy[];
  /** bodies larger than this are spilled to the spool's tmp dir while they arrive */
  readonly spillThresholdBytes?: number;
  readonly onReceived?: (meta: SpoolMeta) => void;
  readonly onRejected?: (reason: string) => void;
}

export function createReceiver(deps: ReceiveDeps): (stream: Readable, session: IntakeSession) => Promise<string> {
  // Past 256 KiB a body goes to a spill file as it arrives: memory per message in flight stays small
  // (50 concurrent 1 MB messages must fit well under 250 MB), and the spool copies the file anyway.
  const spillThreshold = deps.spillThresholdBytes ?? 256 * 1024;
  // One budget for the process: the memory all transactions in flight hold together. A new
  // DATA waits for room (its client is held by TCP backpressure: nothing is read), at most half
  // the idle timeout so the client's session does not time out meanwhile, then gets 452 4.3.1.
  const startConfig = deps.config();
  const budgetLog = new IntervalLog(deps.logger, FLOOD_LOG_INTERVAL_MS, deps.clock);
  const budget = new InFlightBudget(Math.floor(startConfig.listen.maxInFlightMB * 1024 * 1024), deps.clock, (usedBytes) =>
    budgetLog.note('intake.in-flight-full', { reason: 'listen.maxInFlightMB reached; new DATA waits', usedBytes, limitMB: startConfig.listen.maxInFlightMB }),
  );
  const admissionWaitMs = Math.min(IN_FLIGHT_MAX_WAIT_MS, (startConfig.listen.socketTimeoutSeconds * 1000) / 2);

  return async function receive(stream, session) {
    const config = deps.config();
    const qid = deps.spool.newQid();
    const log = deps.logger.child({ qid });
    const receivedAtMs = deps.clock.now();
    const rejected = (reason: string, err: RelayError) => {
      log.info({ client: session.remoteAddress, reason, reply: `${err.smtpReply.code} ${err.smtpReply.text}` }, 'rejected');
      deps.onRejected?.(reason);
      return err;
    };

    if (budget.usedBytes >= budget.limitBytes || budget.waiting > 0) {
      budgetLog.note('intake.in-flight-wait', { reason: 'a DATA waits for listen.maxInFlightMB', client: session.remoteAddress, waitingBefore: budget.waiting });
    }
    const lease = await budget.admit(admissionWaitMs);
    if (lease === undefined) {
      stream.resume(); // drain: the reply goes out once the client's end of data is read
      throw rejected('busy', new RelayError('E_BUSY', { detail: `Too much mail in flight (${startConfig.listen.maxInFlightMB} MB held by other transactions); try again later` }));
    }
    try {
      return await receiveAdmitted(stream, session, config, qid, log, receivedAtMs, rejected, lease);
    } finally {
      lease.release();
    }
  };

  async function receiveAdmitted(
    stream: Readable,
    session: IntakeSession,
    config: Config,
    qid: string,
    log: Logger,
    receivedAtMs: number,
    rejected: (reason: string, err: RelayError) => RelayError,
    lease: InFlightLease,
  ): Promise<string> {
    const lineEndings = new LineEndingTransform(config.listen.bareLineFeeds);
    const longLines = new LongLineFolder();
    const header = new HeaderBlockReader(MAX_HEADER_BYTES);
    const facts = createFactsParser({ maxHeaderBytes: MAX_HEADER_BYTES });
    facts.facts.catch(() => undefined); // observed below; never an unhandled rejection
    const body = new BodyCollector(deps.spool.spillPath(qid), spillThreshold);

    let received = 0;
    try {
      stream.on('error', (err) => lineEndings.destroy(err));
      stream.pipe(lineEndings);
      const take = async (chunk: Buffer): Promise<void> => {
        if (!facts.input.write(chunk)) await once(facts.input, 'drain');
        for (const bodyPart of header.push(chunk)) await body.add(bodyPart);
        // what this transaction holds: the header block (kept, and copied by the parser) and
        // the body while it is still below the spill threshold
        received += chunk.length;
        lease.hold((header.complete ? header.header.length : received) + body.memoryBytes);
      };
      for await (const raw of lineEndings as AsyncIterable<Buffer>) {
        for (const chunk of longLines.push(raw)) await take(chunk);
      }
      for (const chunk of longLines.end()) await take(chunk);
      header.end();
      facts.input.end();
    } catch (err) {
      // Stop consuming but keep the data flowing to its end: the client gets its reply only
      // once smtp-server has read the whole DATA (a stalled stream would hang the session).
      stream.unpipe(lineEndings);
      stream.resume();
      facts.input.destroy();
      await body.discard();
      if (isRelayError(err)) throw rejected(err.code, err);
      throw err; // the client went away: nothing to reply, nothing spooled
    }

    try {
      if (config.listen.bareLineFeeds === 'reject' && lineEndings.sawBareLineEnd) {
        throw rejected('bare-linefeed', new RelayError('E_BARE_LINEFEED'));
      }
      if (longLines.tooLong !== undefined) {
        throw rejected(
          'line-too-long',
          new RelayError('E_LINE_TOO_LONG', {
            detail: `Message has a line of ${longLines.tooLong} characters with no space to fold it at; SMTP allows ${MAX_LINE_CHARS} (RFC 5321): encode long content as quoted-printable or base64`,
          }),
        );
      }
      const parsed = await facts.facts.catch((err: unknown) => {
        throw isRelayError(err) ? rejected(err.code, err) : err;
      });
      const outcome = runPolicies(
        {
          envelope: session.envelope,
          facts: parsed,
          message: config.message,
          limits: config.limits,
          hostname: config.listen.hostname,
          now: new Date(receivedAtMs),
          newMessageIdLocalPart: () => `${qid}.${randomBytes(6).toString('hex')}`,
        },
        deps.policies ?? DEFAULT_POLICIES,
      );
      if (outcome.kind === 'reject') {
        throw rejected(outcome.policy, new RelayError(outcome.code, { detail: outcome.detail }));
      }

      // a message no upstream of its route can ever take gets 552 now, not 250 and 48 h of retries
      const counted = countedAttachments(parsed.attachments, config.limits.countInlineParts);
      const overLimits = refusalByUpstreamLimits(outcome.envelope.rcptTo, config.routes, config.upstreams, counted);
      if (overLimits !== undefined) throw rejected('upstream-limits', new RelayError(overLimits.code, { detail: overLimits.detail }));

      const edits = config.listen.addReceivedHeader
        ? [...outcome.headerEdits, { op: 'add' as const, name: 'Received', value: receivedValue(session, config.listen.hostname, qid, new Date(receivedAtMs)) }]
        : outcome.headerEdits;
      const finalHeader = applyHeaderEdits(header.header, edits);
      const bodySource = await body.finish();
      const meta: SpoolMeta = {
        version: 1,
        qid,
        envelope: outcome.envelope,
        client: { address: session.remoteAddress, port: session.remotePort, heloName: session.heloName },
        receivedAt: new Date(receivedAtMs).toISOString(),
        originalMailFrom: session.envelope.mailFrom,
        sizeBytes: finalHeader.length + bodySource.length,
        facts: {
          from: parsed.from[0]?.address,
          subject: parsed.subject,
          messageId: parsed.messageId,
          // counted as the global limits count them, so per-upstream limits compare like with like
          attachments: countedAttachments(parsed.attachments, config.limits.countInlineParts).count,
          attachmentsBytes: countedAttachments(parsed.attachments, config.limits.countInlineParts).bytes,
        },
        recipients: outcome.envelope.rcptTo.map((address) => ({ address, status: 'pending' as const })),
        attempts: 0,
        nextAttemptAt: new Date(receivedAtMs).toISOString(),
      };
      const entry = await deps.spool.store({ header: finalHeader, body: bodySource, meta }).catch((err: unknown) => {
        if (isRelayError(err)) {
          log.error({ err: err.cause ?? err }, 'spool.write-failed');
          throw rejected(err.code, err);
        }
        throw err;
      });
      log.info(
        {
          client: session.remoteAddress,
          from: meta.envelope.mailFrom,
          originalSender: session.envelope.mailFrom,
          ...(meta.facts.from !== undefined ? { originalFrom: meta.facts.from } : {}),
          to: meta.envelope.rcptTo.length,
          size: meta.sizeBytes,
          attachments: parsed.attachments.count,
          policies: outcome.applied,
          messageId: parsed.messageId,
          ...(config.log.subjects ? { subject: parsed.subject } : {}),
        },
        'received',
      );
      deps.onReceived?.(meta);

      const waitSeconds = config.delivery.waitSeconds;
      const raw = bodySource.kind === 'memory' ? Buffer.concat([finalHeader, ...bodySource.chunks]) : undefined;
      if (raw !== undefined) lease.hold(raw.length + bodySource.length);
      const first = await deps.delivery.submit(entry, raw, { waitMs: Math.max(0, waitSeconds) * 1000, neverQueue: waitSeconds < 0 });
      switch (first.kind) {
        case 'delivered':
          return `2.0.0 Ok: delivered as ${qid} (${first.response})`;
        case 'queued':
          return `2.0.0 Ok: queued as ${qid}`;
        case 'partial': {
          // a 250 (the message is the relay's now), but truthful: how many of each, and why the refused were refused
          const total = first.delivered + first.refused + first.queued;
          const refusal = first.refusal === undefined ? '' : ` (refused: ${first.refusal.replace(/[\r\n]+/g, ' ').slice(0, 200)})`;
          return `2.0.0 Ok: partly delivered as ${qid}: ${first.delivered} of ${total} recipients delivered, ${first.refused} refused, ${first.queued} queued${refusal}`;
        }
        case 'rejected':
          throw rejected('upstream-rejected', upstreamReply(first.smtpCode, first.response));
        case 'abandoned':
          throw new RelayError('E_UPSTREAM_TEMPORARY', { detail: `Upstream temporarily unavailable (${first.response}); message not accepted, try again later` });
      }
    } finally {
      await body.discard();
    }
  }
}

/**
 * The Received trace field (RFC 5321 4.4): `from <helo> ([client]) by <hostname> (smtp-sidecar)
 * with ESMTP id <qid>; <date>`. The HELO name is the client's word: characters outside a host
 * name's (and an address literal's) are replaced, so it can never carry header syntax. No `for`
 * clause: with several recipients (or Bcc) it would disclose them.
 */
function receivedValue(session: IntakeSession, hostname: string, qid: string, at: Date): string {
  const helo = session.heloName.replace(/[^A-Za-z0-9.:_\-[\]]/g, '?').slice(0, 100) || 'unknown';
  const client = isIPv6(session.remoteAddress) ? `IPv6:${session.remoteAddress}` : session.remoteAddress;
  const protocol = session.protocol !== undefined && /^[A-Z]+$/.test(session.protocol) ? session.protocol : 'SMTP';
  return `from ${helo} ([${client}]) by ${hostname} (smtp-sidecar) with ${protocol} id ${qid}; ${formatRfc5322Date(at)}`;
}

/** The upstream's own permanent reply ("550 5.1.1 unknown user"), passed back to the client. */
function upstreamReply(smtpCode: number, response: string): RelayError {
  return new RelayError('E_UPSTREAM_REJECTED', {
    smtpCode: smtpCode >= 500 && smtpCode < 600 ? smtpCode : 550,
    verbatim: response.replace(/^\d{3}[ -]/, ''),
  });
}

/** Collects body bytes in memory, moving them to a spill file once they pass the threshold. */
class BodyCollector {
  private chunks: Buffer[] = [];
  private length = 0;
  private spill: WriteStream | undefined;
  private spillError: Error | undefined;

  /** body bytes held in memory (0 once they went to the spill file) */
  get memoryBytes(): number {
    return this.spill === undefined ? this.length : 0;
  }

  constructor(
    private readonly spillPath: string,
    private readonly thresholdBytes: number,
  ) {}

  async add(chunk: Buffer): Promise<void> {
    this.length += chunk.length;
    if (this.spill === undefined) {
      this.chunks.push(chunk);
      if (this.length <= this.thresholdBytes) return;
      const spill = createWriteStream(this.spillPath, { flags: 'wx' });
      // A full or unwritable disk must become a 452, never an unhandled 'error' (a crash).
      spill.on('error', (err) => {
        this.spillError ??= err;
      });
      this.spill = spill;
      const pending = this.chunks;
      this.chunks = [];
      for (const c of pending) await this.write(spill, c);
      return;
    }
    await this.write(this.spill, chunk);
  }

  private async write(spill: WriteStream, chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    if (!spill.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          spill.off('drain', done);
          spill.off('error', done);
          spill.off('close', done);
          resolve();
        };
        spill.on('drain', done);
        spill.on('error', done);
        spill.on('close', done);
      });
    }
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.spillError !== undefined) throw new RelayError('E_SPOOL_WRITE', { cause: this.spillError });
  }

  async finish(): Promise<BodySource> {
    if (this.spill === undefined) return { kind: 'memory', chunks: this.chunks, length: this.length };
    const spill = this.spill;
    this.throwIfFailed();
    await new Promise<void>((resolve, reject) => {
      if (spill.closed) return reject(this.spillError ?? new Error('spill file closed early'));
      spill.once('error', reject);
      spill.end(() => resolve());
    }).catch((err: unknown) => {
      throw new RelayError('E_SPOOL_WRITE', { cause: err });
    });
    return { kind: 'file', path: this.spillPath, length: this.length };
  }

  /** Removes the spill file if the message was not handed to the spool (the spool removes it otherwise). */
  async discard(): Promise<void> {
    this.chunks = [];
    if (this.spill === undefined) return;
    const spill = this.spill;
    this.spill = undefined;
    if (!spill.closed) spill.destroy();
    // after a successful store the spool has already moved the bytes and removed this file
    await unlink(this.spillPath).catch(() => undefined);
  }
}
