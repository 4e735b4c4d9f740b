import { isRecord } from '../common.js';
import { invalidInput, NeutronError } from '../errors.js';
import { pyRepr } from '../../core/py-repr.js';
import {
  contains,
  formatCidr,
  formatIp,
  formatRange,
  isLoopback,
  isMulticast,
  lastAddress,
  parseCidr,
  parseIp,
  usableRange,
  type Cidr,
  type IpVersion,
  type Range,
} from './addresses.js';

/**
 * The rules a subnet's attributes follow, as Neutron checks them: first the
 * shape of each value (the API's validators, 400 `Invalid input for <attr>`),
 * then how they fit together (`Invalid input for operation: ...`, and the
 * named errors of allocation pools and gateways). Pure functions.
 */

export const IPV6_MODES = ['dhcpv6-stateful', 'dhcpv6-stateless', 'slaac'] as const;
export type Ipv6Mode = (typeof IPV6_MODES)[number];

/** Neutron's `max_dns_nameservers` and `max_subnet_host_routes`. */
export const MAX_DNS_NAMESERVERS = 5;
export const MAX_HOST_ROUTES = 20;

export interface HostRoute {
  destination: string;
  nexthop: string;
}

export interface PoolText {
  start: string;
  end: string;
}

/** 400 `InvalidInput`: `Invalid input for operation: <message>.` (neutron-lib's InvalidInput). */
export function invalidOperation(message: string): NeutronError {
  return new NeutronError(400, 'InvalidInput', `Invalid input for operation: ${message}.`);
}

/** 400 `BadRequest`: `Bad <resource> request: <message>.` (neutron-lib's BadRequest). */
export function badResourceRequest(resource: string, message: string): NeutronError {
  return new NeutronError(400, 'BadRequest', `Bad ${resource} request: ${message}.`);
}

/** Neutron's `validate_ip_address` reason, or null for a valid address. */
function ipAddressProblem(value: unknown): string | null {
  if (typeof value !== 'string') return `'${pyRepr(value).replace(/^'|'$/g, '')}' is not a valid IP address`;
  const ip = parseIp(value);
  if (!ip) return `'${value}' is not a valid IP address`;
  return null;
}

/** Converter: an IP address in canonical form (IPv6 compressed, lower case). */
export function ipAddress(value: unknown, name: string): string {
  const problem = ipAddressProblem(value);
  if (problem) throw invalidInput(name, problem);
  const ip = parseIp(value as string);
  if (!ip) throw invalidInput(name, `'${String(value)}' is not a valid IP address`);
  return formatIp(ip.version, ip.value);
}

/** Converter: an IP address, or null. */
export function ipAddressOrNull(value: unknown, name: string): string | null {
  return value === null ? null : ipAddress(value, name);
}

/**
 * Converter: a subnet CIDR, returned with its host bits cleared and IPv6 in
 * canonical form (`10.0.0.5/24` becomes `10.0.0.0/24`, as Neutron's
 * create does). An address without a prefix length is refused with the
 * CIDR Neutron recommends.
 */
export function subnetCidr(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidInput(name, `'${pyRepr(value)}' is not a valid IP subnet`);
  const cidr = parseCidr(value);
  if (!cidr || /\s/.test(value)) throw invalidInput(name, `'${value}' is not a valid IP subnet`);
  if (!value.includes('/')) throw invalidInput(name, `'${value}' isn't a recognized IP subnet cidr, '${formatCidr(cidr)}' is recommended`);
  return formatCidr(cidr);
}

/** Converter: a subnet CIDR or null (`subnet_or_none`). */
export function subnetCidrOrNull(value: unknown, name: string): string | null {
  return value === null ? null : subnetCidr(value, name);
}

