/** Shared builders for the delivery integration tests: an upstream config with defaults, a capturing logger. */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { upstreamSchema, type SmtpUpstreamConfig } from '../../../src/config/schema.js';
import type { OutgoingMessage } from '../../../src/core/ports.js';

/** An upstream on 127.0.0.1 with short timeouts; `overrides` are schema input (defaults applied). */
export function upstreamConfig(port: number, overrides: Record<string, unknown> = {}): SmtpUpstreamConfig {
  return upstreamSchema.parse({
    name: 'test-upstream',
    host: '127.0.0.1',
    port,
    security: 'none',
    timeouts: { connectSeconds: 3, greetingSeconds: 3, socketSeconds: 5 },
    ...overrides,
  }) as SmtpUpstreamConfig;
}

/** A pino logger at trace level whose lines are kept in `lines` (raw JSON text). */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: pino({ level: 'trace' }, stream), lines };
}

export const RAW = Buffer.from(
  [
    'From: App <app@corp.test>',
    'To: User <user@dest.test>',
    'Subject: relay test',
    'Message-ID: <t1@corp.test>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Hello from the relay.',
    '.a line starting with a dot',
    'Grüße, 8-bit UTF-8 content',
    '',
  ].join('\r\n'),
  'utf8',
);

export function outgoing(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    qid: 'Q1',
    envelope: { mailFrom: 'app@corp.test', rcptTo: ['user@dest.test'], bodyType: '8bitmime' },
    raw: RAW,
    sizeBytes: RAW.length,
    ...overrides,
  };
}
