import { describe, expect, it } from 'vitest';
import { formatLogLine } from '../../../src/ops/log-line.js';
import { createLogger } from '../../../src/ops/logger.js';

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trace|debug|info |warn |error|fatal) \S.*$/;

function logged(format: 'json' | 'line', write: (log: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', format, destination: { write: (chunk: string) => void lines.push(chunk) } });
  write(logger);
  return lines;
}

describe(formatLogLine.name, () => {
  it('writes a delivery as Postfix does: to=<>, relay, delay in seconds, dsn, status with the answer in parentheses', () => {
    const [line] = logged('line', (log) =>
      log.child({ qid: '0mwual1qcrnj3qaw' }).info(
        { from: 'noreply@corp.test', originalSender: 'app@legacy.test', originalFrom: 'billing@legacy.test', to: 'you@dest.test', relay: 'm365', attempt: 1, delayMs: 1234, durationMs: 350, dsn: '2.0.0', status: 'sent', response: '250 2.0.0 OK <id@x>' },
        'delivery',
      ),
    );
    expect(line!.trimEnd()).toMatch(LINE);
    expect(line).toMatch(
      / info  0mwual1qcrnj3qaw: delivery to=<you@dest\.test>, from=<noreply@corp\.test>, orig_sender=<app@legacy\.test>, orig_from=<billing@legacy\.test>, relay=m365, delay=1\.23, duration=0\.35, attempt=1, dsn=2\.0\.0, status=sent \(250 2\.0\.0 OK <id@x>\)\n$/,
    );
  });

  it('keeps every field on one line: values with spaces or line breaks are quoted, objects are JSON', () => {
    const [line] = logged('line', (log) => log.warn({ reason: 'two words', detail: { message: 'a\nb' }, n: 3 }, 'something odd'));
    expect(line!.trimEnd().split('\n')).toHaveLength(1);
    expect(line).toMatch(/ warn  something odd reason="two words", detail=\{"message":"a\\nb"\}, n=3\n$/);
  });

  it('JSON lines carry the level as a name', () => {
    const [json] = logged('json', (log) => log.warn({ x: 1 }, 'w'));
    expect(JSON.parse(json!)).toMatchObject({ level: 'warn', msg: 'w', x: 1 });
  });

  it('passes a line that is not JSON through unchanged', () => {
    expect(formatLogLine('plain text')).toBe('plain text\n');
  });
});
