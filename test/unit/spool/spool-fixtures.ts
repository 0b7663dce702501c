/** Shared test data for the spool tests. */
import type { SpoolMeta } from '../../../src/core/types.js';

export function sampleMeta(qid: string, overrides: Partial<SpoolMeta> = {}): SpoolMeta {
  return {
    version: 1,
    qid,
    envelope: { mailFrom: 'app@example.com', rcptTo: ['a@example.org', 'b@example.org'] },
    client: { address: '127.0.0.1', port: 40000, heloName: 'app-host' },
    receivedAt: '2026-01-01T00:00:00.000Z',
    sizeBytes: 42,
    facts: { from: 'app@example.com', subject: 'hello', messageId: '<m1@example.com>', attachments: 0, attachmentsBytes: 0 },
    recipients: [
      { address: 'a@example.org', status: 'pending' },
      { address: 'b@example.org', status: 'pending' },
    ],
    attempts: 0,
    nextAttemptAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

export const HEADER = Buffer.from('From: app@example.com\r\nTo: a@example.org\r\nSubject: hello\r\n\r\n');

/** A body in two chunks, as the receive conductor writes it into a draft. */
export function memoryBody(text: string): Buffer[] {
  return [Buffer.from(text.slice(0, 3)), Buffer.from(text.slice(3))];
}
