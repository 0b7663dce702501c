/**
 * A fake Microsoft Graph mail endpoint (HTTPS on 127.0.0.1:0, test CA), for offline tests.
 *
 * Does: answer the calls the Graph upstream makes, validating them as Graph does:
 *   - bearer token: issued by the fake Entra (`tokens.isValid`: known and unexpired), audience
 *     https://graph.microsoft.com, `roles` containing Mail.Send (else 401 InvalidAuthenticationToken
 *     / 403 ErrorAccessDenied); upload URLs must NOT carry one (401);
 *   - mailbox: unknown → 404 ErrorInvalidUser, on-premises → 404 MailboxNotEnabledForRESTAPI;
 *   - request ceiling (4 MiB body) → 413; MIME bodies need Content-Type text/plain and valid
 *     base64 (400 "Invalid base64 string for MIME content."); From other than the mailbox without
 *     Send As → 403 ErrorSendAsDenied; over the message size limit → 413 ErrorMessageSizeExceeded;
 *   - drafts: create (MIME) → PATCH / attachments / createUploadSession → send, in that order
 *     (anything on a draft that was sent or deleted → 404 ErrorItemNotFound); upload sessions:
 *     Content-Range must start where the session stands, match the declared size and the body
 *     length, at most 4 MiB per PUT (416 / 400 / 413 otherwise); the last range answers 201;
 *     GET on the upload URL tells where to resume;
 *   - 4 concurrent requests per mailbox: a fifth gets 429 ApplicationThrottled (MailboxConcurrency).
 * Records every request (route, status, time) and every delivery: who received it (To, Cc and
 * Bcc of the MIME, as Graph reads them), the MIME as stored (Bcc removed, as Exchange delivers
 * it) and the attachments added to a draft. Scriptable faults per route: any status with a Graph
 * error code and Retry-After, a dropped connection before or after handling, a request left
 * unanswered, a delay.
 * Never: listens beyond 127.0.0.1; delivers a message whose request it refused.
 * Assumes: tokens come from test/helpers/fake-token-endpoint.ts (JWT-shaped, aud/roles claims).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseAddressHeader, simpleParser } from 'mailparser';
import { decodeJwtPart, tlsFixture } from './fake-token-endpoint.js';

export const GRAPH_REQUEST_LIMIT_BYTES = 4 * 1024 * 1024;
export const GRAPH_AUDIENCE = 'https://graph.microsoft.com';

export type GraphRoute =
  | 'sendMail'
  | 'createDraft'
  | 'updateDraft'
  | 'getDraft'
  | 'deleteDraft'
  | 'addAttachment'
  | 'createUploadSession'
  | 'sendDraft'
  | 'uploadChunk'
  | 'uploadStatus'
  | 'unknown';

export interface GraphFault {
  readonly route: GraphRoute;
  /** answer with this status (and a Graph error body) instead of handling the request */
  readonly status?: number;
  readonly code?: string;
  readonly message?: string;
  readonly retryAfterSeconds?: number;
  /** 'before': close the socket without handling; 'after': handle it, then close without answering */
  readonly drop?: 'before' | 'after';
  /** never answer (the socket stays open until close()) */
  readonly stall?: boolean;
  /** answer normally after this long */
  readonly delayMs?: number;
  /** how many matching requests it applies to (default 1) */
  readonly times?: number;
}

export interface GraphRequestRecord {
  readonly route: GraphRoute;
  readonly method: string;
  readonly mailbox: string | undefined;
  readonly status: number | 'dropped' | 'stalled';
  readonly at: number;
  readonly bytes: number;
  readonly token: string | undefined;
  readonly contentRange?: string;
}

export interface GraphAttachmentRecord {
  readonly name: string;
  readonly contentType: string;
  readonly isInline: boolean;
  readonly contentId: string | undefined;
  readonly content: Buffer;
  readonly via: 'post' | 'uploadSession';
}

export interface GraphDelivery {
  readonly via: 'sendMail' | 'draft';
  readonly mailbox: string;
  /** lower-cased addresses Graph sent to (To, Cc and Bcc of the MIME) */
  readonly recipients: readonly string[];
  /** the MIME as the recipients get it (top-level Bcc removed); for drafts without the added attachments */
  readonly mime: Buffer;
  readonly attachments: readonly GraphAttachmentRecord[];
  readonly savedToSentItems: boolean;
}

