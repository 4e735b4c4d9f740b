import ipaddr from 'ipaddr.js';

/**
 * Address arithmetic for IPAM: addresses as BigInt, CIDRs, ranges. Parsing is
 * strict (IPv4 only as four decimal parts, IPv6 without zone); printing is
 * canonical (IPv6 compressed, lower case, RFC 5952), so that an address is
 * stored one way only and the uniqueness of allocations holds.
 */
export type IpVersion = 4 | 6;

export interface Ip {
  version: IpVersion;
  value: bigint;
}

export interface Cidr {
  version: IpVersion;
  /** The network address. */
  network: bigint;
  prefix: number;
}

export interface Range {
  start: bigint;
  end: bigint;
}

export const BITS: Record<IpVersion, number> = { 4: 32, 6: 128 };

export function parseIp(text: string): Ip | null {
  if (typeof text !== 'string') return null;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    const bytes = ipaddr.IPv4.parse(text).toByteArray();
    return { version: 4, value: bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n) };
  }
  if (!text.includes('%') && ipaddr.IPv6.isValid(text)) {
    const bytes = ipaddr.IPv6.parse(text).toByteArray();
    return { version: 6, value: bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n) };
  }
  return null;
}

export function formatIp(version: IpVersion, value: bigint): string {
  const count = version === 4 ? 4 : 16;
  const bytes: number[] = [];
  let v = value;
  for (let i = 0; i < count; i++) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** The canonical text of an address, or null when it is not one. */
export function normalizeIp(text: string): string | null {
  const ip = parseIp(text);
  return ip ? formatIp(ip.version, ip.value) : null;
}

/**
 * Parses `a.b.c.d/n` or `x::/n`. With `strict`, host bits must be zero (what
 * Neutron asks of a subnet's CIDR); otherwise they are cleared.
 */
export function parseCidr(text: string, strict = false): Cidr | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return null;
  const bits = BITS[ip.version];
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > bits) return null;
  }
  const network = ip.value & mask(ip.version, prefix);
  if (strict && network !== ip.value) return null;
  return { version: ip.version, network, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.version, cidr.network)}/${cidr.prefix}`;
}

export function mask(version: IpVersion, prefix: number): bigint {
  const bits = BigInt(BITS[version]);
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** The last address of a CIDR (IPv4's broadcast). */
export function lastAddress(cidr: Cidr): bigint {
  return cidr.network | ((1n << BigInt(BITS[cidr.version] - cidr.prefix)) - 1n);
}

export function size(cidr: Cidr): bigint {
  return 1n << BigInt(BITS[cidr.version] - cidr.prefix);
}

export function contains(cidr: Cidr, ip: Ip): boolean {
  return ip.version === cidr.version && ip.value >= cidr.network && ip.value <= lastAddress(cidr);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.version === b.version && a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

/**
 * The addresses a subnet may hand out by default: IPv4 without the network
 * and broadcast addresses, IPv6 without the subnet-router anycast (the first);
 * both without the gateway (pools split around it), as Neutron computes
 * `allocation_pools` when none are given.
 */
export function defaultPools(cidr: Cidr, gateway: bigint | null): Range[] {
  let first = cidr.network + 1n;
  let last = cidr.version === 4 ? lastAddress(cidr) - 1n : lastAddress(cidr);
  if (cidr.version === 4 && cidr.prefix >= 31) {
    first = cidr.network;
    last = lastAddress(cidr);
  }
  if (first > last) return [];
  if (gateway === null || gateway < first || gateway > last) return [{ start: first, end: last }];
  const pools: Range[] = [];
  if (gateway > first) pools.push({ start: first, end: gateway - 1n });
  if (gateway < last) pools.push({ start: gateway + 1n, end: last });
  return pools;
}

/** The EUI-64 address of a MAC in a /64 prefix (SLAAC). */
export function eui64(prefix: Cidr, macAddress: string): bigint {
  const bytes = macAddress.split(':').map((h) => parseInt(h, 16));
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0] = bytes;
  const id = [b0 ^ 0x02, b1, b2, 0xff, 0xfe, b3, b4, b5].reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  return prefix.network | id;
}

/** `start-end`, as Neutron prints an IP range in its errors. */
export function formatRange(version: IpVersion, range: Range): string {
  return `${formatIp(version, range.start)}-${formatIp(version, range.end)}`;
}

/** Sorts ranges and merges the ones that overlap or touch. */
export function mergeRanges(ranges: Range[]): Range[] {
  const sorted = [...ranges].filter((r) => r.start <= r.end).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.start <= last.end + 1n) {
      if (r.end > last.end) last.end = r.end;
    } else out.push({ start: r.start, end: r.end });
  }
  return out;
}

/** The fewest CIDRs that cover exactly `start`..`end`, in address order. */
export function rangeToCidrs(version: IpVersion, range: Range): Cidr[] {
  const bits = BITS[version];
  const out: Cidr[] = [];
  let start = range.start;
  while (start <= range.end) {
    // The largest block aligned at `start` that does not pass `end`.
    let hostBits = 0;
    while (hostBits < bits) {
      const next = hostBits + 1;
      const blockSize = 1n << BigInt(next);
      if (start % blockSize !== 0n || start + blockSize - 1n > range.end) break;
      hostBits = next;
    }
    out.push({ version, network: start, prefix: bits - hostBits });
    start += 1n << BigInt(hostBits);
  }
  return out;
}

/** The range of addresses a CIDR covers. */
export function cidrRange(cidr: Cidr): Range {
  return { start: cidr.network, end: lastAddress(cidr) };
}

/** True when every address of `inner` is in `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.version === inner.version && outer.prefix <= inner.prefix && inner.network >= outer.network && lastAddress(inner) <= lastAddress(outer);
}

/** The gateway Neutron gives a subnet when none is asked for: the first address after the network's (null when the CIDR has no room for it). */
export function firstHost(cidr: Cidr): bigint | null {
  const first = cidr.network + 1n;
  return first <= lastAddress(cidr) ? first : null;
}

/** The addresses allocation pools may use: IPv4 without network and broadcast (up to /30), IPv6 without the subnet-router anycast address. */
export function usableRange(cidr: Cidr): Range {
  if (cidr.version === 4 && cidr.prefix >= 31) return cidrRange(cidr);
  return { start: cidr.network + 1n, end: cidr.version === 4 ? lastAddress(cidr) - 1n : lastAddress(cidr) };
}

export function isMulticast(cidr: Cidr): boolean {
  return cidr.version === 4 ? cidr.network >> 28n === 0xen : cidr.network >> 120n === 0xffn;
}

export function isLoopback(cidr: Cidr): boolean {
  return cidr.version === 4 ? cidr.network >> 24n === 127n : cidr.network === 1n && cidr.prefix === 128;
}
