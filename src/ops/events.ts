/**
 * The event registry: every log event the relay writes, with its level, its fields and when it
 * is written, in one table and one style. The event name is pino's `msg`; what varies goes in
 * fields, never into the name. A test (test/unit/ops/events.test.ts) reads every log call in
 * src/ and fails when one uses a name, a level or a field this table does not list, or when a
 * row is no longer used.
 *
 * Style: lower-case words joined by '-', with an area prefix ('spool.', 'token.', ...) except
 * for the message and relay lifecycle lines admins grep for (`received`, `rejected`, `delivery`,
 * `deferred`, `failed`, `listening`, ...), whose names are documented in the README.
 * Who logs: the layer that decides what a failure means logs it, once; lower layers throw.
 * Child-logger bindings (`qid`, `upstream`) are not listed: they are on every line of their scope.
 */

export type EventLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface EventSpec {
  /** the level(s) the event is written at (`delivery`: info when sent, warn otherwise) */
  readonly level: EventLevel | readonly EventLevel[];
  /** the fields a line may carry */
  readonly fields: readonly string[];
  /** when it is written, for the admin reading the log */
  readonly when: string;
}

export const EVENT_NAME_STYLE = /^[a-z]+(-[a-z]+)*(\.[a-z]+(-[a-z]+)*)*$/;

