import { BITS, cidrRange, lastAddress, mergeRanges, overlaps, rangeToCidrs, size, type Cidr, type IpVersion } from './addresses.js';

/**
 * Prefix arithmetic for subnet pools (`subnet_allocation`): the pool's
 * prefixes as a compact set, and the choice of a free prefix for a new
 * subnet. Pure functions; the caller reads the pool's subnets and commits.
 */

/** Merges overlapping and adjacent prefixes into the fewest CIDRs (Neutron shows a pool's prefixes so). */
export function compactPrefixes(version: IpVersion, prefixes: Cidr[]): Cidr[] {
  return mergeRanges(prefixes.map(cidrRange)).flatMap((r) => rangeToCidrs(version, r));
}

/** True when every address of `inner` lies in the union of `outer`. */
export function coveredBy(inner: Cidr[], outer: Cidr[]): boolean {
  const union = mergeRanges(outer.map(cidrRange));
  return inner.every((c) => union.some((r) => r.start <= c.network && lastAddress(c) <= r.end));
}

/**
 * The first prefix of length `prefixlen`, in address order, that lies in the
 * pool's `prefixes` and overlaps none of `taken`; null when there is none.
 */
export function firstFreePrefix(version: IpVersion, prefixes: Cidr[], taken: Cidr[], prefixlen: number): Cidr | null {
  if (prefixlen < 0 || prefixlen > BITS[version]) return null;
  const used = mergeRanges(taken.filter((c) => c.version === version).map(cidrRange));
  const step = size({ version, network: 0n, prefix: prefixlen });
  for (const prefix of compactPrefixes(version, prefixes)) {
    if (prefix.prefix > prefixlen) continue;
    const end = lastAddress(prefix);
    let candidate = prefix.network;
    while (candidate + step - 1n <= end) {
      const blocker = used.find((r) => r.start <= candidate + step - 1n && candidate <= r.end);
      if (!blocker) return { version, network: candidate, prefix: prefixlen };
      // Jump past what blocks it, to the next aligned start.
      const after = blocker.end + 1n;
      candidate = ((after + step - 1n) / step) * step;
    }
  }
  return null;
}

/** True when `cidr` lies wholly in the pool's prefixes and overlaps none of `taken`. */
export function isFreeInPool(cidr: Cidr, prefixes: Cidr[], taken: Cidr[]): boolean {
  return coveredBy([cidr], prefixes) && !taken.some((t) => overlaps(t, cidr));
}
