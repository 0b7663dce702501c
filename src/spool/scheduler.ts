/**
 * An in-memory schedule of queued messages by due time.
 *
 * Does: keep qids in a binary min-heap ordered by due time (ties: first scheduled
 * first) with a qid → position index, so schedule, re-schedule, unschedule and take
 * are O(log n) and has/nextDueAt are O(1).
 * Never: start a timer or read the clock (the caller passes `nowMs`); hold a qid twice
 * (re-scheduling replaces).
 * Assumes: due times are finite epoch milliseconds.
 */

interface Slot {
  readonly qid: string;
  dueAtMs: number;
  /** insertion order, breaks ties between equal due times */
  sequence: number;
}

export class DueQueue {
  private readonly heap: Slot[] = [];
  private readonly positionByQid = new Map<string, number>();
  private nextSequence = 0;

  get size(): number {
    return this.heap.length;
  }

  has(qid: string): boolean {
    return this.positionByQid.has(qid);
  }

  /** Adds `qid` due at `dueAtMs`, or moves it there when already scheduled. */
  schedule(qid: string, dueAtMs: number): void {
    const sequence = this.nextSequence++;
    const position = this.positionByQid.get(qid);
    if (position !== undefined) {
      const slot = this.slotAt(position);
      slot.dueAtMs = dueAtMs;
      slot.sequence = sequence;
      this.restore(position);
      return;
    }
    this.heap.push({ qid, dueAtMs, sequence });
    this.positionByQid.set(qid, this.heap.length - 1);
    this.siftUp(this.heap.length - 1);
  }

  /** Removes `qid`; returns whether it was scheduled. */
  unschedule(qid: string): boolean {
    const position = this.positionByQid.get(qid);
    if (position === undefined) return false;
    this.removeAt(position);
    return true;
  }

  /** Removes and returns up to `max` qids due at or before `nowMs`, earliest first. */
  takeDue(nowMs: number, max: number): string[] {
    const taken: string[] = [];
    // Bounded by `max` and by the heap size.
    while (taken.length < max && this.heap.length > 0) {
      const first = this.slotAt(0);
      if (first.dueAtMs > nowMs) break;
      taken.push(first.qid);
      this.removeAt(0);
    }
    return taken;
  }

  /** The earliest due time, or undefined when nothing is scheduled. */
  nextDueAt(): number | undefined {
    return this.heap[0]?.dueAtMs;
  }

  // ---- heap internals ----

  private slotAt(position: number): Slot {
    const slot = this.heap[position];
    if (slot === undefined) throw new Error(`DueQueue: no slot at ${position}`);
    return slot;
  }

  private before(a: Slot, b: Slot): boolean {
    return a.dueAtMs < b.dueAtMs || (a.dueAtMs === b.dueAtMs && a.sequence < b.sequence);
  }

  private removeAt(position: number): void {
    const removed = this.slotAt(position);
    const last = this.heap.pop();
    this.positionByQid.delete(removed.qid);
    if (last === undefined || last === removed) return;
    this.heap[position] = last;
    this.positionByQid.set(last.qid, position);
    this.restore(position);
  }

  private restore(position: number): void {
    this.siftDown(this.siftUp(position));
  }

  private swap(i: number, j: number): void {
    const a = this.slotAt(i);
    const b = this.slotAt(j);
    this.heap[i] = b;
    this.heap[j] = a;
    this.positionByQid.set(b.qid, i);
    this.positionByQid.set(a.qid, j);
  }

  /** Returns the final position. */
  private siftUp(start: number): number {
    let position = start;
    while (position > 0) {
      const parent = (position - 1) >> 1;
      if (!this.before(this.slotAt(position), this.slotAt(parent))) break;
      this.swap(position, parent);
      position = parent;
    }
    return position;
  }

  private siftDown(start: number): void {
    let position = start;
    const length = this.heap.length;
    for (;;) {
      const left = 2 * position + 1;
      const right = left + 1;
      let smallest = position;
      if (left < length && this.before(this.slotAt(left), this.slotAt(smallest))) smallest = left;
      if (right < length && this.before(this.slotAt(right), this.slotAt(smallest))) smallest = right;
      if (smallest === position) return;
      this.swap(position, smallest);
      position = smallest;
    }
  }
}