export const EVENTS = {
  // --- the relay's lifecycle (app.ts, cli/start.ts)
  listening: { level: 'info', fields: ['host', 'port', 'hostname'], when: 'the SMTP port is bound' },
  'http.listening': { level: 'info', fields: ['host', 'port'], when: 'the operations HTTP port is bound' },
  upstreams: { level: 'info', fields: ['upstreams'], when: 'at start: the configured upstreams (name, host, port, security, auth type)' },
  'upstreams.outbox': { level: 'warn', fields: ['outboxDir'], when: 'at start: no upstream is configured, messages are written to the outbox directory' },
  'upstream.tls-insecure': { level: 'warn', fields: ['upstream'], when: 'at start or reload: an upstream has tls.rejectUnauthorized false (its certificate is NOT verified)' },
  'upstream.auth-plaintext': { level: 'warn', fields: ['upstream', 'key', 'detail'], when: 'at start: auth.allowPlaintext lets a login/plain password go where no TLS protects it' },
  'config.readable-secrets': { level: 'warn', fields: ['config', 'detail'], when: 'at start: the config file is readable by every user and holds literal secrets (keys named in detail)' },
  'listen.exposed': { level: 'warn', fields: ['host', 'kind', 'detail'], when: 'at start: the SMTP listener may be reachable beyond loopback' },
  'spool.stale-lock-replaced': { level: 'warn', fields: ['pid', 'since'], when: 'at start: the spool lock of a relay that is gone was taken over' },
  'spool.recovered': { level: 'info', fields: ['spoolDir', 'queued', 'removedTmp', 'quarantined'], when: 'at start: the spool was recovered (queued messages, leftovers removed, entries set aside)' },
  'config.changed': { level: 'info', fields: ['changed', 'needsRestart', 'clearedDown'], when: 'a reload took effect (changed keys, never values)' },
  'config.reload-refused': { level: 'error', fields: ['problems'], when: 'a reload was refused; the running config stays' },
  signal: { level: 'info', fields: ['signal'], when: 'a signal arrived (SIGTERM, SIGINT, SIGHUP)' },
  stopping: { level: 'info', fields: ['openConnections'], when: 'a graceful stop began' },
  stopped: { level: 'info', fields: [], when: 'the relay stopped' },
  'start-failed': { level: 'fatal', fields: ['err'], when: 'the relay could not start' },
  'stop-failed': { level: 'error', fields: ['err'], when: 'the graceful stop failed' },

  // --- the receive half (intake/)
  refused: {
    level: 'warn',
    fields: ['client', 'reason', 'maxClients', 'count', 'intervalSeconds'],
    when: 'a client was refused at connect (not allowed, too many clients, shutting down; floods once per interval, with a count)',
  },
  'intake.session-cut': {
    level: 'warn',
    fields: ['reason', 'client', 'count', 'intervalSeconds'],
    when: 'a session was cut off with 421 (idle, or data slower than listen.minDataRate...; once per interval, with a count)',
  },
  rejected: { level: 'info', fields: ['client', 'reason', 'reply'], when: 'a message was refused (the reason and the reply sent)' },
  received: {
    level: 'info',
    fields: ['client', 'from', 'originalSender', 'originalFrom', 'to', 'size', 'attachments', 'policies', 'messageId', 'subject'],
    when: 'a message was accepted and spooled',
  },
  'intake.error': { level: 'error', fields: ['err', 'client'], when: 'the SMTP server reported an error' },
  'intake.socket-error': { level: 'warn', fields: ['err'], when: 'a client connection failed' },
  'intake.slow-client': { level: 'warn', fields: ['client', 'reason', 'count', 'intervalSeconds'], when: 'a client was cut off for sending too slowly' },
  'intake.in-flight-full': {
    level: 'warn',
    fields: ['reason', 'usedBytes', 'limitMB', 'count', 'intervalSeconds'],
    when: 'all DATA transactions together reached listen.maxInFlightMB (once per interval, with a count)',
  },
  'intake.in-flight-wait': {
    level: 'warn',
    fields: ['reason', 'client', 'waitingBefore', 'count', 'intervalSeconds'],
    when: 'a DATA waits for listen.maxInFlightMB (once per interval, with a count)',
  },
  'spool.write-failed': { level: 'error', fields: ['err'], when: 'a message could not be spooled (the client got 452 4.3.1)' },

  // --- the delivery half (delivery/, outcome/)
  delivery: {
    level: ['info', 'warn'],
    fields: ['from', 'originalSender', 'originalFrom', 'to', 'relay', 'attempt', 'delayMs', 'durationMs', 'errorCode', 'reason', 'dsn', 'status', 'response'],
    when: 'one line per recipient per upstream try; status is the outcome: sent (info), failover, deferred or bounced (warn)',
  },
  'upstream.skipped-limits': { level: 'info', fields: ['relay'], when: 'an upstream was passed over: the message exceeds its attachment limits' },
  'upstream.token-refresh': { level: 'info', fields: ['qid', 'responseCode', 'command'], when: 'the upstream refused the access token: a new one is fetched and the message sent once more' },
  'smtp.transcript': { level: 'debug', fields: ['tnx', 'cid', 'line'], when: 'log.trace "detail": one SMTP command or reply of an upstream session (AUTH masked, never the message)' },
  'token.fetched': { level: 'info', fields: ['upstream', 'expiresAt'], when: 'an OAuth2 access token was obtained' },
  'token.failed': { level: 'warn', fields: ['upstream', 'error'], when: 'an OAuth2 token request failed (the AADSTS code and what to fix)' },
  'token.certificate-expiring': { level: 'warn', fields: ['upstream', 'certificateExpiresAt', 'daysLeft'], when: 'the app registration certificate expires within 30 days' },
  'graph.throttled': { level: 'info', fields: ['command', 'status', 'waitMs'], when: 'Microsoft Graph asked to wait (Retry-After); the request is sent again on the same upstream' },
  'graph.draft-deleted': { level: 'info', fields: ['qid', 'result', 'phase'], when: 'a half-built draft from an earlier run was deleted' },
  'graph.draft-gone': { level: 'info', fields: ['qid', 'result', 'phase'], when: 'the draft an earlier run left was already gone' },
  'graph.upload-resume': { level: 'info', fields: ['command', 'from', 'error'], when: 'an upload session broke off; the upload goes on from where it stopped' },
  'graph.draft-delete-failed': { level: 'warn', fields: ['qid', 'error'], when: 'a half-built draft could not be deleted; the next attempt deletes it' },
  'dispatch.read-failed': { level: 'error', fields: ['qid', 'err'], when: 'a queued message could not be read; it is tried again later' },
  'dispatch.unexpected': { level: 'error', fields: ['qid', 'err'], when: 'an unexpected error during an attempt; the message stays queued' },
  'spool.mark-failed': { level: 'error', fields: ['qid', 'err'], when: 'the spool could not be updated after an attempt; the message is tried again later' },
  'spool.remove-failed': { level: 'error', fields: ['err'], when: 'a delivered message could not be removed from the spool (it may be delivered again)' },
  'returned-to-client': { level: 'warn', fields: ['recipients', 'response'], when: 'every recipient was refused while the client waited: it got the 5xx, the message left the spool' },
  abandoned: { level: 'warn', fields: ['recipients', 'lastError'], when: 'waitSeconds -1 and not delivered: the client got 451, the message left the spool' },
  deferred: { level: 'info', fields: ['pending', 'attempts', 'nextAttemptAt', 'lastError'], when: 'a message stays queued for a later attempt' },
  failed: { level: 'error', fields: ['from', 'originalSender', 'originalFrom', 'reason', 'recipients'], when: 'a message moved to failed/ (refused for good, or expired)' },
  // --- failure notices (notify/)
  'notice.queued': { level: 'info', fields: ['notice', 'to', 'audience', 'recipients'], when: 'a failure notice (RFC 3464) about this message was spooled for the admins or the sender' },
  'notice.skipped': { level: 'info', fields: ['reason'], when: 'no notice about this failed message: it has the null sender (a notice itself, or a bounce)' },
  'notice.rate-limited': { level: 'warn', fields: ['to', 'maxPerHour'], when: 'an address already had delivery.notify.maxPerHour notices this hour: this one is not sent' },
  'notice.failed': { level: 'error', fields: ['err'], when: 'the failure notice could not be built or spooled (the failed message stays in failed/)' },

  // --- the spool's own decisions (spool/)
  'spool.not-writable': { level: 'warn', fields: ['err'], when: 'the readiness probe could not write to the spool' },
  'spool.tmp-cleanup-failed': { level: 'warn', fields: ['file', 'err'], when: 'a leftover in tmp/ could not be removed at start' },
  'spool.quarantined': { level: 'warn', fields: ['file', 'movedAs', 'problem'], when: 'an unreadable queue entry was set aside at start' },
  'spool.meta-invalid': { level: 'error', fields: ['qid', 'problem'], when: "a queue entry's metadata is not valid" },
  'spool.message-unreadable': { level: 'error', fields: ['qid', 'err'], when: "a queue entry's message file could not be read" },
  'spool.converted': { level: 'info', fields: ['qid', 'subdir'], when: 'at start: an entry of the previous spool layout (.eml + .json) became one message file (.msg)' },
  'spool.convert-failed': { level: 'error', fields: ['qid', 'subdir', 'err'], when: 'at start: an entry of the previous spool layout could not be converted; it stays as it was and is tried again at the next start' },
  'spool.state-orphan': { level: 'warn', fields: ['file', 'action'], when: 'at start: a .state file without its message was moved after it (an interrupted move to failed/) or removed; in failed/, a .state or reason whose message left it (an interrupted requeue or delete) was removed' },
  'spool.cleanup-failed': { level: 'warn', fields: ['file', 'err'], when: 'a spool file could not be removed' },

  // --- operations (ops/)
  'admin.refused': { level: 'warn', fields: ['client', 'method', 'path', 'status'], when: 'an admin API request was refused (no token, not loopback, cross-site)' },
  'page.refused': { level: 'warn', fields: ['client', 'method', 'path', 'status'], when: "a status page file was refused (not this server's own name, or a cross-site request)" },
  admin: {
    level: 'info',
    fields: ['audit', 'qid', 'action', 'recipients', 'by', 'peer', 'user', 'userAgent', 'result', 'state', 'failedAt'],
    when: 'audit: an admin action on the queue or failed mail (retry, delete, requeue, purge), who asked (cli, api, page, relay) and the result',
  },
  'spool.failed-entry-unreadable': { level: 'warn', fields: ['qid', 'err'], when: 'a message in failed/ could not be read (listing or purging failed mail)' },
  'failed.retention-error': { level: 'error', fields: ['err'], when: 'removing failed mail past delivery.failedRetentionDays failed; it is tried again later' },
  'http.refused': {
    level: 'warn',
    fields: ['reason', 'limit', 'code', 'client', 'count', 'intervalSeconds'],
    when: 'an operations HTTP connection was refused or closed (too many connections, timeout, bad request; once per interval, with a count)',
  },
  console: { level: ['debug', 'info', 'warn', 'error'], fields: ['source', 'text'], when: "a library wrote to the console: its text, at the console method's level" },
  'process.warning': { level: 'warn', fields: ['source', 'name', 'code', 'text'], when: 'Node.js emitted a process warning' },
  'http.error': { level: 'error', fields: ['err', 'method', 'path'], when: 'an operations HTTP request failed' },
} as const satisfies Record<string, EventSpec>;

export type EventName = keyof typeof EVENTS;
