/** Builders for policy inputs: config defaults come from the real schema. */
import { configSchema } from '../../../src/config/schema.js';
import type { Envelope, MessageFacts } from '../../../src/core/types.js';
import type { PolicyInput } from '../../../src/policies/types.js';

export function makeFacts(overrides: Partial<MessageFacts> = {}): MessageFacts {
  return {
    from: [{ name: 'App', address: 'app@internal.example' }],
    sender: undefined,
    replyTo: [],
    to: [{ name: '', address: 'user@example.com' }],
    cc: [],
    subject: 'hello',
    messageId: '<m1@internal.example>',
    date: 'Thu, 01 Jan 2026 00:00:00 +0000',
    attachments: { count: 0, totalBytes: 0, inlineCount: 0, inlineBytes: 0 },
    headerNames: ['from', 'to', 'subject', 'message-id', 'date'],
    ...overrides,
  };
}

export function makeInput(
  options: { message?: Record<string, unknown>; limits?: Record<string, unknown>; facts?: Partial<MessageFacts>; envelope?: Partial<Envelope> } = {},
): PolicyInput {
  const config = configSchema.parse({ message: options.message ?? {}, limits: options.limits ?? {} });
  return {
    envelope: { mailFrom: 'app@internal.example', rcptTo: ['user@example.com'], ...options.envelope },
    facts: makeFacts(options.facts),
    message: config.message,
    limits: config.limits,
    hostname: 'relay.test',
    now: new Date(Date.UTC(2026, 0, 1, 12, 30, 5)),
    newMessageIdLocalPart: () => 'fixed-id',
  };
}
