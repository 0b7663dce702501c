/**
 * Which clients may talk to the SMTP listener: `listen.allowedClients` as one check.
 *
 * Does: turn CIDRs and single addresses ("127.0.0.0/8", "::1/128", "10.1.2.3") into a predicate
 * over a client's address as smtp-server reports it; IPv4-mapped IPv6 addresses
 * ("::ffff:127.0.0.1", what a dual-stack listener on "::" sees for an IPv4 client) match IPv4
 * rules (node:net's BlockList does that).
 * Never: accepts a string that is not an IP address (a hostname, "", "unknown").
 * Assumes: the entries were validated by the config schema (an address, optionally /bits).
 */
import { BlockList, isIP } from 'node:net';

export function buildAllowList(cidrs: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of cidrs) {
    const [ip, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, family);
    else list.addSubnet(ip, Number(bits), family);
  }
  return (address) => {
    const family = isIP(address);
    if (family === 0) return false;
    return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}
