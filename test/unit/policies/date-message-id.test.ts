import { describe, expect, it } from 'vitest';
import { dateMessageIdPolicy, formatRfc5322Date } from '../../../src/policies/date-message-id.js';
import { makeInput } from './helpers.js';

describe(formatRfc5322Date.name, () => {
  it('writes RFC 5322 dates in UTC', () => {
    expect(formatRfc5322Date(new Date(Date.UTC(2026, 0, 1, 12, 30, 5)))).toBe('Thu, 01 Jan 2026 12:30:05 +0000');
    expect(formatRfc5322Date(new Date(Date.UTC(2024, 1, 29, 23, 59, 59)))).toBe('Thu, 29 Feb 2024 23:59:59 +0000');
  });
});

describe('dateMessageIdPolicy', () => {
  it('passes when both are present', () => {
    expect(dateMessageIdPolicy.apply(makeInput())).toEqual({ kind: 'pass' });
  });

  it('adds Date and Message-ID when missing, from the injected clock, id and hostname', () => {
    const verdict = dateMessageIdPolicy.apply(makeInput({ facts: { headerNames: ['from', 'to', 'subject'], messageId: undefined, date: undefined } }));
    expect(verdict).toEqual({
      kind: 'edit',
      headers: [
        { op: 'setIfAbsent', name: 'Date', value: 'Thu, 01 Jan 2026 12:30:05 +0000' },
        { op: 'setIfAbsent', name: 'Message-ID', value: '<fixed-id@relay.test>' },
      ],
    });
  });

  it('adds only what is missing', () => {
    const verdict = dateMessageIdPolicy.apply(makeInput({ facts: { headerNames: ['from', 'date'] } }));
    expect(verdict).toEqual({ kind: 'edit', headers: [{ op: 'setIfAbsent', name: 'Message-ID', value: '<fixed-id@relay.test>' }] });
  });
});