interface Draft {
  readonly id: string;
  readonly mailbox: string;
  readonly mime: Buffer;
  readonly attachments: GraphAttachmentRecord[];
  deleteAfterSubmit: boolean;
  state: 'draft' | 'sent' | 'deleted';
}

interface UploadSession {
  readonly id: string;
  readonly secret: string;
  readonly draft: Draft;
  readonly item: { name: string; size: number; contentType: string; isInline: boolean; contentId: string | undefined };
  readonly chunks: Buffer[];
  next: number;
}

export interface FakeGraphOptions {
  /** validates bearer tokens (the fake Entra) */
  readonly tokens: { isValid(accessToken: string): boolean };
  /** Exchange Online mailboxes that exist */
  readonly mailboxes: readonly string[];
  /** mailboxes that exist on-premises only (MailboxNotEnabledForRESTAPI) */
  readonly onPremises?: readonly string[];
  /** extra From addresses a mailbox may send as (Send As rights) */
  readonly sendAs?: Readonly<Record<string, readonly string[]>>;
  /** Exchange's message size limit (default 35 MB) */
  readonly maxMessageBytes?: number;
}

export interface FakeGraph {
  /** https://localhost:<port> */
  readonly endpoint: string;
  readonly requests: readonly GraphRequestRecord[];
  readonly deliveries: readonly GraphDelivery[];
  /** ids of drafts deleted with DELETE */
  readonly deletedDrafts: readonly string[];
  /** the most requests in flight for one mailbox at once */
  readonly maxConcurrent: number;
  /** drafts that are neither sent nor deleted */
  liveDrafts(): readonly { id: string; mailbox: string; attachments: number }[];
  fault(fault: GraphFault): void;
  clearFaults(): void;
  /** refuse this token from now on (401), as Graph does for an expired one */
  revoke(accessToken: string): void;
  /** resolves with the first request record (past or future) that matches */
  waitForRequest(match: (r: GraphRequestRecord) => boolean, timeoutMs?: number): Promise<GraphRequestRecord>;
  waitForDeliveries(count: number, timeoutMs?: number): Promise<void>;
  /** the delivered message parsed, with a draft's uploaded attachments merged in */
  parsed(delivery: GraphDelivery): Promise<ParsedDelivery>;
  close(): Promise<void>;
}

export interface ParsedDelivery {
  readonly subject: string | undefined;
  readonly text: string | undefined;
  readonly html: string | false | undefined;
  readonly headers: ReadonlyMap<string, unknown>;
  readonly attachments: readonly { filename: string | undefined; contentType: string; contentId: string | undefined; content: Buffer }[];
}

const graphError = (code: string, message: string): Record<string, unknown> => ({ error: { code, message } });

/** Top-level header block and body of a message (CRLF). */
function splitHeader(mime: Buffer): { header: string; body: Buffer } {
  const at = mime.indexOf('\r\n\r\n');
  if (at === -1) return { header: mime.toString('latin1'), body: Buffer.alloc(0) };
  return { header: mime.subarray(0, at + 2).toString('latin1'), body: mime.subarray(at + 2) };
}

function headerFields(header: string): string[] {
  return header.split(/\r\n(?![ \t])/).filter((f) => f !== '');
}

