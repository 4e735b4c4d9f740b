import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cidrContains,
  contains,
  defaultPools,
  eui64,
  firstHost,
  formatCidr,
  formatIp,
  formatRange,
  isLoopback,
  isMulticast,
  lastAddress,
  mergeRanges,
  normalizeIp,
  overlaps,
  parseCidr,
  parseIp,
  rangeToCidrs,
  usableRange,
  type Cidr,
} from './addresses.js';
import { compactPrefixes, coveredBy, firstFreePrefix, isFreeInPool } from './prefixes.js';
import { checkAllocationPools, gatewayInvalidInSubnet, hostRoutes, nameservers, subnetCidr } from './subnet-rules.js';

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  assert.ok(c, `${text} parses`);
  return c;
}

function ip(text: string): bigint {
  const v = parseIp(text);
  assert.ok(v, `${text} parses`);
  return v.value;
}

test('addresses parse strictly and print canonically', () => {
  assert.equal(normalizeIp('10.0.0.1'), '10.0.0.1', 'IPv4');
  assert.equal(normalizeIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1', 'IPv6 compressed, lower case');
  assert.equal(normalizeIp('10.1'), null, 'short IPv4 refused');
  assert.equal(normalizeIp('fe80::1%eth0'), null, 'zone refused');
  assert.equal(normalizeIp('300.0.0.1'), null, 'octet out of range');
  assert.equal(formatIp(4, 0xffffffffn), '255.255.255.255', 'all ones');
});

test('CIDRs: host bits cleared or refused, bounds, containment, overlap', () => {
  assert.equal(formatCidr(cidr('10.0.0.5/24')), '10.0.0.0/24', 'host bits cleared');
  assert.equal(parseCidr('10.0.0.5/24', true), null, 'strict refuses host bits');
  assert.equal(parseCidr('10.0.0.0/33'), null, 'prefix too long');
  assert.equal(parseCidr('10.0.0.0/x'), null, 'prefix not a number');
  assert.equal(formatCidr(cidr('2001:db8::/64')), '2001:db8::/64', 'IPv6');
  assert.equal(formatIp(4, lastAddress(cidr('10.0.0.0/24'))), '10.0.0.255', 'broadcast');
  assert.ok(contains(cidr('10.0.0.0/24'), { version: 4, value: ip('10.0.0.9') }), 'contains');
  assert.ok(!contains(cidr('10.0.0.0/24'), { version: 4, value: ip('10.0.1.9') }), 'does not contain');
  assert.ok(overlaps(cidr('10.0.0.0/16'), cidr('10.0.5.0/24')), 'supernet overlaps');
  assert.ok(!overlaps(cidr('10.0.0.0/24'), cidr('10.0.1.0/24')), 'neighbours do not overlap');
  assert.ok(!overlaps(cidr('0.0.0.0/0'), cidr('::/0')), 'versions never overlap');
  assert.ok(cidrContains(cidr('10.0.0.0/16'), cidr('10.0.3.0/24')), 'cidrContains');
  assert.equal(formatIp(4, firstHost(cidr('10.0.0.0/24')) ?? 0n), '10.0.0.1', 'first host');
  assert.equal(firstHost(cidr('10.0.0.7/32')), null, 'a /32 has no first host');
  assert.ok(isMulticast(cidr('224.0.0.0/24')) && isMulticast(cidr('ff02::/16')), 'multicast');
  assert.ok(isLoopback(cidr('::1/128')) && !isLoopback(cidr('10.0.0.0/8')), 'loopback');
});

test('default pools: IPv4 without network, gateway and broadcast; IPv6 without the anycast address', () => {
  const pools = (c: string, gw: string | null): string[] => {
    const parsed = cidr(c);
    return defaultPools(parsed, gw === null ? null : ip(gw)).map((r) => formatRange(parsed.version, r));
  };
  assert.deepEqual(pools('10.0.0.0/24', '10.0.0.1'), ['10.0.0.2-10.0.0.254'], 'gateway first');
  assert.deepEqual(pools('10.0.0.0/24', '10.0.0.254'), ['10.0.0.1-10.0.0.253'], 'gateway last');
  assert.deepEqual(pools('10.0.0.0/24', '10.0.0.100'), ['10.0.0.1-10.0.0.99', '10.0.0.101-10.0.0.254'], 'split');
  assert.deepEqual(pools('10.0.0.0/24', null), ['10.0.0.1-10.0.0.254'], 'no gateway');
  assert.deepEqual(pools('10.0.0.0/24', '192.168.0.1'), ['10.0.0.1-10.0.0.254'], 'gateway outside');
  assert.deepEqual(pools('10.0.0.0/30', '10.0.0.1'), ['10.0.0.2-10.0.0.2'], '/30');
  assert.deepEqual(pools('10.0.0.0/31', null), ['10.0.0.0-10.0.0.1'], '/31 has both addresses');
  assert.deepEqual(pools('2001:db8::/64', '2001:db8::1'), ['2001:db8::2-2001:db8::ffff:ffff:ffff:ffff'], 'IPv6');
  assert.deepEqual(pools('2001:db8::/126', null), ['2001:db8::1-2001:db8::3'], 'small IPv6');
  const usable = usableRange(cidr('10.0.0.0/29'));
  assert.equal(formatRange(4, usable), '10.0.0.1-10.0.0.6', 'usable range');
});

test('EUI-64: the SLAAC address of a MAC in a /64', () => {
  const prefix = cidr('2001:db8:1:2::/64');
  assert.equal(formatIp(6, eui64(prefix, 'fa:16:3e:12:34:56')), '2001:db8:1:2:f816:3eff:fe12:3456', 'universal/local bit flipped, ff:fe inserted');
  assert.equal(formatIp(6, eui64(prefix, '00:00:5e:00:53:01')), '2001:db8:1:2:200:5eff:fe00:5301', 'RFC 7042 example');
});

test('ranges: merge and cover with CIDRs', () => {
  const merged = mergeRanges([
    { start: 10n, end: 20n },
    { start: 21n, end: 30n },
    { start: 5n, end: 6n },
    { start: 25n, end: 40n },
  ]);
  assert.deepEqual(merged, [{ start: 5n, end: 6n }, { start: 10n, end: 40n }], 'merged');
  const cidrs = rangeToCidrs(4, { start: ip('10.0.0.1'), end: ip('10.0.0.10') }).map(formatCidr);
  assert.deepEqual(cidrs, ['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/30', '10.0.0.8/31', '10.0.0.10/32'], 'fewest CIDRs');
  assert.deepEqual(rangeToCidrs(6, { start: 0n, end: (1n << 128n) - 1n }).map(formatCidr), ['::/0'], 'whole IPv6 space');
});

test('prefixes: compaction, coverage, first free prefix', () => {
  assert.deepEqual(compactPrefixes(4, [cidr('10.0.0.0/24'), cidr('10.0.1.0/24'), cidr('10.0.0.0/25')]).map(formatCidr), ['10.0.0.0/23'], 'merged');
  assert.deepEqual(compactPrefixes(4, [cidr('10.0.1.0/24'), cidr('10.0.2.0/24')]).map(formatCidr), ['10.0.1.0/24', '10.0.2.0/24'], 'unaligned neighbours stay two');
  assert.ok(coveredBy([cidr('10.0.0.0/24')], [cidr('10.0.0.0/25'), cidr('10.0.0.128/25')]), 'covered by two halves');
  assert.ok(!coveredBy([cidr('10.0.0.0/23')], [cidr('10.0.0.0/24')]), 'not covered');
  const pool = [cidr('10.0.0.0/22')];
  const next = (taken: string[], len: number): string | null => {
    const found = firstFreePrefix(4, pool, taken.map(cidr), len);
    return found ? formatCidr(found) : null;
  };
  assert.equal(next([], 24), '10.0.0.0/24', 'first');
  assert.equal(next(['10.0.0.0/24'], 24), '10.0.1.0/24', 'second');
  assert.equal(next(['10.0.0.0/26'], 24), '10.0.1.0/24', 'a partly used block is skipped');
  assert.equal(next(['10.0.0.0/26'], 26), '10.0.0.64/26', 'the gap fits a smaller prefix');
  assert.equal(next(['10.0.0.0/23', '10.0.2.0/24', '10.0.3.0/24'], 24), null, 'full');
  assert.equal(next([], 21), null, 'longer than the pool');
  assert.equal(formatCidr(firstFreePrefix(6, [cidr('2001:db8::/48')], [cidr('2001:db8::/64')], 64) ?? cidr('::/0')), '2001:db8:0:1::/64', 'IPv6');
  assert.ok(isFreeInPool(cidr('10.0.2.0/24'), pool, [cidr('10.0.0.0/24')]), 'free');
  assert.ok(!isFreeInPool(cidr('10.0.0.0/25'), pool, [cidr('10.0.0.0/24')]), 'taken');
  assert.ok(!isFreeInPool(cidr('10.1.0.0/24'), pool, []), 'outside');
});

test('subnet rules: converters and checks', () => {
  assert.equal(subnetCidr('10.0.0.5/24', 'cidr'), '10.0.0.0/24', 'cleared');
  assert.equal(subnetCidr('2001:DB8::/64', 'cidr'), '2001:db8::/64', 'canonical');
  assert.throws(() => subnetCidr('10.0.0.0', 'cidr'), /is recommended/, 'no prefix');
  assert.throws(() => subnetCidr(5, 'cidr'), /not a valid IP subnet/, 'not a string');
  assert.deepEqual(nameservers(null, 'dns_nameservers'), [], 'null is empty');
  assert.throws(() => nameservers(['1.1.1.1', '1.1.1.1'], 'dns_nameservers'), /Duplicate nameserver/, 'duplicates');
  assert.deepEqual(hostRoutes([{ destination: '10.0.0.0/8', nexthop: '10.0.0.1' }], 'host_routes'), [{ destination: '10.0.0.0/8', nexthop: '10.0.0.1' }], 'route');
  assert.throws(() => hostRoutes([{ destination: '127.0.0.0/8', nexthop: '10.0.0.1' }], 'host_routes'), /not a routable CIDR/, 'loopback route');
  assert.throws(() => hostRoutes([{ destination: '10.0.0.0/8' }], 'host_routes'), /Expected keys/, 'missing key');
  assert.ok(gatewayInvalidInSubnet(cidr('10.0.0.0/24'), '10.0.0.255'), 'broadcast');
  assert.ok(!gatewayInvalidInSubnet(cidr('10.0.0.0/24'), '10.9.0.1'), 'outside is allowed');
  assert.ok(!gatewayInvalidInSubnet(cidr('2001:db8::/64'), '2001:db8::'), 'IPv6 has no such rule');
  assert.throws(() => checkAllocationPools([{ start: '10.0.0.1', end: '10.0.0.255' }], cidr('10.0.0.0/24')), /spans beyond the subnet cidr/, 'broadcast in pool');
  assert.deepEqual(checkAllocationPools([{ start: '10.0.0.0', end: '10.0.0.1' }], cidr('10.0.0.0/31')), [{ start: ip('10.0.0.0'), end: ip('10.0.0.1') }], 'a /31 may use both');
});
