/**
 * Plain-text tables and short durations for CLI output.
 *
 * Does: pad columns to their widest cell (the last column is not padded); format durations
 *   the way admins read them in a queue listing: 45s, 3m12s, 2h05m, 4d03h.
 * Never: colour or wrap; read the clock (times are passed in).
 */

/** Renders rows (the first is the header) as left-aligned columns separated by two spaces. */
export function renderTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd())
    .map((line) => `${line}\n`)
    .join('');
}

/** 45s, 3m12s, 2h05m, 4d03h (negative durations count as 0). */
export function formatDuration(durationMs: number): string {
  const totalSeconds = Math.max(0, Math.floor(durationMs / 1000));
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (days > 0) return `${days}d${two(hours)}h`;
  if (hours > 0) return `${hours}h${two(minutes)}m`;
  if (minutes > 0) return `${minutes}m${two(seconds)}s`;
  return `${seconds}s`;
}

/** Cuts `text` to `maxChars` (an ellipsis marks the cut); newlines become spaces. */
export function truncate(text: string, maxChars: number): string {
  const flat = text.replace(/\s*[\r\n]+\s*/g, ' ');
  return flat.length <= maxChars ? flat : `${flat.slice(0, Math.max(0, maxChars - 1))}…`;
}
