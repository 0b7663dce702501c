import { describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../../src/core/loopback.js';
import { isAdminRequestAllowed } from '../../../src/ops/http.js';

describe(isLoopbackAddress.name, () => {
  it('accepts IPv4 127/8, ::1 and IPv4-mapped loopback', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) expect(isLoopbackAddress(a), a).toBe(true);
  });

  it('refuses every other address, and a missing one', () => {
    for (const a of ['10.0.0.5', '172.17.0.2', '192.168.1.1', '0.0.0.0', '::', 'fe80::1', '::ffff:10.0.0.1', '128.0.0.1', '1127.0.0.1', undefined]) {
      expect(isLoopbackAddress(a), String(a)).toBe(false);
    }
  });
});

describe(isAdminRequestAllowed.name, () => {
  it('allows a loopback peer with a loopback Host and no Origin (the queue CLI)', () => {
    expect(isAdminRequestAllowed({ remoteAddress: '127.0.0.1', host: '127.0.0.1:8025', origin: undefined })).toBe(true);
    expect(isAdminRequestAllowed({ remoteAddress: '::1', host: '[::1]:8025', origin: undefined })).toBe(true);
    expect(isAdminRequestAllowed({ remoteAddress: '::ffff:127.0.0.1', host: 'localhost:8025', origin: undefined })).toBe(true);
  });

  it('refuses a non-loopback peer even when http.host is set wider', () => {
    expect(isAdminRequestAllowed({ remoteAddress: '172.17.0.3', host: '127.0.0.1:8025', origin: undefined })).toBe(false);
  });

  it('refuses a browser request (Origin header), even from loopback', () => {
    expect(isAdminRequestAllowed({ remoteAddress: '127.0.0.1', host: '127.0.0.1:8025', origin: 'http://evil.example' })).toBe(false);
  });

  it('refuses a DNS-rebound host name', () => {
    expect(isAdminRequestAllowed({ remoteAddress: '127.0.0.1', host: 'rebind.example:8025', origin: undefined })).toBe(false);
  });
});
