/**
 * The Microsoft Graph upstream: delivers a spooled message through Graph's mail API as the
 * mailbox `auth.user`, for tenants where SMTP AUTH is off.
 *
 * Does:
 * - Small messages (base64 of the MIME fits one request): POST /v1.0/users/{user}/sendMail with
 *   the message base64-encoded, Content-Type text/plain, the spooled bytes unchanged.
 * - Larger messages (up to Exchange's own size limit, 150 MB at most), and every message when
 *   `graph.saveToSentItems` is false (the MIME form of sendMail always saves to Sent Items):
 *   1. POST /users/{user}/messages with the message minus its largest attachments (base64 MIME)
 *      → a draft; its id is saved in the spool entry (checkpoint) before anything else;
 *   2. with saveToSentItems false, PATCH the draft with PR_DELETE_AFTER_SUBMIT (MAPI property
 *      0x0E01, Boolean true): Exchange deletes it once submitted instead of moving it to Sent Items;
 *   3. each attachment taken out: under 3 MB as one POST .../attachments (fileAttachment JSON),
 *      otherwise createUploadSession + sequential PUTs of byte ranges (3 MiB, Graph allows up to
 *      4 MB each; after a failed PUT the session is asked where to resume and the upload goes on
 *      from there, up to 3 times per range); the part's name, type, Content-ID and inline flag go
 *      with it;
 *   4. POST .../send. If the draft cannot be completed it is deleted.
 * - Recipients are the SMTP envelope (recipients.ts rewrites To/Cc/Bcc only when they differ).
 * - From: with `defaultFrom` (auth.user, when the config names no sender) a different From
 *   address is rewritten to it, display name kept; otherwise From goes as the policies left it
 *   and Graph checks Send As (ErrorSendAsDenied: final, with the remedy, in the rule table).
 * - Restart safety: a draft id left in the spool entry by a run that died (kill -9) is deleted
 *   before the message is built again. If that run had already asked Graph to send it (phase
 *   "sending") and the draft is gone (404), the send went through: the message counts as
 *   delivered and is not sent twice. An unsure send (the connection dropped during POST .../send)
 *   is settled the same way: DELETE answers 404 when Graph sent it.
 * Never: sends to an address outside the envelope; puts the token, an upload URL or message content
 *   into an error or log line; retries sendMail itself after a dropped connection (Graph may have
 *   taken it: the rule table fails over, as for SMTP). Known gap: a connection dropped during
 *   POST .../messages may leave a draft whose id never arrived; it stays in Drafts, unsent.
 * Assumes: `auth` is oauth2 with a Graph scope (config/schema.ts); Graph answers sendMail and send
 *   with 202 and no per-recipient result, so every envelope recipient counts as accepted.
 */
import type { Clock } from '../../core/clock.js';
import type { DeliveryCheckpoint, Logger, OutgoingMessage, RawSource, SendReport, UpstreamTransport } from '../../core/ports.js';
import { readRaw } from '../../core/raw-source.js';
import type { TokenSource } from '../credentials/token-source.js';
import { GraphError, httpError } from './errors.js';
import { GraphHttp, type GraphHttpOptions } from './http.js';
import { decodedLeaf, rewriteMime, scanMime, type MimeLeaf, type TopHeaderEdit } from './mime.js';
import { recipientEdits, senderEdit } from './recipients.js';
import { verifyGraph } from './verify.js';

/** Graph refuses requests above 4 MB; 4,000,000 bytes keeps clear of both readings of "MB". */
export const GRAPH_REQUEST_BUDGET_BYTES = 4_000_000;
/** Graph: attachments under 3 MB are POSTed whole; 3 MB to 150 MB go through an upload session. */
export const UPLOAD_SESSION_MIN_BYTES = 3 * 1024 * 1024;
/** Graph: up to 4 MB per PUT; 3 MiB leaves room and is a multiple of 320 KiB. */
export const UPLOAD_CHUNK_BYTES = 3 * 1024 * 1024;
/** An attachment POSTed whole goes base64 inside JSON: keep that request under the budget. */
const WHOLE_ATTACHMENT_MAX_BYTES = Math.floor(((GRAPH_REQUEST_BUDGET_BYTES - 64 * 1024) / 4) * 3);
const MAX_TRIES_PER_RANGE = 3;

