/**
 * The last delivery tries, in memory, for the status page ("what just happened").
 *
 * Does: keep the newest `capacity` tries (one entry per upstream try, with its recipients),
 *   newest first; count the tries seen since start.
 * Never: grow past `capacity` (a ring: old entries are dropped); hold message content (only
 *   addresses, the relay, the outcome and the upstream's answer, as the delivery log line does).
 * Assumes: fed from the outcome recorder's try hook with the relay's clock.
 */

export interface RecentTry {
  /** ISO 8601 */
  readonly at: string;
  readonly qid: string;
  readonly recipients: readonly string[];
  readonly relay: string;
  readonly outcome: string;
  readonly dsn: string;
  readonly response: string;
  readonly sender: string;
  readonly originalSender: string | undefined;
}

export class RecentDeliveries {
  private readonly items: RecentTry[] = [];

  constructor(private readonly capacity = 30) {}

  add(item: RecentTry): void {
    this.items.unshift(item);
    if (this.items.length > this.capacity) this.items.length = this.capacity;
  }

  /** newest first */
  list(): readonly RecentTry[] {
    return [...this.items];
  }
}
