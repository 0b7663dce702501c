import { describe, expect, it } from 'vitest';
import { buildAllowList } from '../../../src/intake/allow-list.js';

describe(buildAllowList.name, () => {
  const loopback = buildAllowList(['127.0.0.0/8', '::1/128']);

  it.each([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    // what a listener bound to "::" reports for an IPv4 client
    ['::ffff:127.0.0.1', true],
    ['128.0.0.1', false],
    ['::2', false],
    ['::ffff:10.0.0.1', false],
  ])('loopback rules: %s → %s', (address, allowed) => {
    expect(loopback(address)).toBe(allowed);
  });

  it('takes a single address without /bits as exactly that address', () => {
    const one = buildAllowList(['10.1.2.3']);
    expect(one('10.1.2.3')).toBe(true);
    expect(one('10.1.2.4')).toBe(false);
  });

  it('matches a pod network and an IPv6 prefix', () => {
    const pods = buildAllowList(['10.244.0.0/16', 'fd00:1::/64']);
    expect(pods('10.244.7.9')).toBe(true);
    expect(pods('10.245.0.1')).toBe(false);
    expect(pods('fd00:1::abcd')).toBe(true);
    expect(pods('fd00:2::1')).toBe(false);
  });

  it('refuses what is not an IP address', () => {
    for (const address of ['', 'localhost', 'unknown', '127.0.0.1.evil']) expect(loopback(address)).toBe(false);
  });

  it('allows nobody with an empty list', () => {
    expect(buildAllowList([])('127.0.0.1')).toBe(false);
  });
});