function fieldValues(mime: Buffer, name: string): string[] {
  return headerFields(splitHeader(mime).header)
    .filter((f) => f.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    .map((f) => f.slice(name.length + 1).replace(/\r\n[ \t]/g, ' ').trim());
}

function addresses(mime: Buffer, name: string): string[] {
  const values = fieldValues(mime, name);
  if (values.length === 0) return [];
  const out: string[] = [];
  const walk = (list: readonly { address?: string; group?: unknown }[]): void => {
    for (const e of list) {
      if (Array.isArray(e.group)) walk(e.group as typeof list);
      else if (e.address) out.push(e.address.toLowerCase());
    }
  };
  walk(parseAddressHeader(values).value as unknown as { address?: string; group?: unknown }[]);
  return out;
}

function withoutBcc(mime: Buffer): Buffer {
  const { header, body } = splitHeader(mime);
  const kept = headerFields(header).filter((f) => !/^bcc:/i.test(f));
  return Buffer.concat([Buffer.from(kept.map((f) => `${f}\r\n`).join(''), 'latin1'), body]);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export async function startFakeGraph(options: FakeGraphOptions): Promise<FakeGraph> {
  const mailboxes = new Set(options.mailboxes.map((m) => m.toLowerCase()));
  const onPremises = new Set((options.onPremises ?? []).map((m) => m.toLowerCase()));
  const maxMessageBytes = options.maxMessageBytes ?? 35 * 1024 * 1024;
  const requests: GraphRequestRecord[] = [];
  const deliveries: GraphDelivery[] = [];
  const deletedDrafts: string[] = [];
  const drafts = new Map<string, Draft>();
  const sessions = new Map<string, UploadSession>();
  const revoked = new Set<string>();
  let faults: { fault: GraphFault; left: number }[] = [];
  const inflight = new Map<string, number>();
  let maxConcurrent = 0;
  const events = new EventEmitter();
  const stalled = new Set<ServerResponse>();
  let port = 0;

  const record = (r: GraphRequestRecord): void => {
    requests.push(r);
    events.emit('request', r);
  };

  const takeFault = (route: GraphRoute): GraphFault | undefined => {
    const entry = faults.find((f) => f.fault.route === route && f.left > 0);
    if (entry === undefined) return undefined;
    entry.left -= 1;
    faults = faults.filter((f) => f.left > 0);
    return entry.fault;
  };

  const deliver = (via: GraphDelivery['via'], mailbox: string, mime: Buffer, attachments: readonly GraphAttachmentRecord[], savedToSentItems: boolean): Answer => {
    const recipients = [...addresses(mime, 'to'), ...addresses(mime, 'cc'), ...addresses(mime, 'bcc')];
    if (recipients.length === 0) return { status: 400, body: graphError('ErrorInvalidRecipients', 'At least one recipient is not valid.') };
    const size = mime.length + attachments.reduce((n, a) => n + Math.ceil(a.content.length / 3) * 4, 0);
    if (size > maxMessageBytes) {
      return { status: 413, body: graphError('ErrorMessageSizeExceeded', `The message exceeds the maximum supported size of ${maxMessageBytes} bytes.`) };
    }
    const from = addresses(mime, 'from')[0];
    const allowed = new Set([mailbox, ...(options.sendAs?.[mailbox] ?? []).map((a) => a.toLowerCase())]);
    if (from !== undefined && !allowed.has(from)) {
      return { status: 403, body: graphError('ErrorSendAsDenied', 'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.') };
    }
    deliveries.push({ via, mailbox, recipients, mime: withoutBcc(mime), attachments: [...attachments], savedToSentItems });
    events.emit('delivery');
    return { status: 202, body: undefined };
  };

  interface Answer {
    readonly status: number;
    readonly body: unknown;
    readonly headers?: Record<string, string>;
  }

  const decodeMime = (contentType: string | undefined, body: Buffer): Buffer | Answer => {
    if (!(contentType ?? '').toLowerCase().startsWith('text/plain')) {
      return { status: 415, body: graphError('UnsupportedMediaType', 'MIME content must be sent with Content-Type text/plain.') };
    }
    const text = body.toString('latin1').replace(/\r?\n/g, '');
    if (text === '' || !BASE64.test(text) || text.length % 4 !== 0) return { status: 400, body: graphError('ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.') };
    return Buffer.from(text, 'base64');
  };

  const draftOf = (mailbox: string, id: string | undefined): Draft | undefined => {
    const d = id === undefined ? undefined : drafts.get(id);
    return d !== undefined && d.mailbox === mailbox && d.state === 'draft' ? d : undefined;
  };
  const notFound: Answer = { status: 404, body: graphError('ErrorItemNotFound', 'The specified object was not found in the store.') };

  function route(method: string, segments: readonly string[]): { route: GraphRoute; mailbox?: string; id?: string; session?: string } {
    if (segments[0] === 'upload' && segments[1] !== undefined) return { route: method === 'GET' ? 'uploadStatus' : 'uploadChunk', session: segments[1] };
    if (segments[0] !== 'v1.0' || segments[1] !== 'users' || segments[2] === undefined) return { route: 'unknown' };
    const mailbox = decodeURIComponent(segments[2]).toLowerCase();
    const rest = segments.slice(3);
    if (rest.length === 1 && rest[0] === 'sendMail' && method === 'POST') return { route: 'sendMail', mailbox };
    if (rest[0] !== 'messages') return { route: 'unknown', mailbox };
    if (rest.length === 1 && method === 'POST') return { route: 'createDraft', mailbox };
    const id = rest[1] === undefined ? undefined : decodeURIComponent(rest[1]);
    if (rest.length === 2) {
      if (method === 'PATCH') return { route: 'updateDraft', mailbox, ...(id === undefined ? {} : { id }) };
      if (method === 'GET') return { route: 'getDraft', mailbox, ...(id === undefined ? {} : { id }) };
      if (method === 'DELETE') return { route: 'deleteDraft', mailbox, ...(id === undefined ? {} : { id }) };
    }
    if (rest.length === 3 && rest[2] === 'send' && method === 'POST') return { route: 'sendDraft', mailbox, ...(id === undefined ? {} : { id }) };
    if (rest.length === 3 && rest[2] === 'attachments' && method === 'POST') return { route: 'addAttachment', mailbox, ...(id === undefined ? {} : { id }) };
    if (rest.length === 4 && rest[2] === 'attachments' && rest[3] === 'createUploadSession' && method === 'POST') {
      return { route: 'createUploadSession', mailbox, ...(id === undefined ? {} : { id }) };
    }
    return { route: 'unknown', mailbox };
  }

  function handle(req: IncomingMessage, r: ReturnType<typeof route>, url: URL, body: Buffer): Answer {
    const json = (): Record<string, unknown> | undefined => {
      try {
        const v: unknown = JSON.parse(body.toString('utf8'));
        return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
      } catch {
        return undefined;
      }
    };
    if (r.route === 'uploadChunk' || r.route === 'uploadStatus') {
      const session = r.session === undefined ? undefined : sessions.get(r.session);
      if (session === undefined || url.searchParams.get('authtoken') !== session.secret) return notFound;
      if (req.headers.authorization !== undefined) {
        return { status: 401, body: graphError('InvalidAuthenticationToken', 'An upload URL is pre-authenticated: requests to it must not carry an Authorization header.') };
      }
      if (session.draft.state !== 'draft') return notFound;
      if (r.route === 'uploadStatus') return { status: 200, body: { expirationDateTime: new Date(Date.now() + 900_000).toISOString(), nextExpectedRanges: [`${session.next}`] } };
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(req.headers['content-range'] ?? '');
      if (range === null) return { status: 400, body: graphError('InvalidRange', 'Content-Range header missing or malformed.') };
      const [start, end, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
      if (total !== session.item.size) return { status: 400, body: graphError('InvalidRange', `Content-Range total ${total} differs from the declared size ${session.item.size}.`) };
      if (end - start + 1 !== body.length) return { status: 400, body: graphError('InvalidRange', 'Content-Range does not match the request body length.') };
      if (start !== session.next) return { status: 416, body: { ...graphError('InvalidRange', `Expected the range to start at ${session.next}.`), nextExpectedRanges: [`${session.next}`] } };
      session.chunks.push(body);
      session.next = end + 1;
      if (session.next < session.item.size) {
        return { status: 200, body: { expirationDateTime: new Date(Date.now() + 900_000).toISOString(), nextExpectedRanges: [`${session.next}`] } };
      }
      sessions.delete(session.id);
      session.draft.attachments.push({ ...session.item, content: Buffer.concat(session.chunks), via: 'uploadSession' });
      return { status: 201, body: undefined, headers: { location: `https://localhost:${port}/v1.0/users/${session.draft.mailbox}/messages/${session.draft.id}/attachments/${randomBytes(6).toString('hex')}` } };
    }

    // Graph calls: the bearer token first, then the mailbox
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const claims = token === undefined ? undefined : decodeJwtPart(token.split('.')[1]);
    if (token === undefined || claims === undefined || revoked.has(token) || !options.tokens.isValid(token)) {
      return { status: 401, body: graphError('InvalidAuthenticationToken', 'Access token has expired or is not yet valid.') };
    }
    if (claims.aud !== GRAPH_AUDIENCE && claims.aud !== '00000003-0000-0000-c000-000000000000') {
      return { status: 401, body: graphError('InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.') };
    }
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    if (!roles.includes('Mail.Send')) return { status: 403, body: graphError('ErrorAccessDenied', 'Access is denied. Check credentials and try again.') };
    const mailbox = r.mailbox;
    if (mailbox === undefined || r.route === 'unknown') return { status: 400, body: graphError('BadRequest', 'Unsupported request.') };
    if (onPremises.has(mailbox)) return { status: 404, body: graphError('MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.') };
    if (!mailboxes.has(mailbox)) return { status: 404, body: graphError('ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`) };

    switch (r.route) {
      case 'sendMail': {
        const mime = decodeMime(req.headers['content-type'], body);
        if (!Buffer.isBuffer(mime)) return mime;
        return deliver('sendMail', mailbox, mime, [], true);
      }
      case 'createDraft': {
        const mime = decodeMime(req.headers['content-type'], body);
        if (!Buffer.isBuffer(mime)) return mime;
        const id = `AAMk${randomBytes(12).toString('base64url')}`;
        drafts.set(id, { id, mailbox, mime, attachments: [], deleteAfterSubmit: false, state: 'draft' });
        return { status: 201, body: { id, isDraft: true } };
      }
      case 'getDraft': {
        const d = draftOf(mailbox, r.id);
        return d === undefined ? notFound : { status: 200, body: { id: d.id, isDraft: true } };
      }
      case 'deleteDraft': {
        const d = draftOf(mailbox, r.id);
        if (d === undefined) return notFound;
        d.state = 'deleted';
        deletedDrafts.push(d.id);
        return { status: 204, body: undefined };
      }
      case 'updateDraft': {
        const d = draftOf(mailbox, r.id);
        if (d === undefined) return notFound;
        const patch = json();
        if (patch === undefined) return { status: 400, body: graphError('BadRequest', 'Invalid JSON.') };
        const props = Array.isArray(patch.singleValueExtendedProperties) ? (patch.singleValueExtendedProperties as { id?: string; value?: string }[]) : [];
        for (const p of props) if ((p.id ?? '').toLowerCase() === 'boolean 0x0e01') d.deleteAfterSubmit = p.value === 'true';
        return { status: 200, body: { id: d.id } };
      }
      case 'addAttachment': {
        const d = draftOf(mailbox, r.id);
        if (d === undefined) return notFound;
        const a = json();
        if (a === undefined || a['@odata.type'] !== '#microsoft.graph.fileAttachment' || typeof a.name !== 'string' || typeof a.contentBytes !== 'string') {
          return { status: 400, body: graphError('ErrorInvalidRequest', 'A fileAttachment needs @odata.type, name and contentBytes.') };
        }
        d.attachments.push({
          name: a.name,
          contentType: typeof a.contentType === 'string' ? a.contentType : 'application/octet-stream',
          isInline: a.isInline === true,
          contentId: typeof a.contentId === 'string' ? a.contentId : undefined,
          content: Buffer.from(a.contentBytes, 'base64'),
          via: 'post',
        });
        return { status: 201, body: { id: randomBytes(6).toString('hex') } };
      }
      case 'createUploadSession': {
        const d = draftOf(mailbox, r.id);
        if (d === undefined) return notFound;
        const item = json()?.AttachmentItem as Record<string, unknown> | undefined;
        if (item === undefined || item.attachmentType !== 'file' || typeof item.name !== 'string' || typeof item.size !== 'number' || item.size <= 0) {
          return { status: 400, body: graphError('ErrorInvalidRequest', 'AttachmentItem needs attachmentType "file", name and size.') };
        }
        if (item.size > 150 * 1024 * 1024) return { status: 413, body: graphError('ErrorAttachmentSizeLimitExceeded', 'The attachment is larger than 150 MB.') };
        const session: UploadSession = {
          id: randomBytes(8).toString('hex'),
          secret: randomBytes(12).toString('base64url'),
          draft: d,
          item: {
            name: item.name,
            size: item.size,
            contentType: typeof item.contentType === 'string' ? item.contentType : 'application/octet-stream',
            isInline: item.isInline === true,
            contentId: typeof item.contentId === 'string' ? item.contentId : undefined,
          },
          chunks: [],
          next: 0,
        };
        sessions.set(session.id, session);
        return {
          status: 201,
          body: { uploadUrl: `https://localhost:${port}/upload/${session.id}?authtoken=${session.secret}`, expirationDateTime: new Date(Date.now() + 900_000).toISOString(), nextExpectedRanges: ['0-'] },
        };
      }
      case 'sendDraft': {
        const d = draftOf(mailbox, r.id);
        if (d === undefined) return notFound;
        const answer = deliver('draft', mailbox, d.mime, d.attachments, !d.deleteAfterSubmit);
        if (answer.status === 202) d.state = 'sent';
        return answer;
      }
      default:
        return { status: 400, body: graphError('BadRequest', 'Unsupported request.') };
    }
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', `https://localhost:${port}`);
    const segments = url.pathname.split('/').filter((s) => s !== '');
    const method = req.method ?? 'GET';
    const r = route(method, segments);
    const mailbox = r.mailbox ?? (r.session === undefined ? undefined : sessions.get(r.session)?.draft.mailbox);
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const base = { route: r.route, method, mailbox, token, ...(req.headers['content-range'] === undefined ? {} : { contentRange: req.headers['content-range'] }) };
    const key = mailbox ?? '';
    inflight.set(key, (inflight.get(key) ?? 0) + 1);
    maxConcurrent = Math.max(maxConcurrent, inflight.get(key) ?? 0);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inflight.set(key, (inflight.get(key) ?? 1) - 1);
    };
    res.on('close', finish);
    const reply = (answer: Answer): void => {
      record({ ...base, status: answer.status, at: Date.now(), bytes: size });
      const headers: Record<string, string> = { ...(answer.headers ?? {}) };
      if (answer.body !== undefined) headers['content-type'] = 'application/json';
      res.writeHead(answer.status, headers);
      res.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
      finish();
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > GRAPH_REQUEST_LIMIT_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      void (async () => {
        if (tooLarge) {
          reply({ status: 413, body: graphError('RequestEntityTooLarge', `The request body of ${size} bytes exceeds the 4 MB limit.`) });
          return;
        }
        const fault = takeFault(r.route);
        if (fault?.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
        if ((inflight.get(key) ?? 0) > 4 && r.route !== 'unknown') {
          reply({ status: 429, body: graphError('ApplicationThrottled', 'Application is over its MailboxConcurrency limit.'), headers: { 'retry-after': '1' } });
          return;
        }
        if (fault?.stall === true) {
          record({ ...base, status: 'stalled', at: Date.now(), bytes: size });
          stalled.add(res);
          return;
        }
        if (fault?.drop === 'before') {
          record({ ...base, status: 'dropped', at: Date.now(), bytes: size });
          req.socket.destroy();
          return;
        }
        if (fault?.status !== undefined) {
          reply({
            status: fault.status,
            body: graphError(fault.code ?? 'ServiceUnavailable', fault.message ?? 'Scripted failure.'),
            ...(fault.retryAfterSeconds === undefined ? {} : { headers: { 'retry-after': String(fault.retryAfterSeconds) } }),
          });
          return;
        }
        const answer = handle(req, r, url, Buffer.concat(chunks));
        if (fault?.drop === 'after') {
          record({ ...base, status: 'dropped', at: Date.now(), bytes: size });
          req.socket.destroy();
          return;
        }
        reply(answer);
      })();
    });
  };

  const server = createServer({ key: tlsFixture('server.key'), cert: tlsFixture('server.pem') }, onRequest);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;

  const waitFor = async <T>(check: () => T | undefined, event: string, timeoutMs: number, what: string): Promise<T> => {
    const found = check();
    if (found !== undefined) return found;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        events.off(event, onEvent);
        reject(new Error(`fake Graph: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const onEvent = (): void => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        events.off(event, onEvent);
        resolve(value);
      };
      events.on(event, onEvent);
    });
  };

  return {
    endpoint: `https://localhost:${port}`,
    requests,
    deliveries,
    deletedDrafts,
    get maxConcurrent() {
      return maxConcurrent;
    },
    liveDrafts: () => [...drafts.values()].filter((d) => d.state === 'draft').map((d) => ({ id: d.id, mailbox: d.mailbox, attachments: d.attachments.length })),
    fault(fault) {
      faults.push({ fault, left: fault.times ?? 1 });
    },
    clearFaults() {
      faults = [];
    },
    revoke(accessToken) {
      revoked.add(accessToken);
    },
    waitForRequest: (match, timeoutMs = 10_000) => waitFor(() => requests.find(match), 'request', timeoutMs, 'a matching request'),
    waitForDeliveries: async (count, timeoutMs = 10_000) => {
      await waitFor(() => (deliveries.length >= count ? true : undefined), 'delivery', timeoutMs, `${count} deliveries`);
    },
    async parsed(delivery) {
      const mail = await simpleParser(delivery.mime, { keepCidLinks: true });
      return {
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        headers: mail.headers,
        attachments: [
          ...mail.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, contentId: a.contentId?.replace(/^<|>$/g, ''), content: a.content })),
          ...delivery.attachments.map((a) => ({ filename: a.name, contentType: a.contentType, contentId: a.contentId, content: a.content })),
        ],
      };
    },
    async close() {
      for (const res of stalled) res.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
