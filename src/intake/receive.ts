/**
 * The receive conductor: SMTP data stream → message facts → policies → header edits → spool
 * → (optionally) the first delivery attempt → the reply the client gets.
 *
 * Does: stream the message once, feeding the header-block reader, the facts parser and the
 * spool's draft (the spool keeps the body in memory or spills it to a file of its own) side by
 * side. Replies 250 only after the spool has the final bytes on disk.
 * Never: holds a large message whole in memory; acknowledges a message it could lose;
 * changes body bytes.
 * Assumes: the stream ends only at a real end of data (a disconnect destroys it).
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { countedAttachments } from '../core/attachments.js';
import { isRelayError, RelayError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { FLOOD_LOG_INTERVAL_MS, IN_FLIGHT_MAX_WAIT_MS } from '../core/delays.js';
import type { DeliveryPort, Logger, Spool } from '../core/ports.js';
import { rawBytesInMemory } from '../core/raw-source.js';
import type { SpoolMeta } from '../core/types.js';
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
  readonly onReceived?: (meta: SpoolMeta) => void;
  readonly onRejected?: (reason: string) => void;
}

export function createReceiver(deps: ReceiveDeps): (stream: Readable, session: IntakeSession) => Promise<string> {
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
    // A client that goes away while its DATA waits for room destroys the stream with an error
    // before receiveAdmitted listens to it: without a listener here that error would be
    // uncaught (the relay would crash), and piping the destroyed stream would never end.
    stream.on('error', () => undefined);
    const lease = await budget.admit(admissionWaitMs);
    if (lease !== undefined && stream.destroyed) {
      lease.release();
      throw new Error('client disconnected while its DATA waited for listen.maxInFlightMB');
    }
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
    // the spool keeps the body (in memory, or in a file of its own past its spill threshold)
    const draft = deps.spool.draft(qid);

    let received = 0;
    try {
      stream.on('error', (err) => lineEndings.destroy(err));
      stream.pipe(lineEndings);
      const take = async (chunk: Buffer): Promise<void> => {
        if (!facts.input.write(chunk)) await once(facts.input, 'drain');
        for (const bodyPart of header.push(chunk)) await draft.write(bodyPart);
        // what this transaction holds: the header block (kept, and copied by the parser) and
        // the body while the spool keeps it in memory
        received += chunk.length;
        lease.hold((header.complete ? header.header.length : received) + draft.bytesInMemory);
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
      await draft.discard();
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
      const meta: SpoolMeta = {
        version: 1,
        qid,
        envelope: outcome.envelope,
        client: { address: session.remoteAddress, port: session.remotePort, heloName: session.heloName },
        receivedAt: new Date(receivedAtMs).toISOString(),
        originalMailFrom: session.envelope.mailFrom,
        sizeBytes: finalHeader.length + draft.length,
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
      const entry = await deps.spool.store({ draft, header: finalHeader, meta }).catch((err: unknown) => {
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
      // the first attempt sends from memory when the body was small (the spool hands it back whole)
      lease.hold(rawBytesInMemory(entry.source));
      const first = await deps.delivery.submit(entry, { waitMs: Math.max(0, waitSeconds) * 1000, neverQueue: waitSeconds < 0 });
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
      await draft.discard(); // a no-op once stored
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