/** Converter: `allocation_pools`, a list of `{start, end}` addresses (canonical). */
export function ipPools(value: unknown, name: string): PoolText[] {
  if (!Array.isArray(value)) throw invalidInput(name, `Invalid data format for IP pool: '${pyRepr(value)}'`);
  return value.map((pool) => {
    if (!isRecord(pool) || Object.keys(pool).length !== 2 || !('start' in pool) || !('end' in pool)) {
      throw invalidInput(name, `Validation of dictionary's keys failed. Expected keys: {'end', 'start'} Provided keys: ${isRecord(pool) ? `{${Object.keys(pool).map((k) => `'${k}'`).join(', ')}}` : pyRepr(pool)}`);
    }
    return { start: ipAddress(pool.start, name), end: ipAddress(pool.end, name) };
  });
}

/** Converter: `dns_nameservers`, unique addresses (null is the empty list). */
export function nameservers(value: unknown, name: string): string[] {
  if (value === null) return [];
  if (!Array.isArray(value)) throw invalidInput(name, `Invalid data format for nameserver: '${pyRepr(value)}'`);
  const seen: string[] = [];
  for (const host of value) {
    const problem = ipAddressProblem(host);
    if (problem) throw invalidInput(name, `'${String(host)}' is not a valid nameserver. ${problem}`);
    if (seen.includes(host as string)) throw invalidInput(name, `Duplicate nameserver '${String(host)}'`);
    seen.push(host as string);
  }
  return seen;
}

/** Converter: `host_routes`, unique `{destination, nexthop}` (null is the empty list). */
export function hostRoutes(value: unknown, name: string): HostRoute[] {
  if (value === null) return [];
  if (!Array.isArray(value)) throw invalidInput(name, `Invalid data format for hostroute: '${pyRepr(value)}'`);
  const out: HostRoute[] = [];
  for (const route of value) {
    if (!isRecord(route) || Object.keys(route).length !== 2 || !('destination' in route) || !('nexthop' in route)) {
      throw invalidInput(name, `Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} Provided keys: ${isRecord(route) ? `{${Object.keys(route).map((k) => `'${k}'`).join(', ')}}` : pyRepr(route)}`);
    }
    const destination = route.destination;
    const cidr = typeof destination === 'string' ? parseCidr(destination) : null;
    if (typeof destination !== 'string' || !cidr) throw invalidInput(name, `'${String(destination)}' is not a valid CIDR`);
    if (!destination.includes('/') || !parseCidr(destination, true)) throw invalidInput(name, `'${destination}' is not a recognized CIDR, '${formatCidr(cidr)}' is recommended`);
    if (isLoopback(cidr)) throw invalidInput(name, `'${destination}' is not a routable CIDR`);
    const nexthop = ipAddress(route.nexthop, name);
    const normal = { destination: formatCidr(cidr), nexthop };
    if (out.some((r) => r.destination === normal.destination && r.nexthop === normal.nexthop)) throw invalidInput(name, `Duplicate hostroute '${pyRepr(route)}'`);
    out.push(normal);
  }
  return out;
}

/** Converter: an IPv6 mode (`ipv6_ra_mode`, `ipv6_address_mode`), or null. */
export function ipv6Mode(value: unknown, name: string): Ipv6Mode | null {
  if (value === null) return null;
  if (typeof value !== 'string' || !(IPV6_MODES as readonly string[]).includes(value)) throw invalidInput(name, `${pyRepr(value)} is not in ${pyRepr([...IPV6_MODES])}`);
  return value as Ipv6Mode;
}

/** Converter: `service_types`, a list of device owners. */
export function serviceTypes(value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw invalidInput(name, `'${pyRepr(value)}' is not a list`);
  for (const item of value) {
    if (typeof item !== 'string' || item.length > 255) throw invalidInput(name, `'${String(item)}' is not a valid string`);
    if (!/^(network|compute):/.test(item) && item !== 'network:floatingip_agent_gateway') throw invalidInput(name, `Device owner ${item} is not a valid service type`);
  }
  return [...new Set(value as string[])];
}

