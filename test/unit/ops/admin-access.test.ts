import { describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../../src/core/loopback.js';
import { AdminGuard, loopbackHostHeaders, type AdminRequest } from '../../../src/ops/admin-auth.js';

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

const TOKEN = 'k3Y-per-process_token';
const guard = new AdminGuard({ token: () => TOKEN, allowedHosts: () => loopbackHostHeaders(8025) });
const cli = (extra: Partial<AdminRequest> & { headers?: Record<string, string> } = {}): AdminRequest => ({
  method: 'GET',
  remoteAddress: '127.0.0.1',
  ...extra,
  headers: { host: '127.0.0.1:8025', authorization: `Bearer ${TOKEN}`, ...extra.headers },
});
const verdict = (req: AdminRequest) => {
  const v = guard.check(req);
  return v.ok ? 'ok' : v.status;
};

describe(AdminGuard.name, () => {
  it('lets the queue CLI in: loopback peer, loopback Host with the port, the token', () => {
    expect(verdict(cli())).toBe('ok');
    expect(verdict(cli({ remoteAddress: '::1', headers: { host: '[::1]:8025' } }))).toBe('ok');
    expect(verdict(cli({ remoteAddress: '::ffff:127.0.0.1', headers: { host: 'LOCALHOST:8025' } }))).toBe('ok');
  });

  it('answers 401 without the token, with another token, or with the token anywhere but the Bearer header', () => {
    expect(verdict(cli({ headers: { authorization: '' } }))).toBe(401);
    expect(verdict(cli({ headers: { authorization: 'Bearer wrong-token' } }))).toBe(401);
    expect(verdict(cli({ headers: { authorization: `Bearer ${TOKEN}x` } }))).toBe(401);
    expect(verdict(cli({ headers: { authorization: `Basic ${TOKEN}` } }))).toBe(401);
    expect(verdict(cli({ headers: { authorization: '', cookie: `token=${TOKEN}` } }))).toBe(401);
    const none = new AdminGuard({ token: () => undefined, allowedHosts: () => loopbackHostHeaders(8025) });
    expect(none.check(cli()).ok).toBe(false);
  });

  it('never puts the token in its refusal', () => {
    const v = guard.check(cli({ headers: { authorization: 'Bearer nope' } }));
    expect(v.ok).toBe(false);
    expect(JSON.stringify(v)).not.toContain(TOKEN);
  });

  it('refuses a non-loopback peer even with the token (http.host set wider)', () => {
    expect(verdict(cli({ remoteAddress: '172.17.0.3' }))).toBe(403);
  });

  it('requires the Host header and matches it exactly (DNS rebinding)', () => {
    const noHost = cli();
    delete (noHost.headers as Record<string, string>).host;
    expect(verdict(noHost)).toBe(403);
    for (const host of ['[::1].evil.example', '[::1].evil.example:8025', 'rebind.example:8025', '127.0.0.1', '127.0.0.1:9999', '127.0.0.1.evil.example:8025', 'localhost.:8025', '127.0.0.2:8025', '']) {
      expect(verdict(cli({ headers: { host } })), host).toBe(403);
    }
  });

  it('refuses cross-site browser requests, allows the same origin', () => {
    expect(verdict(cli({ headers: { origin: 'http://evil.example' } }))).toBe(403);
    expect(verdict(cli({ headers: { origin: 'http://127.0.0.1:9999' } }))).toBe(403);
    expect(verdict(cli({ headers: { origin: 'null' } }))).toBe(403);
    expect(verdict(cli({ headers: { 'sec-fetch-site': 'cross-site' } }))).toBe(403);
    expect(verdict(cli({ headers: { 'sec-fetch-site': 'same-site' } }))).toBe(403);
    expect(verdict(cli({ headers: { origin: 'http://127.0.0.1:8025', 'sec-fetch-site': 'same-origin' } }))).toBe('ok');
  });
});
