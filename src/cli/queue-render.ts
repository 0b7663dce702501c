/**
 * The `queue list` text output, in the shape Postfix admins know from `mailq`: one block per
 * message, the first line with queue id, size, age, tries, next try and the sender; under it,
 * in parentheses, the last upstream answer (or why it failed); then one recipient per line;
 * a summary line at the end.
 *
 * Does: show the sender as the client gave it and, when the From policy rewrote it, what it
 *   became (`app@legacy.test -> noreply@contoso.com`), plus the header From when it differs, so
 *   with several apps behind one relay the admin sees which one sent.
 * Never: read the clock or the spool (rows and the time are passed in); print message bodies.
 */
import type { FailedRow, QueueRow } from '../ops/spool-admin.js';
import { formatDuration, truncate } from './table.js';

/** The sender column: original envelope sender, the rewritten one when different, the header From when different. */
export function describeSender(row: { readonly sender: string; readonly originalSender: string | undefined; readonly originalFrom: string | undefined }): string {
  const show = (address: string) => (address === '' ? '<>' : address);
  const original = row.originalSender ?? row.sender;
  let text = original === row.sender ? show(row.sender) : `${show(original)} -> ${show(row.sender)}`;
  if (row.originalFrom !== undefined && row.originalFrom.toLowerCase() !== original.toLowerCase()) text += ` (From: ${row.originalFrom})`;
  return text;
}

function kilobytes(bytes: number): string {
  return `${Math.max(1, Math.ceil(bytes / 1024))} KB`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

interface Block {
  readonly cells: readonly string[];
  /** lines under the first one, aligned with the last column */
  readonly more: readonly string[];
}

function renderBlocks(header: readonly string[], blocks: readonly Block[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...blocks.map((b) => (b.cells[i] ?? '').length)));
  const last = header.length - 1;
  const indent = widths.slice(0, last).reduce((sum, w) => sum + w + 2, 0);
  // numbers (size, tries) right-aligned, the rest left-aligned, as mailq does
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === last ? cell : i === 1 || i === 3 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(header)];
  for (const block of blocks) {
    out.push(line(block.cells));
    for (const more of block.more) out.push(`${' '.repeat(indent)}${more}`);
  }
  return `${out.join('\n')}\n`;
}

/** `queue list`: queued messages, oldest first, and a summary naming the failed ones. */
export function renderQueue(rows: readonly QueueRow[], failedCount: number, nowMs: number): string {
  const failedNote = failedCount > 0 ? `; ${plural(failedCount, 'failed message')} in failed/: smtp-sidecar queue list --failed` : '';
  if (rows.length === 0) return `queue is empty${failedNote}\n`;
  const header = ['QUEUE ID', 'SIZE', 'AGE', 'TRIES', 'NEXT TRY', 'SENDER / RECIPIENTS'];
  const blocks = rows.map((row): Block => {
    const nextMs = Date.parse(row.nextAttemptAt) - nowMs;
    return {
      cells: [
        row.qid,
        kilobytes(row.sizeBytes),
        formatDuration(nowMs - Date.parse(row.receivedAt)),
        String(row.attempts),
        Number.isNaN(nextMs) ? '?' : nextMs > 0 ? `in ${formatDuration(nextMs)}` : 'now',
        describeSender(row),
      ],
      more: [...(row.lastError === undefined ? [] : [`(${truncate(row.lastError, 200)})`]), ...row.pendingRecipients],
    };
  });
  const recipients = rows.reduce((n, r) => n + r.pendingRecipients.length, 0);
  const bytes = rows.reduce((n, r) => n + r.sizeBytes, 0);
  return `${renderBlocks(header, blocks)}\n-- ${plural(rows.length, 'queued message')}, ${plural(recipients, 'recipient')} pending, ${kilobytes(bytes)}${failedNote}\n`;
}

/** `queue list --failed`: failed messages, oldest first, each with its reason and every failed recipient's answer. */
export function renderFailed(rows: readonly FailedRow[], nowMs: number): string {
  if (rows.length === 0) return 'no failed messages\n';
  const header = ['QUEUE ID', 'SIZE', 'FAILED', 'TRIES', 'SENDER / RECIPIENTS'];
  const blocks = rows.map(
    (row): Block => ({
      cells: [
        row.qid,
        kilobytes(row.sizeBytes),
        row.failedAt === undefined ? '?' : `${formatDuration(nowMs - Date.parse(row.failedAt))} ago`,
        String(row.attempts),
        describeSender(row),
      ],
      more: [`(${truncate(row.reason, 200)})`, ...row.recipients.map((r) => (r.response === '' ? r.address : `${r.address}: ${truncate(r.response, 200)}`))],
    }),
  );
  return `${renderBlocks(header, blocks)}\n-- ${plural(rows.length, 'failed message')}: smtp-sidecar queue requeue QID|--all, delete QID, purge --failed [--older-than 7d]\n`;
}
