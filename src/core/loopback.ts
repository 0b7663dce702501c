/** Loopback addresses, for the exposure warnings at start-up and the admin API's peer check. */
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether an address (brackets allowed) is loopback: 127.0.0.0/8, ::1, ::ffff:127.x, or `localhost`. */
export function isLoopbackAddress(host: string | undefined): boolean {
  if (host === undefined) return false;
  const bare = host.trim().replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost') return true;
  const family = isIP(bare);
  if (family === 4) return LOOPBACK.check(bare, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
    if (mapped?.[1] !== undefined) return LOOPBACK.check(mapped[1], 'ipv4');
    return LOOPBACK.check(bare, 'ipv6');
  }
  return false;
}