export type { DeliveryCheckpoint };

export interface GraphTransportOptions {
  readonly name: string;
  /** e.g. https://graph.microsoft.com (no trailing slash needed) */
  readonly endpoint: string;
  /** the mailbox that sends (auth.user) */
  readonly user: string;
  readonly saveToSentItems: boolean;
  readonly http: Omit<GraphHttpOptions, 'tokens' | 'clock'>;
  readonly tokens: TokenSource;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Rewrite From to this address (display name kept) when it differs: set to auth.user when the
   * config names no sender, since Graph refuses another From without Send As rights.
   */
  readonly defaultFrom?: string;
  /** tests: smaller PUTs to exercise resumption */
  readonly uploadChunkBytes?: number;
}

const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4;

export function createGraphTransport(options: GraphTransportOptions): UpstreamTransport {
  const log = options.logger.child({ upstream: options.name });
  const http = new GraphHttp({
    ...options.http,
    tokens: options.tokens,
    clock: options.clock,
    onTokenRefused: (command) => log.info({ command }, 'upstream.token-refresh'),
    onThrottled: (command, status, waitMs) => log.info({ command, status, waitMs }, 'graph.throttled'),
  });
  const mailbox = `${options.endpoint.replace(/\/+$/, '')}/v1.0/users/${encodeURIComponent(options.user)}`;
  const chunkBytes = options.uploadChunkBytes ?? UPLOAD_CHUNK_BYTES;

  const accepted = (message: OutgoingMessage, how: string): SendReport => ({
    accepted: [...message.envelope.rcptTo],
    rejected: [],
    response: `202 2.0.0 Accepted by Microsoft Graph (${how})`,
  });

  const sendMail = async (mime: Buffer): Promise<void> => {
    await http.send({ command: 'sendMail', method: 'POST', url: `${mailbox}/sendMail`, body: mime.toString('base64'), contentType: 'text/plain', bearer: true }, undefined, `message ${mime.length} bytes`);
  };

  /** DELETE a draft: 'deleted', or 'gone' (404: it was sent, or removed by someone). */
  const deleteDraft = async (id: string): Promise<'deleted' | 'gone'> => {
    const answer = await http.send(
      { command: 'deleteDraft', method: 'DELETE', url: `${mailbox}/messages/${encodeURIComponent(id)}`, bearer: true },
      (s) => (s >= 200 && s < 300) || s === 404,
    );
    return answer.status === 404 ? 'gone' : 'deleted';
  };

  /** Clean up what an earlier (killed) run left; true when that run's send went through. */
  const settleEarlierRun = async (message: OutgoingMessage): Promise<boolean> => {
    const saved = message.checkpoint?.saved;
    const draftId = saved?.draftId;
    if (draftId === undefined) return false;
    const result = await deleteDraft(draftId);
    log.info({ qid: message.qid, result, phase: saved?.phase }, result === 'deleted' ? 'graph.draft-deleted' : 'graph.draft-gone');
    await message.checkpoint?.save(undefined);
    return result === 'gone' && saved?.phase === 'sending';
  };

  const uploadWhole = async (raw: RawSource, draftUrl: string, leaf: MimeLeaf): Promise<void> => {
    const parts: Buffer[] = [];
    for await (const chunk of decodedLeaf(raw, leaf.index)) parts.push(chunk);
    await http.send({
      command: 'addAttachment',
      method: 'POST',
      url: `${draftUrl}/attachments`,
      contentType: 'application/json',
      bearer: true,
      body: JSON.stringify({
        '@odata.type': '#microsoft.graph.fileAttachment',
        name: attachmentName(leaf),
        contentType: leaf.contentType,
        contentBytes: Buffer.concat(parts).toString('base64'),
        isInline: leaf.inline,
        ...(leaf.contentId === '' ? {} : { contentId: leaf.contentId }),
      }),
    });
  };

  /** Where the session wants the next byte, from its status (Outlook sessions answer ["<start>"]). */
  const resumeOffset = async (uploadUrl: string): Promise<number | undefined> => {
    try {
      const status = await http.send({ command: 'uploadStatus', method: 'GET', url: uploadUrl, bearer: false });
      const ranges = (status.body as { nextExpectedRanges?: unknown } | undefined)?.nextExpectedRanges;
      const first = Array.isArray(ranges) && typeof ranges[0] === 'string' ? Number.parseInt(ranges[0], 10) : Number.NaN;
      return Number.isNaN(first) ? undefined : first;
    } catch {
      return undefined;
    }
  };

  const uploadSession = async (raw: RawSource, draftUrl: string, leaf: MimeLeaf): Promise<void> => {
    const size = leaf.decodedBytes;
    const session = await http.send({
      command: 'createUploadSession',
      method: 'POST',
      url: `${draftUrl}/attachments/createUploadSession`,
      contentType: 'application/json',
      bearer: true,
      body: JSON.stringify({
        AttachmentItem: {
          attachmentType: 'file',
          name: attachmentName(leaf),
          size,
          contentType: leaf.contentType,
          isInline: leaf.inline,
          ...(leaf.contentId === '' ? {} : { contentId: leaf.contentId }),
        },
      }),
    });
    const uploadUrl = (session.body as { uploadUrl?: unknown } | undefined)?.uploadUrl;
    if (typeof uploadUrl !== 'string') throw httpError('createUploadSession', session.status, session.body, undefined, 'no uploadUrl in the answer');
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const put = async (chunk: Buffer, start: number): Promise<void> => {
      // resumable: after a failed PUT ask the session where to go on, and send from there
      let from = start;
      for (let tries = 1; ; tries += 1) {
        const slice = chunk.subarray(from - start);
        try {
          // 200 with nextExpectedRanges, or 201 Created after the last range
          await http.send({
            command: 'uploadChunk',
            method: 'PUT',
            url: uploadUrl,
            bearer: false,
            body: slice,
            contentType: 'application/octet-stream',
            headers: { 'content-range': `bytes ${from}-${from + slice.length - 1}/${size}` },
          });
          return;
        } catch (err) {
          if (tries >= MAX_TRIES_PER_RANGE) throw err;
          const next = await resumeOffset(uploadUrl);
          if (next !== undefined && next >= start && next <= start + chunk.length) from = next;
          if (from === start + chunk.length) return;
          log.info({ command: 'uploadChunk', from, error: (err as Error).message }, 'graph.upload-resume');
        }
      }
    };
    for await (const data of decodedLeaf(raw, leaf.index)) {
      pending.push(data);
      pendingBytes += data.length;
      while (pendingBytes >= chunkBytes) {
        const all = Buffer.concat(pending);
        const chunk = all.subarray(0, chunkBytes);
        await put(chunk, offset);
        offset += chunk.length;
        pending = [all.subarray(chunkBytes)];
        pendingBytes = all.length - chunkBytes;
      }
    }
    if (pendingBytes > 0) {
      const last = Buffer.concat(pending);
      await put(last, offset);
      offset += last.length;
    }
    if (offset !== size) throw new GraphError({ code: 'EGRAPH', command: 'uploadChunk', response: `attachment ${attachmentName(leaf)}: decoded ${offset} bytes, expected ${size}` });
  };

  const viaDraft = async (message: OutgoingMessage, leaves: readonly MimeLeaf[], edits: readonly TopHeaderEdit[]): Promise<SendReport> => {
    const drop = chooseLeavesToMove(message.sizeBytes, leaves);
    const draftMime = await rewriteMime(message.raw, new Set(drop.map((l) => l.index)), edits);
    if (base64Length(draftMime.length) > GRAPH_REQUEST_BUDGET_BYTES) {
      throw new GraphError({
        code: 'EGRAPH',
        responseCode: 413,
        command: 'createDraft',
        graphCode: 'ErrorMessageSizeExceeded',
        response: `HTTP 413 ErrorMessageSizeExceeded: the message without its attachments is still ${draftMime.length} bytes, more than one Graph request carries (message ${message.sizeBytes} bytes)`,
      });
    }
    const created = await http.send(
      { command: 'createDraft', method: 'POST', url: `${mailbox}/messages`, body: draftMime.toString('base64'), contentType: 'text/plain', bearer: true },
      undefined,
      `message ${message.sizeBytes} bytes`,
    );
    const id = (created.body as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'string') throw httpError('createDraft', created.status, created.body, undefined, 'no message id in the answer');
    const draftUrl = `${mailbox}/messages/${encodeURIComponent(id)}`;
    let sendStarted = false;
    try {
      await message.checkpoint?.save({ upstream: options.name, draftId: id, phase: 'building' });
      if (!options.saveToSentItems) {
        await http.send({
          command: 'updateDraft',
          method: 'PATCH',
          url: draftUrl,
          contentType: 'application/json',
          bearer: true,
          // PR_DELETE_AFTER_SUBMIT: Exchange deletes the item after sending instead of keeping it in Sent Items
          body: JSON.stringify({ singleValueExtendedProperties: [{ id: 'Boolean 0x0E01', value: 'true' }] }),
        });
      }
      for (const leaf of drop) {
        if (leaf.decodedBytes >= UPLOAD_SESSION_MIN_BYTES || leaf.decodedBytes > WHOLE_ATTACHMENT_MAX_BYTES) await uploadSession(message.raw, draftUrl, leaf);
        else await uploadWhole(message.raw, draftUrl, leaf);
      }
      await message.checkpoint?.save({ upstream: options.name, draftId: id, phase: 'sending' });
      sendStarted = true;
      await http.send({ command: 'sendDraft', method: 'POST', url: `${draftUrl}/send`, bearer: true }, undefined, `message ${message.sizeBytes} bytes`);
    } catch (err) {
      // An unsure send (no answer) is settled by the draft: gone means Graph sent it.
      let outcome: 'deleted' | 'gone' | 'kept' = 'kept';
      try {
        outcome = await deleteDraft(id);
      } catch (deleteErr) {
        log.warn({ qid: message.qid, error: (deleteErr as Error).message }, 'graph.draft-delete-failed');
      }
      if (outcome !== 'kept') await message.checkpoint?.save(undefined);
      const unsure = err instanceof GraphError && err.responseCode === undefined;
      if (sendStarted && unsure && outcome === 'gone') return accepted(message, 'draft sent; the answer was lost');
      throw err;
    }
    await message.checkpoint?.save(undefined);
    return accepted(message, `draft with ${drop.length} attachment(s) added`);
  };

  const send = async (message: OutgoingMessage): Promise<SendReport> => {
    if (await settleEarlierRun(message)) return accepted(message, 'sent before a restart');
    const scan = await scanMime(message.raw);
    const edits = [
      ...recipientEdits(scan.headers, message.envelope.rcptTo),
      ...(options.defaultFrom === undefined ? [] : senderEdit(scan.headers.from, options.defaultFrom)),
    ];
    if (options.saveToSentItems && base64Length(message.sizeBytes + 4096) <= GRAPH_REQUEST_BUDGET_BYTES) {
      const mime = edits.length === 0 ? await readRaw(message.raw) : await rewriteMime(message.raw, new Set(), edits);
      await sendMail(mime);
      return accepted(message, 'sendMail');
    }
    return viaDraft(message, scan.leaves, edits);
  };

  return {
    name: options.name,
    send,
    verify: (onStep) => verifyGraph({ http, tokens: options.tokens, endpoint: options.endpoint }, onStep),
    async close() {
      await http.close();
    },
  };
}

/** Largest attachments first, until the rest fits one request as base64. */
export function chooseLeavesToMove(sizeBytes: number, leaves: readonly MimeLeaf[]): MimeLeaf[] {
  const moved: MimeLeaf[] = [];
  let remaining = sizeBytes;
  const candidates = leaves.filter((l) => l.attachment).sort((a, b) => b.partBytes - a.partBytes);
  for (const leaf of candidates) {
    if (base64Length(remaining + 4096) <= GRAPH_REQUEST_BUDGET_BYTES) break;
    moved.push(leaf);
    remaining -= leaf.partBytes;
  }
  // keep the message's own order of attachments
  return moved.sort((a, b) => a.index - b.index);
}

function attachmentName(leaf: MimeLeaf): string {
  if (leaf.filename !== '') return leaf.filename;
  const subtype = leaf.contentType.split('/')[1] ?? 'bin';
  return `attachment-${leaf.index + 1}.${subtype.replace(/[^a-z0-9]/gi, '') || 'bin'}`;
}