/** `<name> '<addr>' does not match the ip_version '<v>'`. */
export function checkIpVersion(version: IpVersion, text: string, name: string): void {
  const ip = parseIp(text.split('/')[0] ?? '');
  if (!ip || ip.version !== version) throw invalidOperation(`${name} '${text}' does not match the ip_version '${version}'`);
}

/** What {@link checkSubnet} needs of a subnet being created or changed. */
export interface SubnetSpec {
  ip_version: IpVersion;
  cidr: Cidr;
  /** The value asked for (undefined: not part of this request). */
  gateway_ip?: string | null;
  enable_dhcp?: boolean;
  dns_nameservers?: string[];
  host_routes?: HostRoute[];
  ipv6_ra_mode?: Ipv6Mode | null;
  ipv6_address_mode?: Ipv6Mode | null;
}

/** The stored state an update starts from. */
export interface CurrentSubnet {
  id: string;
  enable_dhcp: boolean;
  ipv6_ra_mode: string | null;
  ipv6_address_mode: string | null;
}

/**
 * Neutron's `_validate_subnet`: DHCP and prefix length, gateway, name
 * servers, host routes and the IPv6 modes, for a create (`current`
 * undefined) or an update.
 */
export function checkSubnet(spec: SubnetSpec, current?: CurrentSubnet): void {
  const { ip_version: version, cidr } = spec;
  checkIpVersion(version, formatCidr(cidr), 'cidr');
  if (cidr.prefix === 0) throw invalidOperation('0 is not allowed as CIDR prefix length');
  const dhcpWasEnabled = current?.enable_dhcp ?? false;
  if (spec.enable_dhcp && !dhcpWasEnabled) {
    if ((version === 4 && cidr.prefix > 30) || (version === 6 && cidr.prefix > 126)) throw invalidOperation('Subnet has a prefix length that is incompatible with DHCP service enabled');
    if (isMulticast(cidr)) throw invalidOperation('Multicast IP subnet is not supported if enable_dhcp is True');
    if (isLoopback(cidr)) throw invalidOperation('Loopback IP subnet is not supported if enable_dhcp is True');
    if (version === 4 && cidr.network === 0n) throw invalidOperation("First IP '0.0.0.0' of network is not supported if enable_dhcp is True.");
  }
  if (spec.gateway_ip !== undefined && spec.gateway_ip !== null) {
    checkIpVersion(version, spec.gateway_ip, 'gateway_ip');
    if (gatewayInvalidInSubnet(cidr, spec.gateway_ip)) throw invalidOperation('Gateway is not valid on subnet');
  }
  if (spec.dns_nameservers !== undefined) {
    if (spec.dns_nameservers.length > MAX_DNS_NAMESERVERS) {
      throw new NeutronError(400, 'DNSNameServersExhausted', `Unable to complete operation for ${current?.id ?? 'new subnet'}. The number of DNS nameservers exceeds the limit ${MAX_DNS_NAMESERVERS}.`);
    }
    for (const dns of spec.dns_nameservers) checkIpVersion(version, dns, 'dns_nameserver');
  }
  if (spec.host_routes !== undefined) {
    if (spec.host_routes.length > MAX_HOST_ROUTES) {
      throw new NeutronError(400, 'HostRoutesExhausted', `Unable to complete operation for ${current?.id ?? 'new subnet'}. The number of host routes exceeds the limit ${MAX_HOST_ROUTES}.`);
    }
    for (const route of spec.host_routes) {
      checkIpVersion(version, route.nexthop, 'nexthop');
      checkIpVersion(version, route.destination, 'destination');
    }
  }
  if (version === 4) {
    if (spec.ipv6_ra_mode) throw invalidOperation('ipv6_ra_mode is not valid when ip_version is 4');
    if (spec.ipv6_address_mode) throw invalidOperation('ipv6_address_mode is not valid when ip_version is 4');
    return;
  }
  if (current) {
    if (spec.enable_dhcp === false && (current.ipv6_ra_mode || current.ipv6_address_mode)) throw invalidOperation('Cannot disable enable_dhcp with ipv6 attributes set');
    return;
  }
  const ra = spec.ipv6_ra_mode ?? null;
  const address = spec.ipv6_address_mode ?? null;
  if ((ra || address) && !spec.enable_dhcp) throw invalidOperation('ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False');
  if (ra && address && ra !== address) {
    throw invalidOperation(`ipv6_ra_mode set to '${ra}' with ipv6_address_mode set to '${address}' is not valid. If both attributes are set, they must be the same value`);
  }
  if ((address === 'slaac' || address === 'dhcpv6-stateless') && cidr.prefix !== 64) {
    throw invalidOperation(`Invalid CIDR ${formatCidr(cidr)} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64`);
  }
}

