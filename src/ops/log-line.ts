/**
 * The human log format (`log.format: "line"`, `start --pretty`): one line per event, Postfix style.
 *
 *   2026-11-30T02:58:23.123Z info  0mwual1qcrnj3qaw: delivery to=<you@example.com>, from=<noreply@contoso.com>,
 *     orig_sender=<app@legacy.test>, orig_from=<billing@legacy.test>, relay=m365, delay=1.2, attempt=1,
 *     dsn=2.0.0, status=sent (250 2.0.0 OK <id>)            (all on one line)
 *
 * Does: turn one pino JSON line into `<time> <level> [<qid>: ]<event> key=value, ...`; addresses
 *   in <>, delays in seconds, the upstream's answer in parentheses after the status (as Postfix
 *   writes `status=sent (250 ...)`); values with spaces, commas or line breaks are JSON-quoted, so
 *   a line never breaks and can be split again.
 * Never: drop a field (everything pino was given is printed); need a package beyond pino (it runs
 *   in a production install); throw (a line that is not JSON is passed through unchanged).
 * Assumes: pino's output with string level labels (logger.ts sets them).
 */

const SKIP = new Set(['time', 'level', 'msg', 'qid', 'pid', 'hostname']);
/** fields that hold one mail address, printed as <address> */
const ADDRESS_FIELDS = new Set(['to', 'from', 'sender', 'originalSender', 'originalFrom']);
/** Postfix-like short names for the fields a delivery or received line carries */
const RENAME: Readonly<Record<string, string>> = { originalSender: 'orig_sender', originalFrom: 'orig_from', delayMs: 'delay', durationMs: 'duration' };
/** the order Postfix admins read; other fields follow in the order they were logged */
const FIRST = ['to', 'from', 'originalSender', 'originalFrom', 'client', 'relay', 'delayMs', 'durationMs', 'attempt', 'dsn'];

function quoteIfNeeded(text: string): string {
  return text === '' || /[\s,"=\\]/.test(text) ? JSON.stringify(text) : text;
}

function formatValue(key: string, value: unknown): string {
  if (ADDRESS_FIELDS.has(key) && typeof value === 'string') return `<${value}>`;
  if ((key === 'delayMs' || key === 'durationMs') && typeof value === 'number') return (value / 1000).toFixed(value < 10_000 ? 2 : 1).replace(/\.?0+$/, '') || '0';
  if (typeof value === 'string') return quoteIfNeeded(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(value);
}

/** One pino JSON line → one human line (with its newline). */
export function formatLogLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  const time = typeof record['time'] === 'string' ? record['time'] : new Date(Number(record['time'] ?? Date.now())).toISOString();
  const level = String(record['level'] ?? 'info').padEnd(5);
  const qid = typeof record['qid'] === 'string' ? `${record['qid']}: ` : '';
  const keys = Object.keys(record).filter((k) => !SKIP.has(k) && record[k] !== undefined);
  // `to` is an address on delivery lines but a count on `received` ones: Postfix's nrcpt
  const first = typeof record['to'] === 'number' ? FIRST.filter((k) => k !== 'to') : FIRST;
  const ordered = [...first.filter((k) => keys.includes(k)), ...keys.filter((k) => !first.includes(k) && k !== 'status' && k !== 'response')];
  const parts = ordered.map((k) => `${k === 'to' && typeof record[k] === 'number' ? 'nrcpt' : (RENAME[k] ?? k)}=${formatValue(k, record[k])}`);
  if (record['status'] !== undefined) {
    const response = record['response'];
    parts.push(`status=${formatValue('status', record['status'])}${typeof response === 'string' && response !== '' ? ` (${response.replace(/[\r\n]+/g, ' ')})` : ''}`);
  } else if (record['response'] !== undefined) {
    parts.push(`response=${formatValue('response', record['response'])}`);
  }
  const msg = String(record['msg'] ?? '').replace(/[\r\n]+/g, ' ');
  return `${time} ${level} ${qid}${msg}${parts.length > 0 ? ` ${parts.join(', ')}` : ''}\n`;
}
