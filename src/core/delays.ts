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

/** `send-test --via`: connecting to the relay and its greeting. */
export const SEND_TEST_CONNECT_TIMEOUT_MS = 10_000;

/** `send-test --via`: the relay may hold its DATA reply for delivery.waitSeconds, so the reply may take this long. */
export const SEND_TEST_REPLY_TIMEOUT_MS = 120_000;
