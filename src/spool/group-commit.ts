/**
 * Group commit: many callers share one directory fsync.
 *
 * Does: run `flush` (a directory fsync) on behalf of every caller of `commit()`. The
 * first caller starts a flush at once; callers arriving while a flush runs wait for
 * the NEXT flush (their rename may have happened after the running one began), which
 * starts as soon as the current one ends and covers all of them.
 * Never: resolve a caller before a flush that started after the caller called
 * `commit()` has completed; swallow a flush error (every caller covered by a failed
 * flush is rejected with it).
 * Assumes: callers call `commit()` only after the operation to make durable (a rename)
 * has completed.
 */

interface Waiters {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

function newWaiters(): Waiters {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((resolvePromise, rejectPromise) => {
    resolve = resolvePromise;
    reject = rejectPromise;
  });
  return { promise, resolve, reject };
}

export class GroupCommitter {
  /** the flush now running, if any */
  private running: Promise<void> | undefined;
  /** callers waiting for the flush after the running one */
  private nextWaiters: Waiters | undefined;
  private flushCount = 0;

  constructor(private readonly flush: () => Promise<void>) {}

  /** How many flushes were started (for logs and metrics). */
  get flushesStarted(): number {
    return this.flushCount;
  }

  /** Resolves once a flush that started after this call has succeeded. */
  commit(): Promise<void> {
    if (this.running === undefined) return this.startFlush();
    this.nextWaiters ??= newWaiters();
    return this.nextWaiters.promise;
  }

  private startFlush(): Promise<void> {
    this.flushCount += 1;
    const flushing = Promise.resolve()
      .then(() => this.flush())
      .finally(() => {
        this.running = undefined;
        const waiters = this.nextWaiters;
        this.nextWaiters = undefined;
        if (waiters !== undefined) this.startFlush().then(waiters.resolve, waiters.reject);
      });
    this.running = flushing;
    return flushing;
  }
}
