/**
 * The relay's fixed delays, named in one place with what each is for. (Delays an admin may
 * change are config keys in config/schema.ts, with their defaults there.)
 */

/** stop(): how long the dispatcher waits for delivery attempts in flight before it stops anyway. */
export const DISPATCH_STOP_GRACE_MS = 15_000;

/** A queued entry whose files could not be read is tried again after this long. */
export const SPOOL_READ_RETRY_MS = 60_000;

/** The spool could not be marked after an attempt (disk full?): the entry is tried again after this long. */
export const SPOOL_MARK_RETRY_MS = 30_000;

/** After a reload, sends still running on the replaced upstreams may finish for this long before they are closed. */
export const RETIRE_OLD_UPSTREAMS_MS = 120_000;

/** How often the relay deletes failed mail older than delivery.failedRetentionDays (the retention is in days: hourly is prompt enough). */
export const FAILED_RETENTION_CHECK_MS = 3_600_000;

/** `health`: the SMTP greeting and the /healthz answer each (a healthy relay answers at once; a container healthcheck must not hang). */
export const HEALTH_CHECK_TIMEOUT_MS = 5_000;

/** `start --watch`: how often the config file's modification time is looked at (a saved edit applies within a second). */
export const CONFIG_WATCH_INTERVAL_MS = 1_000;

/** `queue`: how long the relay's admin API may take to answer before the command says it is not reachable. */
export const QUEUE_API_TIMEOUT_MS = 3_000;

/**
 * `sendmail`: connecting to the relay and its greeting; each command's reply (the relay answers
 * at once: a minute covers a loaded host); then the final reply to DATA, which the relay may
 * hold for delivery.waitSeconds: that plus a margin for the upstream's own answer, or
 * (waitSeconds -1: until the upstream answers) ten minutes, RFC 5321's DATA-termination timeout.
 */
export const SENDMAIL_CONNECT_TIMEOUT_MS = 10_000;
export const SENDMAIL_REPLY_TIMEOUT_MS = 60_000;
export const SENDMAIL_REPLY_MARGIN_MS = 60_000;
export const SENDMAIL_UNBOUNDED_REPLY_TIMEOUT_MS = 600_000;

/** Graph: a 429/503/504 whose Retry-After is at most this long is waited out and resent inline; a longer one defers the message. */
export const GRAPH_MAX_INLINE_WAIT_MS = 30_000;

/** The raw sender's connect bound when its options carry no connectionTimeout: nodemailer's own default (2 min). */
export const NODEMAILER_CONNECTION_TIMEOUT_MS = 120_000;

/** `send-test --via`: connecting to the relay and its greeting. */
export const SEND_TEST_CONNECT_TIMEOUT_MS = 10_000;

/** `send-test --via`: the relay may hold its DATA reply for delivery.waitSeconds, so the reply may take this long. */
export const SEND_TEST_REPLY_TIMEOUT_MS = 120_000;

/**
 * A repeated warning (refused connections, sessions cut off, the in-flight budget full) is
 * logged once, then summarised with its count once per this interval: a flood yields one line
 * a minute per reason, enough to see it without filling the disk.
 */
export const FLOOD_LOG_INTERVAL_MS = 60_000;

/**
 * A new DATA waits at most this long for room in the in-flight budget (and at most half the
 * idle timeout, so its own session does not time out meanwhile) before it gets 452 4.3.1:
 * long enough to ride out a burst of large messages, short enough that the client retries.
 */
export const IN_FLIGHT_MAX_WAIT_MS = 30_000;

/**
 * After the last reply to a client the relay is cutting off (421 to a trickling SMTP client, 400
 * or 408 to an HTTP one), its socket is destroyed if it has not closed within this long: a client
 * that does not read its answer must not keep the slot (a real timer on the socket).
 */
export const UNREAD_REPLY_DESTROY_MS = 1_000;

/**
 * ops HTTP server defaults (app.ts passes the http.* config keys): connections, headers within
 * 10 s, keep-alive 5 s. A whole request may take the headers timeout plus REQUEST_BODY_EXTRA_MS,
 * at least REQUEST_TIMEOUT_FLOOR_MS (bodies are never read; a slow reader of a response is
 * bounded too). Node looks for connections past those timeouts every
 * HTTP_TIMEOUT_CHECK_INTERVAL_MS (its own default is 30 s, which lets a slow client overstay).
 */
export const HTTP_DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const HTTP_DEFAULT_IDLE_TIMEOUT_MS = 5_000;
export const REQUEST_BODY_EXTRA_MS = 5_000;
export const REQUEST_TIMEOUT_FLOOR_MS = 15_000;
export const HTTP_TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/**
 * validate --connect: after QUIT, how long to wait for the server to close (at most the
 * upstream's socketSeconds), and how long nodemailer waits after its FIN before destroying the
 * socket. The check is over by then; a server that lingers must not hold the command.
 */
export const VERIFY_QUIT_WAIT_MS = 5_000;
export const VERIFY_SOCKET_CLOSE_MS = 1_000;