/** True when a gateway inside the CIDR is its IPv4 network or broadcast address (a gateway outside the CIDR is allowed: on-link). */
export function gatewayInvalidInSubnet(cidr: Cidr, gateway: string): boolean {
  const ip = parseIp(gateway);
  if (!ip || !contains(cidr, ip)) return false;
  return cidr.version === 4 && (ip.value === cidr.network || ip.value === lastAddress(cidr));
}

/**
 * Neutron's allocation pool checks: each range well formed and of the
 * subnet's IP version (400 `InvalidAllocationPool`), inside the usable part
 * of the CIDR (400 `OutOfBoundsAllocationPool`), no two overlapping (409
 * `OverlappingAllocationPools`). Returns the ranges.
 */
export function checkAllocationPools(pools: PoolText[], cidr: Cidr): Range[] {
  const cidrText = formatCidr(cidr);
  const ranges = pools.map((pool) => {
    const start = parseIp(pool.start);
    const end = parseIp(pool.end);
    if (!start || !end || start.version !== end.version || start.value > end.value) throw new NeutronError(400, 'InvalidAllocationPool', `The allocation pool ${pyRepr(pool)} is not valid.`);
    if (start.version !== cidr.version) throw new NeutronError(400, 'InvalidAllocationPool', `The allocation pool ${formatRange(start.version, { start: start.value, end: end.value })} is not valid.`);
    return { start: start.value, end: end.value };
  });
  const usable = usableRange(cidr);
  for (const range of ranges) {
    if (range.start < usable.start || range.end > usable.end) {
      throw new NeutronError(400, 'OutOfBoundsAllocationPool', `The allocation pool ${formatRange(cidr.version, range)} spans beyond the subnet cidr ${cidrText}.`);
    }
  }
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i];
      const b = ranges[j];
      if (a && b && a.start <= b.end && b.start <= a.end) {
        throw new NeutronError(409, 'OverlappingAllocationPools', `Found overlapping allocation pools: ${formatRange(cidr.version, a)} ${formatRange(cidr.version, b)} for subnet ${cidrText}.`);
      }
    }
  }
  return ranges;
}

/** 409 `GatewayConflictWithAllocationPools` when the gateway lies in a pool. */
export function checkGatewayOutOfPools(version: IpVersion, gateway: string | null, pools: Range[]): void {
  if (gateway === null) return;
  const ip = parseIp(gateway);
  if (!ip) return;
  for (const pool of pools) {
    if (ip.version === version && ip.value >= pool.start && ip.value <= pool.end) {
      throw new NeutronError(409, 'GatewayConflictWithAllocationPools', `Gateway ip ${gateway} conflicts with allocation pool ${formatRange(version, pool)}.`);
    }
  }
}

/** Pools as stored and shown: `[{start, end}]`. */
export function poolsText(version: IpVersion, pools: Range[]): PoolText[] {
  return pools.map((p) => ({ start: formatIp(version, p.start), end: formatIp(version, p.end) }));
}
